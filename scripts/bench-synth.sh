#!/usr/bin/env bash
# Synth wall time and peak memory for N destination accounts, next to the
# hand-written baselines in ../shared/baselines (the same job written by hand
# in Go with AwsCustomResource, and in TypeScript). Two tables:
#
#   1. examples/basic, which does more than the baselines (IMDSv2,
#      ConfigureAutoScalingGroup, cdk-nag metadata, a cross-stack key);
#   2. test/bench/baselinejob, which does exactly the baselines' job with only
#      their hand-written grant replaced by encryptedami (see its package doc).
#
# Prints medians of RUNS runs after WARMUP warm-up runs, A/B in turn, warm
# caches, timed by the baselines' tools/bench.py.
#
#   scripts/bench-synth.sh                 # NS="1 10 50" RUNS=5 WARMUP=1
#   BASELINES=/path/to/baselines NS="1 10" RUNS=9 scripts/bench-synth.sh
#   APPS=baselinejob RUNS=1 WARMUP=0 NS=1 scripts/bench-synth.sh   # one table only
#   APPS=organization RUNS=5 scripts/bench-synth.sh    # the StackSet vs one destination stack
#   APPS=basic KEYACCESS=accounts NS=100 scripts/bench-synth.sh   # every N in KeyPolicyStyle_ACCOUNTS
#   APPS=cold RUNS=3 scripts/bench-synth.sh            # a cold first synth (empty caches), N=1
#
# Each app is run directly (not through the CDK CLI), with CDK_OUTDIR set to
# a fresh directory per run and CDK_CONTEXT_JSON from the baselines'
# tools/context.py (as their measure.sh does); examples/basic also gets
# {"destinations": N}. One key policy holds about 23 destinations' scoped
# statements (KMS's 32 KB limit; the library fails synth beyond), so from
# N=20 on both our apps run in organization mode (constant-size statements):
# examples/basic through -c organizationId (or, with KEYACCESS=accounts, at
# every N through -c keyAccess=accounts: one NewAccountsKeyAccess listing the
# destination accounts), baselinejob on its own; the mode column is read from
# the key policy our app synthesized.
#
# ours/Go and ours/TS are medians of per-pair wall ratios (bench.py "A/B
# wall"). Ours' wall time and memory come from the ours-vs-Go series.
# APPS=cold times a user's first synth on a clean machine (a CI container):
# `go run .` of examples/basic next to `go run .` of the Go baseline, each
# run with an empty GOCACHE and an empty handler cache of its own (the module
# cache stays: both download the same CDK modules), N=1, A/B in turn. It
# skips the warm-up pair unless WARMUP is set, and needs no build step.
#
# MiB is bench.py's "peak MiB": ru_maxrss of the reaped process from wait4,
# which covers its waited-for descendants but is the largest single process
# of the tree, not their sum. For the Go apps that is the larger of the Go
# process and the Node process behind jsii (in practice Node; the Go
# process's own RSS is not added); for TS it is the one Node process.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASELINES=${BASELINES:-$ROOT/../shared/baselines}
NS=${NS:-"1 10 50"}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
APPS=${APPS:-"basic baselinejob organization"}
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

[[ -d $BASELINES ]] || { echo "no baselines at $BASELINES (set BASELINES)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/bench-synth.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp -r "$BASELINES" "$WORK/baselines"
B=$WORK/baselines

median() { awk -v l="$1" 'index($0, l) == 1 { print $(NF - 1); exit }' "$2"; }

if [[ $APPS == cold ]]; then
  echo "== cold first synth: go run . with an empty GOCACHE and handler cache, N=1 ($(go version | cut -d' ' -f3), $(nproc) cores)"
  export RUNROOT=$WORK/runs OURSDIR=$ROOT/examples/basic GODIR=$B/go-baseline DESTINATIONS=1
  mkdir -p "$RUNROOT"
  CDK_CONTEXT_JSON=$(python3 "$B/tools/context.py" 1)
  export CDK_CONTEXT_JSON
  [[ $GODIR != *[[:space:]]* ]] || { echo "the baselines' copy $GODIR has a space in its path" >&2; exit 1; }
  # Each run gets a fresh directory for its GOCACHE, handler cache and cloud
  # assembly; they are removed after the series, outside the timed runs.
  cold='d=$(mktemp -d -p "$RUNROOT"); cd "$0" && GOCACHE=$d/gocache CROSSACCOUNTAMI_CACHE_DIR=$d/handlers CDK_OUTDIR=$d/out exec go run .'
  echo "load before: $(uptime | sed 's/.*load average/load average/')"
  python3 "$B/tools/bench.py" -n "$RUNS" --warmup "${WARMUP_COLD:-0}" --timeout 7200 \
    --vs "sh -c '$cold' $GODIR" -- sh -c "$cold" "$OURSDIR" >"$WORK/cold.txt"
  echo "load after:  $(uptime | sed 's/.*load average/load average/')"
  if grep -E '^[AB] exit' "$WORK/cold.txt" | grep -vqE '^[AB] exit 0 \('; then echo "a run failed:"; cat "$WORK/cold.txt"; exit 1; fi
  for f in "$RUNROOT"/*/out; do
    [[ -e $f/manifest.json ]] || { echo "a run wrote no cloud assembly ($f)"; cat "$WORK/cold.txt"; exit 1; }
  done
  printf '%-36s %10s %10s %10s %10s\n' "" "min s" "median s" "max s" "peak MiB"
  for side in A B; do
    name="examples/basic (ours)"; [[ $side == B ]] && name="go-baseline (hand-written)"
    printf '%-36s %10s %10s %10s %10s\n' "$name" \
      "$(awk -v l="$side wall s" 'index($0, l) == 1 { print $(NF - 2); exit }' "$WORK/cold.txt")" \
      "$(median "$side wall s" "$WORK/cold.txt")" \
      "$(awk -v l="$side wall s" 'index($0, l) == 1 { print $NF; exit }' "$WORK/cold.txt")" \
      "$(median "$side peak MiB" "$WORK/cold.txt")"
  done
  printf '%-36s %21s\n' "ours/Go (median of per-pair ratios)" "$(median 'A/B wall' "$WORK/cold.txt")"
  echo "(RUNS=$RUNS pairs, A B A B ...; bench.py's rows:)"
  cat "$WORK/cold.txt"
  exit 0
fi

echo "== build (baselines, examples/basic, test/bench/baselinejob)"
(cd "$B/ts-baseline" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null && node_modules/.bin/tsc)
(cd "$B/go-baseline" && go build -o bin/go-baseline .)
go build -o "$WORK/basic" ./examples/basic
go build -o "$WORK/baselinejob" ./test/bench/baselinejob
# Warm the handler cache so no run pays for a Go build.
CDK_OUTDIR=$WORK/warm "$WORK/basic" >/dev/null
CDK_OUTDIR=$WORK/warm-baselinejob "$WORK/baselinejob" >/dev/null

export WORK RUNROOT=$WORK/runs GOBASE=$B/go-baseline/bin/go-baseline TSAPP=$B/ts-baseline/bin/app.js
mkdir -p "$RUNROOT"

# pair TAG N: times $OURS (A) against the Go baseline, then against the TS
# baseline (B), into $WORK/TAG-go-N.txt and $WORK/TAG-ts-N.txt, and sets
# mode to the one our app used (org when a synthesized key policy names
# aws:PrincipalOrgID/Paths, else scoped).
pair() {
  local tag=$1 n=$2 f
  # shellcheck disable=SC2016 # expanded by the inner sh, once per run
  python3 "$B/tools/bench.py" -n "$RUNS" --warmup "$WARMUP" \
    --vs "sh -c 'CDK_OUTDIR=\$(mktemp -d -p \"\$RUNROOT\") exec \"\$GOBASE\"'" \
    -- sh -c 'CDK_OUTDIR=$(mktemp -d -p "$RUNROOT" ours.XXXXXX) exec "$OURS"' >"$WORK/$tag-go-$n.txt"
  f=$(find "$RUNROOT" -maxdepth 1 -name 'ours.*' -print -quit)
  [[ -n $f ]] || { echo "no output of $tag (N=$n):"; cat "$WORK/$tag-go-$n.txt"; exit 1; }
  mode=scoped
  if grep -q 'aws:PrincipalOrg' "$f"/*.template.json; then mode=org; fi
  if grep -q 'grant creators of the accounts of' "$f"/*.template.json; then mode=accounts; fi
  rm -rf "${RUNROOT:?}"/*
  # shellcheck disable=SC2016
  python3 "$B/tools/bench.py" -n "$RUNS" --warmup "$WARMUP" \
    --vs "sh -c 'CDK_OUTDIR=\$(mktemp -d -p \"\$RUNROOT\") exec node \"\$TSAPP\"'" \
    -- sh -c 'CDK_OUTDIR=$(mktemp -d -p "$RUNROOT") exec "$OURS"' >"$WORK/$tag-ts-$n.txt"
  rm -rf "${RUNROOT:?}"/*
  for f in "$WORK/$tag-go-$n.txt" "$WORK/$tag-ts-$n.txt"; do
    if grep -E '^[AB] exit' "$f" | grep -vqE '^[AB] exit 0 \('; then echo "a run failed:"; cat "$f"; exit 1; fi
  done
}

# row N MODE TAG: one table row from pair's output.
row() {
  local n=$1 mode=$2 go=$WORK/$3-go-$1.txt ts=$WORK/$3-ts-$1.txt
  printf '%4s %-8s %10s %10s %10s %10s %10s %9s %9s %9s\n' "$n" "$mode" \
    "$(median 'A wall s' "$go")" "$(median 'B wall s' "$go")" "$(median 'B wall s' "$ts")" \
    "$(median 'A/B wall' "$go")" "$(median 'A/B wall' "$ts")" \
    "$(median 'A peak MiB' "$go")" "$(median 'B peak MiB' "$go")" "$(median 'B peak MiB' "$ts")"
}
header() { printf '%4s %-8s %10s %10s %10s %10s %10s %9s %9s %9s\n' N mode "ours s" "Go s" "TS s" "ours/Go" "ours/TS" "ours MiB" "Go MiB" "TS MiB"; }

for app in $APPS; do
  case $app in
  basic)
    echo
    echo "== 1. examples/basic (more than the baselines' job: IMDSv2, ConfigureAutoScalingGroup, cdk-nag metadata)"
    header
    for n in $NS; do
      ctx=$(python3 "$B/tools/context.py" "$n")
      if [[ ${KEYACCESS:-} == accounts ]]; then
        ctx=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["keyAccess"]="accounts"; print(json.dumps(c))' "$ctx")
      elif (( n >= 20 )); then
        ctx=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["organizationId"]="o-abcdefghij"; print(json.dumps(c))' "$ctx")
      fi
      CDK_CONTEXT_JSON=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["destinations"]=sys.argv[2]; print(json.dumps(c))' "$ctx" "$n")
      export CDK_CONTEXT_JSON DESTINATIONS=$n OURS=$WORK/basic
      pair basic "$n"
      row "$n" "$mode" basic
    done
    ;;
  baselinejob)
    echo
    echo "== 2. test/bench/baselinejob (exactly the baselines' job; the grant from encryptedami)"
    header
    for n in $NS; do
      CDK_CONTEXT_JSON=$(python3 "$B/tools/context.py" "$n")
      export CDK_CONTEXT_JSON DESTINATIONS=$n OURS=$WORK/baselinejob
      pair baselinejob "$n"
      row "$n" "$mode" baselinejob
    done
    ;;
  organization)
    # Not the baselines' job (they have no organization mode): the StackSet
    # of examples/organization for 2 OUs x 3 regions, whatever the number of
    # accounts in them, next to a single destination stack of
    # test/bench/baselinejob (N=1).
    echo
    echo "== 3. examples/organization (2 OUs x 3 regions, any number of accounts) vs one destination stack (baselinejob, N=1)"
    go build -o "$WORK/organization" ./examples/organization
    CDK_OUTDIR=$WORK/warm-organization "$WORK/organization" >/dev/null
    export CDK_CONTEXT_JSON='{"keyArns": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab,arn:aws:kms:eu-west-1:111111111111:key/2234abcd-12ab-34cd-56ef-1234567890ab,arn:aws:kms:ap-southeast-2:111111111111:key/3234abcd-12ab-34cd-56ef-1234567890ab"}'
    export ONE="$WORK/baselinejob" ONECTX
    ONECTX=$(python3 "$B/tools/context.py" 1)
    # shellcheck disable=SC2016
    python3 "$B/tools/bench.py" -n "$RUNS" --warmup "$WARMUP" \
      --vs "sh -c 'CDK_OUTDIR=\$(mktemp -d -p \"\$RUNROOT\") CDK_CONTEXT_JSON=\"\$ONECTX\" exec \"\$ONE\"'" \
      -- sh -c 'CDK_OUTDIR=$(mktemp -d -p "$RUNROOT") exec "$WORK/organization"' >"$WORK/organization.txt"
    if grep -E '^[AB] exit' "$WORK/organization.txt" | grep -vqE '^[AB] exit 0 \('; then echo "a run failed:"; cat "$WORK/organization.txt"; exit 1; fi
    rm -rf "${RUNROOT:?}"/*
    printf '%-34s %10s %10s\n' "" "wall s" "peak MiB"
    printf '%-34s %10s %10s\n' "organization, 2 OUs x 3 regions" "$(median 'A wall s' "$WORK/organization.txt")" "$(median 'A peak MiB' "$WORK/organization.txt")"
    printf '%-34s %10s %10s\n' "one destination stack (N=1)" "$(median 'B wall s' "$WORK/organization.txt")" "$(median 'B peak MiB' "$WORK/organization.txt")"
    printf '%-34s %10s\n' "ratio (median of per-pair ratios)" "$(median 'A/B wall' "$WORK/organization.txt")"
    ;;
  *) echo "unknown app $app in APPS (basic, baselinejob, organization)" >&2; exit 1 ;;
  esac
done
echo
echo "(medians of $RUNS runs; ours/Go and ours/TS are medians of per-pair wall ratios;"
echo " MiB = peak RSS of the largest single process of each app, see this script's header)"

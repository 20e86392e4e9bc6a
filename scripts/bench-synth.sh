#!/usr/bin/env bash
# Synth wall time of examples/basic for N destination accounts, next to the
# hand-written baselines in ../shared/baselines (the same job written by hand
# in Go with AwsCustomResource, and in TypeScript). Prints medians of RUNS
# runs after WARMUP warm-up runs, A/B in turn, warm caches.
#
#   scripts/bench-synth.sh                 # NS="1 10 50" RUNS=5 WARMUP=1
#   BASELINES=/path/to/baselines NS="1 10" RUNS=9 scripts/bench-synth.sh
#
# Each app is run directly (not through the CDK CLI), with CDK_OUTDIR set to
# a fresh directory per run and CDK_CONTEXT_JSON from the baselines'
# tools/context.py, plus {"destinations": N}. One key policy holds about 19
# destinations' scoped statements (KMS's 32 KB limit), so from N=20 on our
# app runs in organization mode (constant-size statements; -c organizationId).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASELINES=${BASELINES:-$ROOT/../shared/baselines}
NS=${NS:-"1 10 50"}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

[[ -d $BASELINES ]] || { echo "no baselines at $BASELINES (set BASELINES)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/bench-synth.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp -r "$BASELINES" "$WORK/baselines"
B=$WORK/baselines

echo "== build (baselines and examples/basic)"
(cd "$B/ts-baseline" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null && node_modules/.bin/tsc)
(cd "$B/go-baseline" && go build -o bin/go-baseline .)
go build -o "$WORK/basic" ./examples/basic
# Warm the handler cache so no run pays for a Go build.
CDK_OUTDIR=$WORK/warm "$WORK/basic" >/dev/null

export RUNROOT=$WORK/runs OURS=$WORK/basic GOBASE=$B/go-baseline/bin/go-baseline TSAPP=$B/ts-baseline/bin/app.js
mkdir -p "$RUNROOT"
median() { awk -v l="$1" 'index($0, l) == 1 { print $(NF - 1); exit }' "$2"; }

printf '\n%4s %-8s %10s %10s %10s %10s %10s\n' N mode "ours s" "Go s" "TS s" "ours/Go" "ours/TS"
for n in $NS; do
  ctx=$(python3 "$B/tools/context.py" "$n")
  mode=scoped
  if (( n >= 20 )); then
    mode=org
    ctx=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["organizationId"]="o-abcdefghij"; print(json.dumps(c))' "$ctx")
  fi
  export CDK_CONTEXT_JSON=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["destinations"]=sys.argv[2]; print(json.dumps(c))' "$ctx" "$n")
  export DESTINATIONS=$n
  # shellcheck disable=SC2016 # expanded by the inner sh, once per run
  python3 "$B/tools/bench.py" -n "$RUNS" --warmup "$WARMUP" \
    --vs "sh -c 'CDK_OUTDIR=\$(mktemp -d -p \"\$RUNROOT\") exec \"\$GOBASE\"'" \
    -- sh -c 'CDK_OUTDIR=$(mktemp -d -p "$RUNROOT") exec "$OURS"' >"$WORK/go-$n.txt"
  rm -rf "${RUNROOT:?}"/*
  python3 "$B/tools/bench.py" -n "$RUNS" --warmup "$WARMUP" \
    --vs "sh -c 'CDK_OUTDIR=\$(mktemp -d -p \"\$RUNROOT\") exec node \"\$TSAPP\"'" \
    -- sh -c 'CDK_OUTDIR=$(mktemp -d -p "$RUNROOT") exec "$OURS"' >"$WORK/ts-$n.txt"
  rm -rf "${RUNROOT:?}"/*
  for f in "$WORK/go-$n.txt" "$WORK/ts-$n.txt"; do
    if grep -E '^[AB] exit' "$f" | grep -vqE '^[AB] exit 0 \('; then echo "a run failed:"; cat "$f"; exit 1; fi
  done
  printf '%4s %-8s %10s %10s %10s %10s %10s\n' "$n" "$mode" \
    "$(median 'A wall s' "$WORK/go-$n.txt")" "$(median 'B wall s' "$WORK/go-$n.txt")" "$(median 'B wall s' "$WORK/ts-$n.txt")" \
    "$(median 'A/B wall' "$WORK/go-$n.txt")" "$(median 'A/B wall' "$WORK/ts-$n.txt")"
done
echo "(medians of $RUNS runs; ours/Go and ours/TS are medians of per-pair ratios)"

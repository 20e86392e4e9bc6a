#!/usr/bin/env bash
# jsii calls per destination: how many requests the Go apps send to the jsii
# kernel (the Node process behind every Go CDK app) for each destination
# account they add. Each app runs once at N=1 and once at N=11 destinations
# (scoped mode: organization mode starts at N=20) and the script prints
# (calls(N=11) - calls(N=1)) / 10.
#
#   scripts/jsii-calls.sh
#   BASELINES=/path/to/baselines scripts/jsii-calls.sh
#
# Apps: test/bench/baselinejob (the baselines' job, with the grant from
# encryptedami), examples/basic, and, when ../shared/baselines is there, the
# hand-written go-baseline for reference.
#
# How calls are counted: with JSII_DEBUG=1 the kernel (@jsii/runtime) echoes
# on stderr every message it receives from the Go runtime as one line
# `> {...}` and every answer as `< {...}`, between its own multi-line
# `[@jsii/kernel] ...` traces. A request of the Go side is a line starting
# with `> {"api":"` (create, invoke, get, set, sinvoke, sget, sset, del,
# naming, begin/end, and load, which is per process and cancels out). Not
# counted: `> {"complete":...}`, the Go side's answer to a kernel callback
# (a `< {"callback":...}` line, counted and shown separately when there are
# any), and `> {"exit":0}`.
#
# Context as in scripts/bench-synth.sh: tools/context.py of the baselines
# (availability zones of every destination account, the CLI's default
# switches), plus {"destinations": N} for examples/basic. Without the
# baselines the apps run without CDK_CONTEXT_JSON (both declare their zones).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASELINES=${BASELINES:-$ROOT/../shared/baselines}
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
unset CDK_CONTEXT_JSON JSII_DEBUG
N1=1
N2=11
WORK=$(mktemp -d /tmp/jsii-calls.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

apps="baselinejob basic"
go build -o "$WORK/baselinejob" ./test/bench/baselinejob
go build -o "$WORK/basic" ./examples/basic
have_baselines=0
if [[ -f $BASELINES/tools/context.py && -d $BASELINES/go-baseline ]]; then
  have_baselines=1
  (cd "$BASELINES/go-baseline" && go build -o "$WORK/go-baseline" .)
  apps+=" go-baseline"
fi

# context APP N: the CDK_CONTEXT_JSON for APP at N destinations (may be empty).
context() {
  [[ $have_baselines == 1 ]] || return 0
  local ctx
  ctx=$(python3 "$BASELINES/tools/context.py" "$2")
  if [[ $1 == basic ]]; then
    ctx=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["destinations"]=sys.argv[2]; print(json.dumps(c))' "$ctx" "$2")
  fi
  printf '%s' "$ctx"
}

# trace APP N: runs APP with JSII_DEBUG=1 at N destinations; the trace goes to $WORK/APP-N.err.
trace() {
  local ctx out=$WORK/out-$1-$2 vars=()
  ctx=$(context "$1" "$2")
  if [[ -n $ctx ]]; then vars+=("CDK_CONTEXT_JSON=$ctx"); fi
  if ! env "${vars[@]}" DESTINATIONS="$2" CDK_OUTDIR="$out" JSII_DEBUG=1 \
    "$WORK/$1" >"$WORK/$1-$2.out" 2>"$WORK/$1-$2.err"; then
    echo "$1 failed at N=$2:" >&2
    grep -v '^\[@jsii\|^[<>] \|^ \|^}' "$WORK/$1-$2.err" | tail -20 >&2
    exit 1
  fi
  rm -rf "$out"
}

calls() { grep -c '^> {"api":"' "$1" || true; }
callbacks() { grep -c '^< {"callback":' "$1" || true; }
# kinds FILE: "<count> <api>" per request kind.
kinds() { grep -o '^> {"api":"[a-z]*"' "$1" | sed 's/.*"api":"//; s/"$//' | sort | uniq -c || true; }

printf '%-12s %10s %10s %28s\n' app "calls N=$N1" "calls N=$N2" "jsii calls per destination"
details=""
for app in $apps; do
  trace "$app" "$N1"
  trace "$app" "$N2"
  a=$WORK/$app-$N1.err b=$WORK/$app-$N2.err
  c1=$(calls "$a") c2=$(calls "$b")
  printf '%-12s %10s %10s %28s\n' "$app" "$c1" "$c2" "$(awk -v x="$c1" -v y="$c2" -v d=$((N2 - N1)) 'BEGIN { printf "%.1f", (y - x) / d }')"
  per_kind=$(join -1 2 -2 2 -a 1 -a 2 -e 0 -o 0,1.1,2.1 <(kinds "$a" | sort -k2) <(kinds "$b" | sort -k2) |
    awk -v d=$((N2 - N1)) '{ if ($3 != $2) printf "%s %.1f, ", $1, ($3 - $2) / d }' | sed 's/, $//')
  details+="  $app per destination by kind: $per_kind"
  cb1=$(callbacks "$a") cb2=$(callbacks "$b")
  if [[ $cb1 != 0 || $cb2 != 0 ]]; then
    details+="; kernel callbacks into Go: $cb1 at N=$N1, $cb2 at N=$N2"
  fi
  details+=$'\n'
done
printf '%s' "$details"
echo "(requests the Go runtime sent, counted as '> {\"api\":' lines of JSII_DEBUG=1 stderr; $([[ $have_baselines == 1 ]] && echo "context from $BASELINES/tools/context.py" || echo "no baselines: no CDK_CONTEXT_JSON"))"

#!/usr/bin/env bash
# Every performance figure the project tracks, in one run:
#   1. synth time of each example app (median of RUNS, warm caches);
#   2. synth time for N = 1, 10, 50 destinations next to ../shared/baselines
#      (scripts/bench-synth.sh: examples/basic and test/bench/baselinejob, with
#      peak memory; skipped with a note when the baselines are absent);
#   2b. jsii calls per destination (scripts/jsii-calls.sh);
#   3. the grant handler's zip size, AWS calls per lifecycle event and warm
#      latency per event (scripts/handler-figures.sh);
#   4. cold and warm handler build time (internal/handlerbuild benchmarks);
#   5. the test suite's wall time (scripts/test.sh), unless SKIP_TESTS=1.
# Medians everywhere: the machines are noisy. Knobs: RUNS (5), NS ("1 10 50").
set -euo pipefail
cd "$(dirname "$0")/.."
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
RUNS=${RUNS:-5}
WORK=$(mktemp -d /tmp/bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== 1. example synth time (median of $RUNS, warm caches, app run directly as cdk synth does)"
for main in examples/*/main.go; do
  example=$(basename "$(dirname "$main")")
  go build -o "$WORK/$example" "./examples/$example"
  CDK_OUTDIR=$WORK/warm-$example "$WORK/$example" >/dev/null 2>&1 # warm the handler cache
  for _ in $(seq "$RUNS"); do
    out=$(mktemp -d -p "$WORK")
    start=$(date +%s.%N)
    CDK_OUTDIR=$out "$WORK/$example" >/dev/null 2>&1
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
    rm -rf "$out"
  done | median | xargs printf '%-12s %s s\n' "$example"
done

echo
echo "== 2. synth time vs the hand-written baselines"
if [[ -d ${BASELINES:-../shared/baselines} ]]; then
  RUNS=$RUNS scripts/bench-synth.sh
else
  echo "no baselines at ${BASELINES:-../shared/baselines}: skipped"
fi

echo
echo "== 2b. jsii calls per destination (JSII_DEBUG=1 at N=1 and N=11)"
scripts/jsii-calls.sh

echo
echo "== 3. grant handler: zip size, AWS calls per event, warm latency"
scripts/handler-figures.sh 50

echo
echo "== 4. handler build time (cold: empty handler cache, warm Go build cache; warm: cache hit)"
go test -run '^$' -bench 'Build|Key' -benchtime 5x ./internal/handlerbuild/ | grep -E '^Benchmark' || true
gocache=$(mktemp -d)
start=$(date +%s.%N)
GOCACHE=$gocache CROSSACCOUNTAMI_CACHE_DIR=$(mktemp -d -p "$WORK") CDK_OUTDIR=$(mktemp -d -p "$WORK") "$WORK/basic" >/dev/null 2>&1
end=$(date +%s.%N)
rm -rf "$gocache"
awk -v a="$start" -v b="$end" 'BEGIN { printf "synth of examples/basic with an empty Go build cache (its handler installed prebuilt): %.1f s\n", b - a }'

if [[ ${SKIP_TESTS:-0} != 1 ]]; then
  echo
  echo "== 5. test suite wall time (scripts/test.sh)"
  start=$(date +%s.%N)
  scripts/test.sh >"$WORK/test.log" 2>&1 || { tail -30 "$WORK/test.log"; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "scripts/test.sh: %.0f s\n", b - a }'
fi

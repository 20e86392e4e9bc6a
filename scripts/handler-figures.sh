#!/usr/bin/env bash
# Figures of the grant handler (the Lambda bootstrap of Custom::KmsGrant and
# Custom::AutoScalingServiceLinkedRole):
#   - size of the deployed zip (linux/arm64, handlerbuild's flags);
#   - AWS calls per lifecycle event, counted at the HTTP layer against
#     moto_server (targets: Create 1, no-op Update 0, Delete 1);
#   - warm in-process latency per event against moto_server (medians).
# Needs Go, zip and moto_server. Usage: scripts/handler-figures.sh [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
pkg=./internal/destinationhandler/bootstrap
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== zip size (linux/arm64)"
GOOS=linux GOARCH=arm64 CGO_ENABLED=0 GOFLAGS= go build -trimpath -buildvcs=false \
  -tags lambda.norpc -pgo=off -ldflags='-s -w -buildid=' -o "$tmp/bootstrap" "$pkg"
(cd "$tmp" && zip -q -9 -X bootstrap.zip bootstrap)
printf 'binary %d bytes, zip -9 %d bytes (budget 3500000)\n' \
  "$(stat -c %s "$tmp/bootstrap")" "$(stat -c %s "$tmp/bootstrap.zip")"
go test -count=1 -run '^TestBootstrapZipSize$' -v ./internal/destinationhandler/ | grep -E 'zip|FAIL' || true

echo "== AWS calls (calls/op) and warm latency (median-ms) per event, $n iterations, against moto"
go test -run '^$' -bench 'EventsAgainstMoto' -benchtime "${n}x" ./internal/destinationhandler/ |
  grep -E '^Benchmark|FAIL' | sed -E 's/^BenchmarkEventsAgainstMoto\///; s/-[0-9]+[[:space:]]/ /'

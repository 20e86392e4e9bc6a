#!/usr/bin/env bash
# The whole test suite: static checks (gofmt, go mod tidy, go vet, staticcheck), then every
# Go test (unit, emulator, synth, golden, cfn-lint, cdk-nag). This is the
# README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go') )
if [[ -n $unformatted ]]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi

echo "== go mod tidy"
# go.mod and go.sum must be what go mod tidy makes of the code: direct
# requirements marked as such, every sum present, nothing stale.
if ! go mod tidy -diff; then echo "go.mod or go.sum is not tidy: run go mod tidy" >&2; exit 1; fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
# Pinned by the tool directive in go.mod; checks chosen in staticcheck.conf.
go tool staticcheck ./...

echo "== go test"
go test -count=1 -timeout 45m ./...

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
# requirements marked as such, every sum present, nothing stale. The same
# for the development tools module (.ci/tools: staticcheck, aws-lambda-rie),
# which keeps those tools out of this module's graph and its consumers'.
if ! go mod tidy -diff; then echo "go.mod or go.sum is not tidy: run go mod tidy" >&2; exit 1; fi
if ! (cd .ci/tools && go mod tidy -diff); then echo ".ci/tools/go.mod or go.sum is not tidy: run go mod tidy in .ci/tools" >&2; exit 1; fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
# Pinned by the tool directive in .ci/tools/go.mod and built there; the
# binary then runs here, so it analyses this module's packages with this
# module's build list. Checks chosen in staticcheck.conf.
staticcheck=$(go tool -C .ci/tools -n staticcheck)
"$staticcheck" ./...

echo "== go test"
go test -count=1 -timeout 45m ./...

package grantspec_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// grantspec keeps its own list so that the constructs (and their synth-time
// validation) need not import the SDK; the SDK's model of CreateGrant's
// Operations is the reference. Only this test imports it.
func sdkGrantOperations() []string {
	var out []string
	for _, op := range types.GrantOperation("").Values() {
		out = append(out, string(op))
	}
	return out
}

func TestOperationsAreTheSDKsGrantOperations(t *testing.T) {
	sdk := sdkGrantOperations()
	for _, op := range sdk {
		if !slices.Contains(grantspec.Operations, op) {
			t.Errorf("the KMS model's grant operation %q is missing from grantspec.Operations (ValidateOperations would reject it)", op)
		}
	}
	for _, op := range grantspec.Operations {
		if !slices.Contains(sdk, op) {
			t.Errorf("grantspec.Operations has %q, which is not a grant operation of the KMS model %v", op, sdk)
		}
	}
	seen := map[string]bool{}
	for _, op := range grantspec.Operations {
		if seen[op] {
			t.Errorf("grantspec.Operations lists %q twice", op)
		}
		seen[op] = true
	}
}

func TestAutoScalingOperationsAreGrantOperations(t *testing.T) {
	sdk := sdkGrantOperations()
	for _, op := range grantspec.AutoScalingOperations {
		if !slices.Contains(sdk, op) || !slices.Contains(grantspec.Operations, op) {
			t.Errorf("grantspec.AutoScalingOperations has %q, which is not in grantspec.Operations %v or the KMS model's %v", op, grantspec.Operations, sdk)
		}
	}
}

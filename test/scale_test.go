package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestTenDestinations(t *testing.T) {
	t.Parallel()
	// GIVEN the example app with ten destination accounts
	a := exampleAssembly(t, "basic", map[string]string{"destinations": "10"})
	artifacts := a.Manifest["artifacts"].(map[string]interface{})
	sids := map[string]bool{}
	for _, s := range keyPolicyStatements(t, a.Templates["AmiSource"]) {
		sid, _ := s["Sid"].(string)
		if sids[sid] {
			t.Errorf("Sid %q repeats in the key policy", sid)
		}
		sids[sid] = true
	}
	for i := 0; i < 10; i++ {
		account := fmt.Sprintf("%012d", 222222222222+i)
		stack := "AmiDestination-" + account
		// THEN every destination stack deploys after the source stack (cdk deploy --all follows the manifest)
		art, ok := artifacts[stack].(map[string]interface{})
		if !ok {
			t.Fatalf("no stack %s in the assembly", stack)
		}
		if deps := strs(art["dependencies"]); !slices.Contains(deps, "AmiSource") {
			t.Errorf("%s dependencies = %v, want AmiSource", stack, deps)
		}
		// AND the key policy has that destination's two statements
		n := 0
		for sid := range sids {
			if strings.Contains(sid, account) {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d statements name %s, want 2", n, account)
		}
	}
	cfnLint(t, a)
}

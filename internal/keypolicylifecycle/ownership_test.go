package keypolicylifecycle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// A resource created before marks existed owns its unmarked Sids. Its first
// Update with marked properties replaces them in one write, so that no
// version of the policy lacks the access; the rollback of that Update puts
// the unmarked statements back and removes the marked ones.
func TestUpdateMigratesUnmarkedStatementsInOneWrite(t *testing.T) {
	// GIVEN a 0.2 resource's statements A and B
	f := newFake()
	legacy := legacyProps(keyArn, stmt("A", "222222222222"), stmt("B", "333333333333"))
	f.policies[keyArn] = ownerPolicy(stmt("A", "222222222222"), stmt("B", "333333333333"))
	legacyPolicy := f.policies[keyArn]
	marked := props(keyArn, mine("A", "222222222222"), mine("B", "333333333333"))

	// WHEN it is updated to the marked statements
	ev := event(cfn.RequestUpdate, physicalID.String(), marked)
	ev.OldResourceProperties = legacy
	if _, err := serve(t, f, ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// THEN one write replaced the unmarked statements by the marked ones
	want := ownerPolicy(mine("A", "222222222222"), mine("B", "333333333333"))
	if len(f.puts) != 1 || f.policies[keyArn] != want {
		t.Errorf("%d writes; policy\n%s\nwant\n%s", len(f.puts), f.policies[keyArn], want)
	}

	// WHEN CloudFormation rolls that Update back
	ev = event(cfn.RequestUpdate, physicalID.String(), legacy)
	ev.OldResourceProperties = marked
	if _, err := serve(t, f, ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// THEN the policy is the 0.2 one again
	if f.policies[keyArn] != legacyPolicy {
		t.Errorf("after the rollback\n%s\nwant\n%s", f.policies[keyArn], legacyPolicy)
	}
}

// An Update that adds a destination whose statement someone applied by
// hand (unmarked) writes the marked copy beside it; the rollback Update
// removes the copy and leaves the hand-applied statement byte for byte.
func TestRollbackOfAnUpdateLeavesHandAppliedStatements(t *testing.T) {
	const handC = `{ "Sid" : "C", "Effect" : "Allow", "Principal" : { "AWS" : "arn:aws:iam::444444444444:root" }, "Action" : [ "kms:Decrypt" ], "Resource" : "*" }`
	f := newFake()
	f.policies[keyArn] = ownerPolicy(mine("A", "222222222222"), handC)
	before := f.policies[keyArn]
	one := props(keyArn, mine("A", "222222222222"))
	two := props(keyArn, mine("A", "222222222222"), mine("C", "444444444444"))

	ev := event(cfn.RequestUpdate, physicalID.String(), two)
	ev.OldResourceProperties = one
	if _, err := serve(t, f, ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(sids(t, f.policies[keyArn]), ","), "Owner,,A"+mark+",C,C"+mark; got != want {
		t.Fatalf("Sids after the Update %q, want %q", got, want)
	}

	ev = event(cfn.RequestUpdate, physicalID.String(), one)
	ev.OldResourceProperties = two
	if _, err := serve(t, f, ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if f.policies[keyArn] != before {
		t.Errorf("after the rollback\n%s\nwant\n%s", f.policies[keyArn], before)
	}
}

// A Delete whose properties do not say which statements to remove fails,
// naming the key, how to remove them by hand and --retain-resources,
// rather than answer SUCCESS and leave another account's access in the key
// policy. A Delete whose physical id names no key (a Create that failed
// before writing) still succeeds without a call.
func TestDeleteThatCannotTellWhatToRemoveFails(t *testing.T) {
	for _, tc := range []struct {
		name     string
		physical string
		props    map[string]interface{}
		wants    []string // "" for success
	}{
		{"statements not JSON", physicalID.String(), map[string]interface{}{"KeyArn": keyArn, "Statements": "{", "SidSuffix": mark},
			[]string{"cannot tell which statements to remove from the policy of " + keyArn, "Statements: expected a JSON array", "aws kms get-key-policy --key-id " + keyArn, "--retain-resources KeyPolicy"}},
		{"another stack's mark", physicalID.String(), map[string]interface{}{"KeyArn": keyArn, "SidSuffix": " [crossaccountami 00000000]", "Statements": "[" + stmt("A [crossaccountami 00000000]", "222222222222") + "]"},
			[]string{"cannot tell which statements to remove", `marks its statements with "` + mark + `"`, "--retain-resources KeyPolicy"}},
		{"a rollback id with invalid properties", physicalID.String() + "/keep-8", map[string]interface{}{"KeyArn": keyArn},
			[]string{"cannot tell which statements to remove", "Statements: required", "--retain-resources KeyPolicy"}},
		{"the request id of a failed Create", requestID, map[string]interface{}{"KeyArn": "not an ARN"}, nil},
		{"a physical id that names nothing", "arn:aws:kms:us-east-1:111111111111:alias/x/0123456789abcdef", map[string]interface{}{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.policies[keyArn] = ownerPolicy(mine("A", "222222222222"))
			before := f.policies[keyArn]
			_, err := serve(t, f, event(cfn.RequestDelete, tc.physical, tc.props), 5*time.Second)
			if tc.wants == nil && err != nil {
				t.Errorf("Delete failed: %v", err)
			}
			for _, w := range tc.wants {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not contain %q", err, w)
				}
			}
			if len(f.calls) != 0 || f.policies[keyArn] != before {
				t.Errorf("calls %v; policy %s", f.calls, f.policies[keyArn])
			}
		})
	}
}

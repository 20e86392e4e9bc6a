package keypolicylifecycle_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/routertest"
)

const requestID = "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c"

func serve(t *testing.T, f *fakeKMS, ev cfn.Event, timeout time.Duration) (string, error) {
	t.Helper()
	return routertest.Serve(t, keypolicyspec.ResourceType, handler(f), ev, timeout)
}

func event(typ cfn.RequestType, physical string, p map[string]interface{}) cfn.Event {
	return cfn.Event{
		RequestType: typ, ResourceType: keypolicyspec.ResourceType, StackID: stackID,
		RequestID: requestID, LogicalResourceID: "KeyPolicy",
		PhysicalResourceID: physical, ResourceProperties: p,
	}
}

// ownerPolicy is a policy in the form this handler writes (compact between
// statements), so that "as before" can be checked byte for byte.
func ownerPolicy(extra ...string) string {
	stmts := append([]string{stmt("Owner", "111111111111"), `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/Admin"},"Action":"kms:*","Resource":"*"}`}, extra...)
	return `{"Version":"2012-10-17","Id":"key-consolepolicy-3","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// A statement applied by hand from the construct's warning: the same
// content as stmt("A", "222222222222"), written with other whitespace.
const handApplied = `{ "Sid" : "A", "Effect" : "Allow", "Principal" : { "AWS" : "arn:aws:iam::222222222222:root" }, "Action" : [ "kms:Decrypt" ], "Resource" : "*" }`

var physicalID = keypolicyspec.NewPhysicalID(keyArn, stackID, "KeyPolicy")

// A Create that fails after it wrote the key policy answers an id whose
// rollback Delete leaves the policy exactly as it was before the Create.
func TestFailedCreateIsRolledBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare makes the Create fail after its first write.
		prepare func(f *fakeKMS)
		timeout time.Duration
	}{
		{"read-back fails", func(f *fakeKMS) {
			f.afterPut = func(f *fakeKMS, n int) { f.errs["GetKeyPolicy"] = apiErr("KMSInternalException", "read-back failed") }
		}, 5 * time.Second},
		{"never converges", func(f *fakeKMS) {
			// Another writer keeps writing the policy it read before ours,
			// plus A: B is missing at every read-back.
			f.afterPut = func(f *fakeKMS, n int) { f.policies[keyArn] = ownerPolicy(stmt("A", "222222222222")) }
		}, 5 * time.Second},
		{"deadline passes during PutKeyPolicy", func(f *fakeKMS) {
			f.stalled = make(chan struct{})
		}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN a key policy with its owner's statements
			f := newFake()
			before := ownerPolicy()
			f.policies[keyArn] = before
			tc.prepare(f)
			p := props(keyArn, stmt("A", "222222222222"), stmt("B", "333333333333"))

			// WHEN the Create fails after writing A and B
			id, err := serve(t, f, event(cfn.RequestCreate, "", p), tc.timeout)
			if f.stalled != nil {
				<-f.stalled
			}
			if err == nil {
				t.Fatal("the Create succeeded")
			}
			if f.policies[keyArn] == before {
				t.Fatal("the Create did not write the policy")
			}

			// THEN it answers the resource's physical id (it adopted nothing)
			if id != physicalID.String() {
				t.Fatalf("FAILED answer with physical id %q, want %q (%v)", id, physicalID, err)
			}

			// WHEN CloudFormation rolls back: a Delete of that id, same properties
			f.errs, f.afterPut, f.stalled, f.calls = map[string]error{}, nil, nil, nil
			if _, err := serve(t, f, event(cfn.RequestDelete, id, p), 5*time.Second); err != nil {
				t.Fatalf("rollback Delete: %v", err)
			}
			// THEN the policy is byte for byte what it was before the Create
			if got := f.policies[keyArn]; got != before {
				t.Errorf("after the rollback\n%s\nwant\n%s", got, before)
			}
			if got := strings.Join(f.calls, ","); got != "GetKeyPolicy,PutKeyPolicy,GetKeyPolicy" {
				t.Errorf("rollback calls %s", got)
			}
		})
	}
}

// The rollback of a failed Create leaves the statements it adopted (they
// were in the policy before it, with the same content) and removes only
// those it added.
func TestFailedCreateRollbackLeavesAdoptedStatements(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stmts  []string // the properties' statements
		before string
		wantID string
	}{
		{"first statement adopted", []string{stmt("A", "222222222222"), stmt("B", "333333333333")}, ownerPolicy(handApplied), physicalID.String() + "/keep-8"},
		{"second statement adopted", []string{stmt("B", "333333333333"), stmt("A", "222222222222")}, ownerPolicy(handApplied), physicalID.String() + "/keep-4"},
		{"two of three adopted", []string{stmt("A", "222222222222"), stmt("B", "333333333333"), stmt("C", "444444444444")}, ownerPolicy(stmt("C", "444444444444"), handApplied), physicalID.String() + "/keep-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.policies[keyArn] = tc.before
			f.afterPut = func(f *fakeKMS, n int) { f.errs["GetKeyPolicy"] = apiErr("KMSInternalException", "read-back failed") }
			p := props(keyArn, tc.stmts...)

			id, err := serve(t, f, event(cfn.RequestCreate, "", p), 5*time.Second)
			if err == nil || id != tc.wantID {
				t.Fatalf("answer %q, %v; want FAILED with %q", id, err, tc.wantID)
			}
			if len(f.puts) != 1 {
				t.Fatalf("%d writes", len(f.puts))
			}

			f.errs, f.afterPut, f.calls = map[string]error{}, nil, nil
			if _, err := serve(t, f, event(cfn.RequestDelete, id, p), 5*time.Second); err != nil {
				t.Fatalf("rollback Delete: %v", err)
			}
			if got := f.policies[keyArn]; got != tc.before {
				t.Errorf("after the rollback\n%s\nwant\n%s", got, tc.before)
			}
		})
	}
}

// Adoption is judged from the policy read just before the Create's first
// write, not from a later round: what a later round finds was written by
// this Create (or put back by it).
func TestAdoptionIsJudgedBeforeTheFirstWrite(t *testing.T) {
	t.Run("a statement this create wrote is not adopted in a later round", func(t *testing.T) {
		// GIVEN a writer that, after our first write, writes a policy with
		// our B but without our A; and a read-back that fails in round 2
		f := newFake()
		before := ownerPolicy()
		f.policies[keyArn] = before
		f.afterPut = func(f *fakeKMS, n int) {
			switch n {
			case 1:
				f.policies[keyArn] = ownerPolicy(stmt("B", "333333333333"))
			case 2:
				f.errs["GetKeyPolicy"] = apiErr("KMSInternalException", "read-back failed")
			}
		}
		p := props(keyArn, stmt("A", "222222222222"), stmt("B", "333333333333"))
		id, err := serve(t, f, event(cfn.RequestCreate, "", p), 5*time.Second)
		// THEN B, found in round 2, is not kept: the Create wrote it
		if err == nil || id != physicalID.String() || len(f.puts) != 2 {
			t.Fatalf("answer %q, %v after %d writes; want FAILED with %q after 2", id, err, len(f.puts), physicalID)
		}
		f.errs, f.afterPut = map[string]error{}, nil
		if _, err := serve(t, f, event(cfn.RequestDelete, id, p), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := f.policies[keyArn]; got != before {
			t.Errorf("after the rollback\n%s\nwant\n%s", got, before)
		}
	})
	t.Run("an adopted statement a writer removed stays adopted", func(t *testing.T) {
		// GIVEN A applied by hand, a writer that removes it after our first
		// write, and a read-back that fails in round 2
		f := newFake()
		before := ownerPolicy(handApplied)
		f.policies[keyArn] = before
		f.afterPut = func(f *fakeKMS, n int) {
			switch n {
			case 1:
				f.policies[keyArn] = ownerPolicy()
			case 2:
				f.errs["GetKeyPolicy"] = apiErr("KMSInternalException", "read-back failed")
			}
		}
		p := props(keyArn, stmt("A", "222222222222"), stmt("B", "333333333333"))
		id, err := serve(t, f, event(cfn.RequestCreate, "", p), 5*time.Second)
		// THEN A is still the one kept
		if want := physicalID.String() + "/keep-8"; err == nil || id != want || len(f.puts) != 2 {
			t.Fatalf("answer %q, %v after %d writes; want FAILED with %q after 2", id, err, len(f.puts), want)
		}
		f.errs, f.afterPut = map[string]error{}, nil
		if _, err := serve(t, f, event(cfn.RequestDelete, id, p), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if got, want := sids(t, f.policies[keyArn]), []string{"Owner", "", "A"}; !slices.Equal(got, want) {
			t.Errorf("Sids after the rollback %q, want %q", got, want)
		}
	})
}

// A Create that fails before it wrote anything answers the request id, and
// the rollback Delete of that id makes no call.
func TestCreateFailingBeforeAnyWriteAnswersTheRequestID(t *testing.T) {
	var big []string
	for i := 0; i < 20; i++ {
		big = append(big, fmt.Sprintf(`{"Sid":"Big%02d","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":%q}}}`, i, strings.Repeat("x", 2000)))
	}
	for _, tc := range []struct {
		name    string
		prepare func(f *fakeKMS)
		props   map[string]interface{}
		wantErr string
	}{
		{"invalid properties", nil, props("arn:aws:kms:us-east-1:111111111111:alias/x", stmt("A", "222222222222")), "invalid Custom::KmsKeyPolicyStatements properties"},
		{"Sid conflict", func(f *fakeKMS) { f.policies[keyArn] = ownerPolicy(stmt("A", "999999999999")) }, props(keyArn, stmt("A", "222222222222"), stmt("B", "333333333333")), `Sid "A" and other content`},
		{"GetKeyPolicy fails", func(f *fakeKMS) { f.errs["GetKeyPolicy"] = apiErr("AccessDeniedException", "no") }, props(keyArn, stmt("A", "222222222222")), "KMS GetKeyPolicy"},
		{"over the size limit", nil, props(keyArn, big...), "the merged key policy would be"},
		{"KMS rejects the first write", func(f *fakeKMS) {
			f.errs["PutKeyPolicy"] = &types.MalformedPolicyDocumentException{Message: aws.String("invalid principal")}
		}, props(keyArn, stmt("A", "222222222222")), "MalformedPolicyDocumentException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.policies[keyArn] = ownerPolicy()
			if tc.prepare != nil {
				tc.prepare(f)
			}
			before := f.policies[keyArn]
			id, err := serve(t, f, event(cfn.RequestCreate, "", tc.props), 5*time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if id != "" {
				t.Fatalf("FAILED answer with physical id %q, want the request id", id)
			}
			// cfn.LambdaWrap answers the request id; CloudFormation deletes that.
			f.errs, f.calls = map[string]error{}, nil
			if _, err := serve(t, f, event(cfn.RequestDelete, requestID, tc.props), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if len(f.calls) != 0 || f.policies[keyArn] != before {
				t.Errorf("rollback Delete made calls %v; policy %s", f.calls, f.policies[keyArn])
			}
		})
	}
}

// A first PutKeyPolicy whose outcome is in doubt (a server error) may have
// written: the Create answers the rollback id.
func TestCreateWhoseFirstWriteIsInDoubtAnswersTheRollbackID(t *testing.T) {
	f := newFake()
	f.policies[keyArn] = ownerPolicy(handApplied)
	f.errs["PutKeyPolicy"] = &types.KMSInternalException{Message: aws.String("internal error")} // a server fault
	id, err := serve(t, f, event(cfn.RequestCreate, "", props(keyArn, stmt("A", "222222222222"), stmt("B", "333333333333"))), 5*time.Second)
	if want := physicalID.String() + "/keep-8"; err == nil || id != want {
		t.Errorf("answer %q, %v; want FAILED with %q", id, err, want)
	}
}

// A resource that was created owns every statement of its properties,
// adopted ones included: its Delete removes them all, and a successful
// Create answers the physical id without keep indexes.
func TestDeleteOfACreatedResourceRemovesAdoptedStatements(t *testing.T) {
	f := newFake()
	before := ownerPolicy()
	f.policies[keyArn] = ownerPolicy(handApplied)
	p := props(keyArn, stmt("A", "222222222222"), stmt("B", "333333333333"))
	id, err := serve(t, f, event(cfn.RequestCreate, "", p), 5*time.Second)
	if err != nil || id != physicalID.String() {
		t.Fatalf("Create answered %q, %v", id, err)
	}
	if _, err := serve(t, f, event(cfn.RequestDelete, id, p), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := f.policies[keyArn]; got != before {
		t.Errorf("after Delete\n%s\nwant\n%s", got, before)
	}
}

package keypolicylifecycle_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/keypolicylifecycle"
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
// content as mine("A", "222222222222"), written with other whitespace.
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
			f.afterPut = func(f *fakeKMS, n int) { f.policies[keyArn] = ownerPolicy(mine("A", "222222222222")) }
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
			p := props(keyArn, mine("A", "222222222222"), mine("B", "333333333333"))

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

// ownCopy is this resource's statement A as KMS may return it after an
// earlier delivery of the same Create wrote it: the marked Sid, the same
// content, other whitespace.
const ownCopy = `{ "Sid" : "A` + mark + `", "Effect" : "Allow", "Principal" : { "AWS" : "arn:aws:iam::222222222222:root" }, "Action" : [ "kms:Decrypt" ], "Resource" : "*" }`

// Resources created before marks existed (0.2) answered a rollback id that
// kept the statements their failed Create adopted. Their rollback Delete,
// sent with their unmarked properties, still leaves those statements.
func TestFailedCreateRollbackLeavesAdoptedStatements(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stmts   []string // the 0.2 properties' statements
		keep    string   // the rollback id's bitmap
		written string   // the policy the failed 0.2 Create left
		want    string   // the policy before that Create
	}{
		{"first statement adopted", []string{stmt("A", "222222222222"), stmt("B", "333333333333")}, "8",
			ownerPolicy(handApplied, stmt("B", "333333333333")), ownerPolicy(handApplied)},
		{"second statement adopted", []string{stmt("B", "333333333333"), stmt("A", "222222222222")}, "4",
			ownerPolicy(handApplied, stmt("B", "333333333333")), ownerPolicy(handApplied)},
		{"two of three adopted", []string{stmt("A", "222222222222"), stmt("B", "333333333333"), stmt("C", "444444444444")}, "a",
			ownerPolicy(stmt("C", "444444444444"), handApplied, stmt("B", "333333333333")), ownerPolicy(stmt("C", "444444444444"), handApplied)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.policies[keyArn] = tc.written
			id := physicalID.String() + "/keep-" + tc.keep
			if _, err := serve(t, f, event(cfn.RequestDelete, id, legacyProps(keyArn, tc.stmts...)), 5*time.Second); err != nil {
				t.Fatalf("rollback Delete: %v", err)
			}
			if got := f.policies[keyArn]; got != tc.want {
				t.Errorf("after the rollback\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// A statement with this resource's marked Sid and the same content is its
// own, found there before a Create's first write or not: an earlier
// delivery of the same Create wrote it. A Create that fails after writing
// answers the plain physical id, and its rollback Delete removes every
// marked statement, that one included: no access outlives the stack's
// rollback. The unmarked statement applied by hand stays.
func TestARetriedCreateOwnsItsMarkedStatements(t *testing.T) {
	f := newFake()
	before := ownerPolicy(handApplied)
	f.policies[keyArn] = ownerPolicy(handApplied, ownCopy)
	f.afterPut = func(f *fakeKMS, n int) { f.errs["GetKeyPolicy"] = apiErr("KMSInternalException", "read-back failed") }
	p := props(keyArn, mine("A", "222222222222"), mine("B", "333333333333"))

	id, err := serve(t, f, event(cfn.RequestCreate, "", p), 5*time.Second)
	if err == nil || id != physicalID.String() {
		t.Fatalf("answer %q, %v; want FAILED with %q", id, err, physicalID)
	}
	f.errs, f.afterPut = map[string]error{}, nil
	if _, err := serve(t, f, event(cfn.RequestDelete, id, p), 5*time.Second); err != nil {
		t.Fatalf("rollback Delete: %v", err)
	}
	if got := f.policies[keyArn]; got != before {
		t.Errorf("after the rollback\n%s\nwant\n%s", got, before)
	}
}

// A Create that fails before it wrote anything answers the request id, and
// the rollback Delete of that id makes no call.
func TestCreateFailingBeforeAnyWriteAnswersTheRequestID(t *testing.T) {
	var big []string
	for i := 0; i < 20; i++ {
		big = append(big, fmt.Sprintf(`{"Sid":"Big%02d`+mark+`","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":%q}}}`, i, strings.Repeat("x", 2000)))
	}
	for _, tc := range []struct {
		name    string
		prepare func(f *fakeKMS)
		props   map[string]interface{}
		wantErr string
	}{
		{"invalid properties", nil, props("arn:aws:kms:us-east-1:111111111111:alias/x", mine("A", "222222222222")), "invalid Custom::KmsKeyPolicyStatements properties"},
		{"Sid conflict", func(f *fakeKMS) { f.policies[keyArn] = ownerPolicy(mine("A", "999999999999")) }, props(keyArn, mine("A", "222222222222"), mine("B", "333333333333")), `Sid "A` + mark + `" and other content`},
		{"GetKeyPolicy fails", func(f *fakeKMS) { f.errs["GetKeyPolicy"] = apiErr("AccessDeniedException", "no") }, props(keyArn, mine("A", "222222222222")), "KMS GetKeyPolicy"},
		{"over the size limit", nil, props(keyArn, big...), "the merged key policy would be"},
		// A resource of this version always carries the stack's mark: one
		// without, or with another stack's (a template deployed under
		// another name), would take over statements it did not write.
		{"no SidSuffix", nil, legacyProps(keyArn, stmt("A", "222222222222")), "SidSuffix: required"},
		{"another stack's mark", nil, map[string]interface{}{"KeyArn": keyArn, "SidSuffix": " [crossaccountami 00000000]", "Statements": "[" + stmt("A [crossaccountami 00000000]", "222222222222") + "]"},
			`SidSuffix: the stack arn:aws:cloudformation:us-east-1:111111111111:stack/Source/11111111-2222-3333-4444-555555555555 marks its statements with " [crossaccountami 7cdacd29]", got " [crossaccountami 00000000]"`},
		{"KMS rejects the first write", func(f *fakeKMS) {
			f.errs["PutKeyPolicy"] = &types.MalformedPolicyDocumentException{Message: aws.String("invalid principal")}
		}, props(keyArn, mine("A", "222222222222")), "MalformedPolicyDocumentException"},
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

// A first PutKeyPolicy whose outcome is in doubt (a server error) may have
// written: the Create answers its physical id, also when a marked statement
// was there before (it is this resource's own).
func TestCreateWhoseFirstWriteIsInDoubtAnswersThePhysicalID(t *testing.T) {
	f := newFake()
	f.policies[keyArn] = ownerPolicy(handApplied, ownCopy)
	f.errs["PutKeyPolicy"] = &types.KMSInternalException{Message: aws.String("internal error")} // a server fault
	id, err := serve(t, f, event(cfn.RequestCreate, "", props(keyArn, mine("A", "222222222222"), mine("B", "333333333333"))), 5*time.Second)
	if err == nil || id != physicalID.String() {
		t.Errorf("answer %q, %v; want FAILED with %q", id, err, physicalID)
	}
}

// A resource that was created owns every statement of its properties,
// the marked copies found there before its Create included: its Delete
// removes them all, and a successful Create answers the physical id. A
// statement applied by hand under the unmarked Sid is not the resource's:
// the stack's rollback after a successful Create leaves it.
func TestDeleteOfACreatedResourceRemovesAdoptedStatements(t *testing.T) {
	f := newFake()
	before := ownerPolicy(handApplied)
	f.policies[keyArn] = ownerPolicy(handApplied, ownCopy)
	p := props(keyArn, mine("A", "222222222222"), mine("B", "333333333333"))
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

// routerServe is serve with a handler of the test's own (its CleanupReserve set).
func routerServe(t *testing.T, h *keypolicylifecycle.Handler, ev cfn.Event, timeout time.Duration) (string, error) {
	t.Helper()
	return routertest.Serve(t, keypolicyspec.ResourceType, h, ev, timeout)
}

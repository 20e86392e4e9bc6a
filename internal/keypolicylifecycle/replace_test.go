package keypolicylifecycle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// An Update that moves the statements to another key writes the new key's
// policy first; CloudFormation's rollback Update after a FAILED answer
// only re-applies the old properties, to the old key. So a replacing Update
// that fails after writing removes what it wrote from the new key before it
// answers, keeping time in reserve for that, and the new key's policy is as
// it was (a statement applied there by hand included).
func TestFailedReplacingUpdateRemovesWhatItWroteOnTheNewKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(f *fakeKMS)
	}{
		{"read-back fails", func(f *fakeKMS) {
			f.afterPut = func(f *fakeKMS, n int) {
				if n == 1 {
					f.getErrOnce = apiErr("KMSInternalException", "read-back failed")
				}
			}
		}},
		{"deadline passes during PutKeyPolicy", func(f *fakeKMS) { f.stalled = make(chan struct{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN the resource's statements on the old key, and the new
			// key's policy with its owner's statements and one applied by hand
			f := newFake()
			oldProps := props(keyArn, mine("A", "222222222222"))
			f.policies[keyArn] = ownerPolicy(mine("A", "222222222222"))
			oldBefore := f.policies[keyArn]
			newBefore := ownerPolicy(handApplied)
			f.policies[otherKey] = newBefore
			tc.prepare(f)
			h := handler(f)
			h.CleanupReserve = 500 * time.Millisecond
			ev := event(cfn.RequestUpdate, physicalID.String(), props(otherKey, mine("A", "222222222222"), mine("B", "333333333333")))
			ev.OldResourceProperties = oldProps

			// WHEN the Update fails after writing the new key's policy
			id, err := routerServe(t, h, ev, 3*time.Second)
			if f.stalled != nil {
				<-f.stalled
			}

			// THEN it answers FAILED with the old physical id (the fallback)
			if err == nil || id != "" {
				t.Fatalf("answer %q, %v; want FAILED with the old physical id", id, err)
			}
			if !strings.Contains(err.Error(), "removed the statements it wrote on "+otherKey) {
				t.Errorf("reason %q does not say it cleaned up", err)
			}
			// AND the new key's policy is what it was, the old key's untouched
			if got := f.policies[otherKey]; got != newBefore {
				t.Errorf("new key after the failed Update\n%s\nwant\n%s", got, newBefore)
			}
			if got := f.policies[keyArn]; got != oldBefore {
				t.Errorf("old key\n%s\nwant\n%s", got, oldBefore)
			}
		})
	}
}

// A replacing Update whose first write KMS rejects wrote nothing: there is
// nothing to remove, and nothing else is written.
func TestRejectedReplacingUpdateWritesNothing(t *testing.T) {
	f := newFake()
	f.policies[otherKey] = ownerPolicy()
	f.errs["PutKeyPolicy"] = apiErr("MalformedPolicyDocumentException", "invalid principal")
	ev := event(cfn.RequestUpdate, physicalID.String(), props(otherKey, mine("A", "222222222222")))
	ev.OldResourceProperties = props(keyArn, mine("A", "222222222222"))
	if _, err := serve(t, f, ev, 3*time.Second); err == nil || !strings.Contains(err.Error(), "MalformedPolicyDocumentException") {
		t.Fatalf("error %v", err)
	}
	if len(f.puts) != 1 || f.policies[otherKey] != ownerPolicy() {
		t.Errorf("%d writes; new key %s", len(f.puts), f.policies[otherKey])
	}
}

// The cleanup of a failed replacing Update removes what that Update wrote
// and nothing that was on the new key before it, marked statements
// included: the new key's policy is as it was.
func TestFailedReplacingUpdateKeepsWhatWasOnTheNewKeyBefore(t *testing.T) {
	f := newFake()
	newBefore := ownerPolicy(ownCopy)
	f.policies[otherKey] = newBefore
	f.afterPut = func(f *fakeKMS, n int) {
		if n == 1 {
			f.getErrOnce = apiErr("KMSInternalException", "read-back failed")
		}
	}
	ev := event(cfn.RequestUpdate, physicalID.String(), props(otherKey, mine("A", "222222222222"), mine("B", "333333333333")))
	ev.OldResourceProperties = props(keyArn, mine("A", "222222222222"))
	_, err := serve(t, f, ev, 3*time.Second)
	if err == nil || !strings.Contains(err.Error(), `removed the statements it wrote on `+otherKey+` ("B`+mark+`")`) {
		t.Fatalf("error %v", err)
	}
	if got := f.policies[otherKey]; got != ownerPolicy(ownCopy) {
		t.Errorf("new key after the failed Update\n%s\nwant\n%s", got, newBefore)
	}
}

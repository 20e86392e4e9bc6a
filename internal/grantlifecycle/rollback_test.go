package grantlifecycle

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/fakekms"
	"github.com/crossaccountami/crossaccountami/internal/testenv/routertest"
)

// The tests here follow what CloudFormation does after a failure: the
// answer's physical id is what the rollback acts on.

func serve(t *testing.T, h *Handler, ev cfn.Event, timeout time.Duration) (string, error) {
	t.Helper()
	return routertest.Serve(t, grantspec.ResourceType, h, ev, timeout)
}

func event(typ cfn.RequestType, physical string, p map[string]interface{}) cfn.Event {
	return cfn.Event{
		RequestType: typ, ResourceType: grantspec.ResourceType, StackID: stackID,
		RequestID: "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c", LogicalResourceID: "AmiGrant",
		PhysicalResourceID: physical, ResourceProperties: p,
	}
}

// grantStore is a key's grants as KMS keeps them, behind the fake's calls:
// ListGrants lists the key's, ListRetirableGrants those naming the asked
// retiring principal, RetireGrant and RevokeGrant remove one, CreateGrant
// (with create) adds one.
type grantStore struct {
	grants  []types.GrantListEntry
	removed []string
	// next are the ids CreateGrant gives new grants, in order.
	next []string
}

func (s *grantStore) add(g types.GrantListEntry) { s.grants = append(s.grants, g) }

func (s *grantStore) ids() []string {
	var out []string
	for _, g := range s.grants {
		out = append(out, aws.ToString(g.GrantId))
	}
	return out
}

func (s *grantStore) fake(t *testing.T) *fakeKMS {
	// remove answers NotFoundException for a grant that is not there, as KMS does.
	remove := func(id string) error {
		n := len(s.grants)
		s.grants = slices.DeleteFunc(s.grants, func(g types.GrantListEntry) bool { return aws.ToString(g.GrantId) == id })
		if len(s.grants) == n {
			return &types.NotFoundException{Message: aws.String("Grant ID " + id + " not found")}
		}
		s.removed = append(s.removed, id)
		return nil
	}
	return &fakeKMS{t: t,
		listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
			return &kms.ListGrantsOutput{Grants: slices.Clone(s.grants)}, nil
		},
		retirable: func(in *kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
			return retirableOf(s.grants...)(in)
		},
		retireGrant: func(in *kms.RetireGrantInput) (*kms.RetireGrantOutput, error) {
			return &kms.RetireGrantOutput{}, remove(aws.ToString(in.GrantId))
		},
		revokeGrant: func(in *kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error) {
			return &kms.RevokeGrantOutput{}, remove(aws.ToString(in.GrantId))
		},
		createGrant: func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
			g := types.GrantListEntry{KeyId: in.KeyId, Name: in.Name, GranteePrincipal: in.GranteePrincipal,
				RetiringPrincipal: in.RetiringPrincipal, Operations: slices.Clone(in.Operations), Constraints: in.Constraints}
			for _, old := range s.grants {
				if matches(propertiesOf(in), aws.ToString(in.Name), old) {
					// KMS answers a repeated name and parameters with the grant.
					return &kms.CreateGrantOutput{GrantId: old.GrantId}, nil
				}
			}
			if len(s.next) == 0 {
				t.Fatalf("CreateGrant %+v: the store has no more grant ids", in)
			}
			g.GrantId, s.next = aws.String(s.next[0]), s.next[1:]
			s.add(g)
			return &kms.CreateGrantOutput{GrantId: g.GrantId}, nil
		},
	}
}

// propertiesOf is the definition a CreateGrant asks for.
func propertiesOf(in *kms.CreateGrantInput) grantspec.Properties {
	p := grantspec.Properties{KeyArn: aws.ToString(in.KeyId), GranteePrincipal: aws.ToString(in.GranteePrincipal), RetiringPrincipal: aws.ToString(in.RetiringPrincipal)}
	for _, op := range in.Operations {
		p.Operations = append(p.Operations, string(op))
	}
	if in.Constraints != nil {
		p.EncryptionContextEquals, p.EncryptionContextSubset = in.Constraints.EncryptionContextEquals, in.Constraints.EncryptionContextSubset
	}
	return p
}

// lostAnswer is KMS acting on CreateGrant and the answer never arriving:
// the call returns only when its context ends. With a store, KMS made the
// grant id (it is added to the store); without, KMS answered with a grant
// that already existed (same name and parameters) and made none.
type lostAnswer struct {
	*fakeKMS
	store *grantStore
	id    string
}

func (l *lostAnswer) CreateGrant(ctx context.Context, in *kms.CreateGrantInput, _ ...func(*kms.Options)) (*kms.CreateGrantOutput, error) {
	l.calls = append(l.calls, "CreateGrant")
	if l.store != nil {
		l.store.add(types.GrantListEntry{GrantId: aws.String(l.id), KeyId: in.KeyId, Name: in.Name,
			GranteePrincipal: in.GranteePrincipal, RetiringPrincipal: in.RetiringPrincipal, Operations: slices.Clone(in.Operations)})
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// Grants that share the Create's name but that it did not make: by hand
// (no retiring principal), by another destination's handler, and an older
// grant of this handler with other operations.
func strangers() []types.GrantListEntry {
	name := aws.String(grantspec.DefaultName(stackID, "AmiGrant"))
	otherSLR := strings.Replace(grantee, "222222222222", "333333333333", 1)
	return []types.GrantListEntry{
		{GrantId: aws.String("aaaa"), KeyId: aws.String(keyARN), Name: name, GranteePrincipal: aws.String(grantee), Operations: []types.GrantOperation{"CreateGrant", "Decrypt"}},
		{GrantId: aws.String("bbbb"), KeyId: aws.String(keyARN), Name: name, GranteePrincipal: aws.String(otherSLR), RetiringPrincipal: aws.String(otherRole), Operations: []types.GrantOperation{"CreateGrant", "Decrypt"}},
		{GrantId: aws.String("cccc"), KeyId: aws.String(keyARN), Name: name, GranteePrincipal: aws.String(grantee), RetiringPrincipal: aws.String(handlerRole), Operations: []types.GrantOperation{"Decrypt"}},
	}
}

// A Create whose CreateGrant reaches KMS but never answers in time must not
// leak the grant, and its rollback must not touch a grant it did not make:
// the FAILED answer names the key and the grant name, and the rollback
// Delete removes exactly the grant matching the Create's properties.
func TestTimedOutCreateLeavesNoGrant(t *testing.T) {
	for _, tc := range []struct {
		name      string
		props     map[string]interface{}
		wantCalls []string
	}{
		{"owned grant: found among the role's retirable grants, retired", props(owned), []string{"ListRetirableGrants", "RetireGrant"}},
		{"grant of another retiring principal: found on the key, revoked", props(set("RetiringPrincipal", otherRole)), []string{"ListGrants", "RevokeGrant"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN a key with three grants of the same name that are not this resource's
			store := &grantStore{}
			for _, g := range strangers() {
				store.add(g)
			}
			h := New(&lostAnswer{fakeKMS: store.fake(t), store: store, id: grantID}, handlerRole)

			// WHEN the Create times out while CreateGrant is in flight
			physicalID, err := serve(t, h, event(cfn.RequestCreate, "", tc.props), time.Second)

			// THEN it fails with a physical id that names the key and the grant name
			if err == nil {
				t.Fatal("the Create succeeded")
			}
			name := grantspec.DefaultName(stackID, "AmiGrant")
			if pending, ok := grantspec.ParsePendingID(physicalID); !ok || pending != (grantspec.PendingID{KeyArn: keyARN, Name: name}) {
				t.Fatalf("physical id %q, want the pending id of %s on %s", physicalID, name, keyARN)
			}

			// WHEN CloudFormation rolls back with a Delete of that id
			f := store.fake(t)
			if _, err := serve(t, New(f, handlerRole), event(cfn.RequestDelete, physicalID, tc.props), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			// THEN the grant the failed Create made is gone, and only that one
			if !slices.Equal(store.removed, []string{grantID}) || !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("removed %v with calls %v, want only %s with %v", store.removed, f.calls, grantID, tc.wantCalls)
			}
			if !slices.Equal(store.ids(), []string{"aaaa", "bbbb", "cccc"}) {
				t.Errorf("grants left %v, want the three that are not this resource's", store.ids())
			}
		})
	}
}

// A replacing Update whose CreateGrant times out after KMS made the new
// grant leaves exactly the old grant: the handler removes the new one
// before answering FAILED, and the FAILED answer keeps the old physical id.
func TestFailedReplacingUpdateLeavesOnlyTheOldGrant(t *testing.T) {
	// GIVEN the old grant (Decrypt, CreateGrant) and strangers of the same name
	store := &grantStore{}
	store.add(entry(grantID, keyARN, handlerRole))
	for _, g := range strangers() {
		store.add(g)
	}
	h := New(&lostAnswer{fakeKMS: store.fake(t), store: store, id: grantID2}, handlerRole)
	h.CleanupReserve = 500 * time.Millisecond
	ev := event(cfn.RequestUpdate, physical(keyARN, grantID), props(owned, set("Operations", []interface{}{"Decrypt", "DescribeKey"})))
	ev.OldResourceProperties = props(owned)

	// WHEN the Update's CreateGrant makes the new grant and never answers
	physicalID, err := serve(t, h, ev, 3*time.Second)

	// THEN the Update fails, keeps the old physical id, says what happened,
	// and the old grant is the only grant of this resource left
	if err == nil || physicalID != "" {
		// "" makes cfn.LambdaWrap answer with the old physical id.
		t.Fatalf("answer %q, %v; want FAILED with the old physical id", physicalID, err)
	}
	if !strings.Contains(err.Error(), "timed out waiting for KMS CreateGrant on "+keyARN) {
		t.Errorf("reason %q", err)
	}
	if !slices.Equal(store.removed, []string{grantID2}) || !slices.Equal(store.ids(), []string{grantID, "aaaa", "bbbb", "cccc"}) {
		t.Errorf("removed %v, left %v; want only the new grant %s removed", store.removed, store.ids(), grantID2)
	}
}

// CloudFormation rolls a stack back after another resource failed: it sends
// this resource an Update back to the old properties, and KMS answers that
// CreateGrant with the old grant (same name and parameters). If the answer
// is lost, the old grant matches the request but was not made by this
// call: it must survive, since it is what the rollback restores.
func TestFailedRollbackUpdateKeepsTheGrantItRestores(t *testing.T) {
	// GIVEN the old grant and the new one (the current physical id)
	store := &grantStore{}
	store.add(entry(grantID, keyARN, handlerRole))
	newGrant := entry(grantID2, keyARN, handlerRole)
	newGrant.Operations = []types.GrantOperation{"Decrypt", "DescribeKey"}
	store.add(newGrant)
	f := store.fake(t)
	// KMS finds the old grant by name and parameters; the answer is lost.
	h := New(&lostAnswer{fakeKMS: f}, handlerRole)
	h.CleanupReserve = 500 * time.Millisecond
	ev := event(cfn.RequestUpdate, physical(keyARN, grantID2), props(owned))
	ev.OldResourceProperties = props(owned, set("Operations", []interface{}{"Decrypt", "DescribeKey"}))

	// WHEN the rollback Update's CreateGrant never answers
	_, err := serve(t, h, ev, 3*time.Second)

	// THEN it fails, and both grants are still there
	if err == nil {
		t.Fatal("the Update succeeded")
	}
	if len(store.removed) != 0 || !slices.Equal(store.ids(), []string{grantID, grantID2}) {
		t.Errorf("removed %v, left %v; want both grants kept", store.removed, store.ids())
	}
	if !slices.Equal(f.calls, []string{"ListRetirableGrants", "CreateGrant", "ListRetirableGrants"}) {
		t.Errorf("calls %v", f.calls)
	}
}

// A Create that adopts a grant by its name (GrantName, with the grant's
// parameters) and then fails in doubt did not make that grant: it answers
// the request id, and the rollback Delete touches nothing.
func TestFailedCreateNeverRemovesTheGrantItAdopts(t *testing.T) {
	// GIVEN a hand-made grant, with no retiring principal, named "team-grant"
	store := &grantStore{}
	handMade := entry(grantID, keyARN, "")
	handMade.RetiringPrincipal = nil
	handMade.Name = aws.String("team-grant")
	store.add(handMade)
	f := store.fake(t)
	h := New(&lostAnswer{fakeKMS: f}, handlerRole)
	p := props(set("Name", "team-grant"))

	// WHEN a Create names it, with its parameters, and KMS's answer is lost
	physicalID, err := serve(t, h, event(cfn.RequestCreate, "", p), time.Second)

	// THEN the Create fails with the request id, and its rollback removes nothing
	if err == nil || physicalID != "" {
		t.Fatalf("answer %q, %v; want FAILED with the request id", physicalID, err)
	}
	if _, err := serve(t, New(f, handlerRole), event(cfn.RequestDelete, "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c", p), time.Second); err != nil {
		t.Fatal(err)
	}
	if len(store.removed) != 0 || !slices.Equal(f.calls, []string{"ListGrants", "CreateGrant"}) {
		t.Errorf("removed %v with calls %v", store.removed, f.calls)
	}
}

// A Create that KMS rejects made no grant: it answers the request id, and
// the rollback Delete makes no call.
func TestRejectedCreateAnswersRequestID(t *testing.T) {
	f := &fakeKMS{t: t, createGrant: func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		return nil, &types.NotFoundException{Message: aws.String("Key does not exist")}
	}}
	ev := event(cfn.RequestCreate, "", props(owned))
	physicalID, err := serve(t, New(f, handlerRole), ev, 5*time.Second)
	if err == nil || physicalID != "" {
		// "" makes cfn.LambdaWrap answer with the request id.
		t.Fatalf("answer %q, %v; want FAILED with the request id", physicalID, err)
	}
	f.calls = nil
	if _, err := serve(t, New(f, handlerRole), event(cfn.RequestDelete, ev.RequestID, props(owned)), 5*time.Second); err != nil || len(f.calls) != 0 {
		t.Errorf("delete after the rejected create: %v, calls %v", err, f.calls)
	}
}

// The rollback Delete of a pending id succeeds when the key is gone (its
// grants went with it), and fails, saying how to check, when it cannot
// tell whether the failed Create left a grant.
func TestPendingDelete(t *testing.T) {
	pending := grantspec.PendingID{KeyArn: keyARN, Name: grantspec.DefaultName(stackID, "AmiGrant")}.String()
	for _, tc := range []struct {
		code    string
		wantErr string
	}{
		{"NotFoundException", ""},
		{"AccessDeniedException", "aws kms list-retirable-grants --region us-east-1 --retiring-principal " + handlerRole},
		{"KMSInternalException", "cannot tell whether the failed create left a grant named"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f := &fakeKMS{t: t, retirable: func(*kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
				return nil, apiErr(tc.code, "no")
			}}
			_, err := serve(t, New(f, handlerRole), event(cfn.RequestDelete, pending, props(owned)), 2*time.Second)
			if tc.wantErr == "" && err != nil {
				t.Errorf("delete: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--retain-resources AmiGrant")) {
				t.Errorf("delete: %v, want FAILED with %q", err, tc.wantErr)
			}
		})
	}
}

// A first deploy writes the key policy and the role's IAM policy moments
// before the grant: KMS denies CreateGrant until they propagate. The denial
// is retried within the propagation window, then fails naming both policies.
func TestDeniedCreateGrantIsRetriedWhilePoliciesPropagate(t *testing.T) {
	client := func(srv *fakekms.Server) *kms.Client {
		return kms.New(kms.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
			Retryer:     awserr.NewRetryer(awserr.RetryOptions{BaseDelay: time.Millisecond, MaxBackoff: 20 * time.Millisecond}),
		})
	}
	denied := fakekms.Fault{Code: "AccessDeniedException", Message: "User: " + handlerRole + " is not authorized to perform: kms:CreateGrant"}

	t.Run("denied three times within the window: created", func(t *testing.T) {
		srv := fakekms.Start(t)
		srv.AddKey(keyARN, fakekms.Enabled)
		f := denied
		f.Times = 3
		srv.Inject("CreateGrant", f)
		h := New(client(srv), handlerRole)
		h.PropagationWindow = time.Minute

		physicalID, err := serve(t, h, event(cfn.RequestCreate, "", props(owned)), 10*time.Second)

		if _, ok := grantspec.ParsePhysicalID(physicalID); err != nil || !ok || len(srv.Calls()) != 4 || len(srv.Grants(keyARN)) != 1 {
			t.Errorf("answer %q, %v after calls %v; want the grant after 4 calls", physicalID, err, srv.Calls())
		}
	})
	t.Run("denied past the window: FAILED naming both policies, request id", func(t *testing.T) {
		srv := fakekms.Start(t)
		srv.AddKey(keyARN, fakekms.Enabled)
		srv.Inject("CreateGrant", denied) // every call
		h := New(client(srv), handlerRole)
		h.PropagationWindow = 200 * time.Millisecond

		start := time.Now()
		physicalID, err := serve(t, h, event(cfn.RequestCreate, "", props(owned)), 10*time.Second)

		if err == nil || physicalID != "" || len(srv.Calls()) < 2 || time.Since(start) > 5*time.Second {
			t.Fatalf("answer %q, %v after %d calls in %v; want FAILED with the request id after retries, well before the deadline", physicalID, err, len(srv.Calls()), time.Since(start))
		}
		for _, w := range []string{"retried for up to 200ms", "the key policy of " + keyARN, "the IAM policy of " + handlerRole} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("reason %q lacks %q", err, w)
			}
		}
	})
}

// Against the wire-level fake: KMS authorizes RetireGrant from the grant, so
// the handler retires its own grant and a retirement KMS denies fails the
// Delete; a hand-made grant of the same name is never touched.
func TestRetireThroughTheSDK(t *testing.T) {
	srv := fakekms.Start(t)
	srv.AddKey(keyARN, fakekms.Enabled)
	srv.SetCaller(handlerRole)
	handMade := srv.AddGrant(keyARN, fakekms.Grant{Name: grantspec.DefaultName(stackID, "AmiGrant"), GranteePrincipal: grantee, Operations: []string{"Decrypt", "CreateGrant"}})
	c := kms.New(kms.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		Retryer:     awserr.NewRetryer(awserr.RetryOptions{BaseDelay: time.Millisecond, MaxBackoff: 5 * time.Millisecond}),
	})
	h := New(c, handlerRole)

	// A grant of this handler: created, then retired.
	physicalID, err := serve(t, h, event(cfn.RequestCreate, "", props(owned)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Grants(keyARN); len(got) != 2 {
		t.Fatalf("grants after create %v, want the hand-made one and ours (the same name does not adopt it)", got)
	}
	if _, err := serve(t, h, event(cfn.RequestDelete, physicalID, props(owned)), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := srv.Grants(keyARN); len(got) != 1 || got[0].GrantId != handMade {
		t.Errorf("grants after delete %v, want only the hand-made %s", got, handMade)
	}

	// A Delete that names the hand-made grant as if it were this handler's
	// (a grant not retirable by the role): KMS denies, the Delete fails.
	fake := grantspec.PhysicalID{KeyArn: keyARN, GrantId: handMade}.String()
	_, err = serve(t, h, event(cfn.RequestDelete, fake, props(owned)), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || len(srv.Grants(keyARN)) != 1 {
		t.Errorf("delete of a grant the role may not retire: %v, grants %v", err, srv.Grants(keyARN))
	}
}

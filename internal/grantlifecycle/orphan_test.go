package grantlifecycle

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

func serve(t *testing.T, f *fakeKMS, ev cfn.Event, timeout time.Duration) (string, error) {
	t.Helper()
	router := customresource.NewRouter()
	router.SafetyMargin = timeout / 4
	router.Handle(grantspec.ResourceType, New(f))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	id, _, err := router.Serve(ctx, ev)
	return id, err
}

func event(typ cfn.RequestType, physical string) cfn.Event {
	return cfn.Event{
		RequestType: typ, ResourceType: grantspec.ResourceType, StackID: stackID,
		RequestID: "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c", LogicalResourceID: "AmiGrant",
		PhysicalResourceID: physical, ResourceProperties: props(),
	}
}

// A Create whose CreateGrant reaches KMS but never answers in time must not
// leak the grant: the FAILED answer names the key and the grant name, and the
// rollback Delete finds the grant by name and revokes it.
func TestTimedOutCreateLeavesNoGrant(t *testing.T) {
	name := grantspec.DefaultName(stackID, "AmiGrant")
	var grants []types.GrantListEntry
	var revoked []string
	f := &fakeKMS{t: t,
		createGrant: func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
			// KMS creates the grant; the answer is lost (the handler times out).
			grants = append(grants, types.GrantListEntry{GrantId: aws.String(grantID), Name: in.Name})
			time.Sleep(2 * time.Second)
			return nil, context.DeadlineExceeded
		},
		listGrants: func(in *kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
			other := types.GrantListEntry{GrantId: aws.String(grantID2), Name: aws.String("someone-elses-grant")}
			return &kms.ListGrantsOutput{Grants: append([]types.GrantListEntry{other}, grants...)}, nil
		},
		revokeGrant: func(in *kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error) {
			revoked = append(revoked, aws.ToString(in.GrantId))
			return &kms.RevokeGrantOutput{}, nil
		},
	}

	// WHEN the Create times out while CreateGrant is in flight
	physicalID, err := serve(t, f, event(cfn.RequestCreate, ""), time.Second)
	if err == nil {
		t.Fatal("the Create succeeded")
	}
	// THEN its physical id names the key and the grant name
	pending, ok := grantspec.ParsePendingID(physicalID)
	if !ok || pending != (grantspec.PendingID{KeyArn: keyARN, Name: name}) {
		t.Fatalf("physical id %q, want the pending id of %s on %s", physicalID, name, keyARN)
	}

	// WHEN CloudFormation rolls back with a Delete of that id
	time.Sleep(2 * time.Second) // let the stray CreateGrant finish
	f.calls = nil
	if _, err := serve(t, f, event(cfn.RequestDelete, physicalID), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// THEN the grant the failed Create made is revoked, and only that one
	if !slices.Equal(revoked, []string{grantID}) || !slices.Equal(f.calls, []string{"ListGrants", "RevokeGrant"}) {
		t.Errorf("revoked %v with calls %v, want only %s", revoked, f.calls, grantID)
	}
}

// A Create that KMS rejects made no grant: it answers the request id, and
// the rollback Delete makes no call.
func TestRejectedCreateAnswersRequestID(t *testing.T) {
	f := &fakeKMS{t: t, createGrant: func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		return nil, &types.NotFoundException{Message: aws.String("Key does not exist")}
	}}
	ev := event(cfn.RequestCreate, "")
	physicalID, err := serve(t, f, ev, 5*time.Second)
	if err == nil || physicalID != "" {
		// "" makes cfn.LambdaWrap answer with the request id.
		t.Fatalf("answer %q, %v; want FAILED with the request id", physicalID, err)
	}
	f.calls = nil
	if _, err := serve(t, f, event(cfn.RequestDelete, ev.RequestID), 5*time.Second); err != nil || len(f.calls) != 0 {
		t.Errorf("delete after the rejected create: %v, calls %v", err, f.calls)
	}
}

// The rollback Delete of a pending id never fails the stack, even when the
// key can no longer be listed.
func TestPendingDeleteNeverFails(t *testing.T) {
	pending := grantspec.PendingID{KeyArn: keyARN, Name: "n"}.String()
	for _, code := range []string{"NotFoundException", "AccessDeniedException", "KMSInternalException"} {
		t.Run(code, func(t *testing.T) {
			f := &fakeKMS{t: t, listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
				return nil, apiErr(code, "no")
			}}
			if _, err := serve(t, f, event(cfn.RequestDelete, pending), 2*time.Second); err != nil {
				t.Errorf("delete: %v", err)
			}
		})
	}
}

package grantlifecycle

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// TestEachLauncherGrantee: the grant of each launcher's grantee (as the
// construct writes it: the grantee, the launch operations, the handler as
// retiring principal) is created for exactly that grantee with one
// CreateGrant, and retired by the handler at Delete (RetireGrant, then
// ListRetirableGrants for a copy under another id): the same calls
// whatever the launcher.
func TestEachLauncherGrantee(t *testing.T) {
	ls := []launcher.Launcher{{Kind: launcher.AutoScaling}, {Kind: launcher.AutoScaling, SLRSuffix: "team"},
		{Kind: launcher.EKSManagedNodeGroup}, {Kind: launcher.EC2Fleet}, {Kind: launcher.SpotFleet}, {Kind: launcher.Spot},
		{Kind: launcher.Role, RoleARN: "arn:aws:iam::222222222222:role/karpenter/KarpenterController"}}
	ops := []interface{}{}
	for _, op := range grantspec.AutoScalingOperations {
		ops = append(ops, op)
	}
	for _, l := range ls {
		g := l.Grantee("aws", "222222222222")
		t.Run(string(l.Kind)+" "+l.GranteeName(), func(t *testing.T) {
			var got *kms.CreateGrantInput
			f := &fakeKMS{t: t, createGrant: func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
				got = in
				return created(grantID)(in)
			}}
			p := props(owned, set("GranteePrincipal", g), set("Operations", ops))
			h := New(f, handlerRole)
			res, err := h.Create(context.Background(), request("Create", "", p, nil))
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(got.GranteePrincipal) != g || aws.ToString(got.RetiringPrincipal) != handlerRole || len(got.Operations) != 8 {
				t.Errorf("CreateGrant %+v, want grantee %s", got, g)
			}
			f.retireGrant = func(in *kms.RetireGrantInput) (*kms.RetireGrantOutput, error) {
				if aws.ToString(in.GrantId) != grantID {
					t.Errorf("RetireGrant %+v", in)
				}
				return &kms.RetireGrantOutput{}, nil
			}
			f.retirable = func(*kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
				return &kms.ListRetirableGrantsOutput{Grants: []types.GrantListEntry{}}, nil
			}
			if err := h.Delete(context.Background(), request("Delete", res.PhysicalResourceID, p, nil)); err != nil {
				t.Fatal(err)
			}
			if want := []string{"CreateGrant", "RetireGrant", "ListRetirableGrants"}; !slices.Equal(f.calls, want) {
				t.Errorf("calls %v, want %v", f.calls, want)
			}
		})
	}
}

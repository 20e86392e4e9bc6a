package grantlifecycle

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/kmserr"
)

// fakeKMS records calls and answers through its function fields; a call
// whose field is nil fails the test.
type fakeKMS struct {
	t           *testing.T
	calls       []string
	createGrant func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error)
	listGrants  func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error)
	retirable   func(*kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error)
	revokeGrant func(*kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error)
	retireGrant func(*kms.RetireGrantInput) (*kms.RetireGrantOutput, error)
}

func (f *fakeKMS) CreateGrant(_ context.Context, in *kms.CreateGrantInput, _ ...func(*kms.Options)) (*kms.CreateGrantOutput, error) {
	f.calls = append(f.calls, "CreateGrant")
	if f.createGrant == nil {
		f.t.Fatalf("unexpected CreateGrant %+v", in)
	}
	return f.createGrant(in)
}

func (f *fakeKMS) ListGrants(_ context.Context, in *kms.ListGrantsInput, _ ...func(*kms.Options)) (*kms.ListGrantsOutput, error) {
	f.calls = append(f.calls, "ListGrants")
	if f.listGrants == nil {
		f.t.Fatalf("unexpected ListGrants %+v", in)
	}
	return f.listGrants(in)
}

func (f *fakeKMS) ListRetirableGrants(_ context.Context, in *kms.ListRetirableGrantsInput, _ ...func(*kms.Options)) (*kms.ListRetirableGrantsOutput, error) {
	f.calls = append(f.calls, "ListRetirableGrants")
	if f.retirable == nil {
		f.t.Fatalf("unexpected ListRetirableGrants %+v", in)
	}
	return f.retirable(in)
}

func (f *fakeKMS) RevokeGrant(_ context.Context, in *kms.RevokeGrantInput, _ ...func(*kms.Options)) (*kms.RevokeGrantOutput, error) {
	f.calls = append(f.calls, "RevokeGrant")
	if f.revokeGrant == nil {
		f.t.Fatalf("unexpected RevokeGrant %+v", in)
	}
	return f.revokeGrant(in)
}

func (f *fakeKMS) RetireGrant(_ context.Context, in *kms.RetireGrantInput, _ ...func(*kms.Options)) (*kms.RetireGrantOutput, error) {
	f.calls = append(f.calls, "RetireGrant")
	if f.retireGrant == nil {
		f.t.Fatalf("unexpected RetireGrant %+v", in)
	}
	return f.retireGrant(in)
}

const (
	keyARN   = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	key2ARN  = "arn:aws:kms:us-east-1:111111111111:key/0987dcba-09fe-87dc-65ba-ab0987654321"
	grantee  = "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	stackID  = "arn:aws:cloudformation:us-east-1:222222222222:stack/dest/0f2a3c40-ad8f-11ef-9a5b-0affd3c1d2e1"
	grantID  = "0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60"
	grantID2 = "1d348587c4a09cd55f56323f19509acf4262416141837d1601ee9e4f0a4e7b71"
	grantID3 = "2e459698d5b10de66067434020610bd05373527252948e2712ff0f5a1b5f8c82"
	// handlerRole is the role the handler runs as: grants naming it as
	// RetiringPrincipal are the handler's own.
	handlerRole = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-dest-0123456789"
	otherRole   = "arn:aws:iam::333333333333:role/crossaccountami/GrantHandler-other-9876543210"
)

// owned sets the handler's role as the grant's retiring principal.
var owned = set("RetiringPrincipal", handlerRole)

func props(mod ...func(map[string]interface{})) map[string]interface{} {
	p := map[string]interface{}{
		"ServiceToken":     "arn:aws:lambda:us-east-1:222222222222:function:handler",
		"KeyArn":           keyARN,
		"GranteePrincipal": grantee,
		"Operations":       []interface{}{"Decrypt", "CreateGrant"},
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

func set(k string, v interface{}) func(map[string]interface{}) {
	return func(p map[string]interface{}) { p[k] = v }
}

func request(typ string, physical string, p, old map[string]interface{}) customresource.Request {
	return customresource.Request{
		RequestType: "Create", ResourceType: grantspec.ResourceType, StackID: stackID,
		RequestID: "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c", LogicalResourceID: "AmiGrant",
		PhysicalResourceID: physical, Properties: p, OldProperties: old,
	}
}

func created(id string) func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
	return func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		return &kms.CreateGrantOutput{GrantId: aws.String(id), GrantToken: aws.String("token")}, nil
	}
}

// apiErr is a KMS error as the SDK returns it, in an OperationError: the
// modeled type for a code the KMS model declares (its fault is the
// model's: server for KMSInternalException and DependencyTimeoutException),
// else a GenericAPIError with a client fault (KMS refused the request), as
// for AccessDeniedException.
func apiErr(code, msg string) error {
	var err error = &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
	if modeled, ok := kmserr.Modeled(code, msg); ok {
		err = modeled
	}
	return &smithy.OperationError{ServiceID: "KMS", OperationName: "op", Err: err}
}

func physical(key, grant string) string {
	return grantspec.PhysicalID{KeyArn: key, GrantId: grant}.String()
}

func TestCreate(t *testing.T) {
	var got *kms.CreateGrantInput
	f := &fakeKMS{t: t, createGrant: func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		got = in
		return created(grantID)(in)
	}}
	p := props(owned, set("EncryptionContextSubset", map[string]interface{}{"aws:ebs:id": "snap-1"}))

	res, err := New(f, handlerRole).Create(context.Background(), request("Create", "", p, nil))

	if err != nil {
		t.Fatal(err)
	}
	if want := physical(keyARN, grantID); res.PhysicalResourceID != want {
		t.Errorf("physical id %q, want %q", res.PhysicalResourceID, want)
	}
	if want := map[string]interface{}{"GrantId": grantID, "KeyArn": keyARN, "GrantName": grantspec.DefaultName(stackID, "AmiGrant")}; !maps.Equal(res.Data, want) {
		t.Errorf("Data %v, want %v", res.Data, want)
	}
	if want := grantspec.DefaultName(stackID, "AmiGrant"); aws.ToString(got.Name) != want {
		t.Errorf("Name %q, want %q", aws.ToString(got.Name), want)
	}
	if aws.ToString(got.KeyId) != keyARN || aws.ToString(got.GranteePrincipal) != grantee ||
		aws.ToString(got.RetiringPrincipal) != handlerRole ||
		!slices.Equal(got.Operations, []types.GrantOperation{"Decrypt", "CreateGrant"}) ||
		got.Constraints == nil || got.Constraints.EncryptionContextSubset["aws:ebs:id"] != "snap-1" ||
		got.Constraints.EncryptionContextEquals != nil {
		t.Errorf("CreateGrant input %+v", got)
	}
}

func TestCreateUsesTheGivenName(t *testing.T) {
	var name string
	f := &fakeKMS{t: t, createGrant: func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		name = aws.ToString(in.Name)
		return created(grantID)(in)
	}, listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) { return &kms.ListGrantsOutput{}, nil }}
	if _, err := New(f, handlerRole).Create(context.Background(), request("Create", "", props(set("Name", "my-grant")), nil)); err != nil {
		t.Fatal(err)
	}
	if name != "my-grant" {
		t.Errorf("Name %q, want my-grant", name)
	}
	// A name from the template may be a grant's that exists already: the
	// Create looks first, so that its rollback never removes that grant.
	if !slices.Equal(f.calls, []string{"ListGrants", "CreateGrant"}) {
		t.Errorf("calls %v", f.calls)
	}
}

func TestCreateFailures(t *testing.T) {
	for _, tc := range []struct {
		code string
		want []string
	}{
		{"AccessDeniedException", []string{keyARN, grantee, "KMS denied kms:CreateGrant, also when asked again (a denial is retried for up to 3m0s",
			"the key policy of " + keyARN + " (account 111111111111) must allow kms:CreateGrant to " + handlerRole,
			"kms:RetiringPrincipal " + handlerRole, "KeyPolicyStatements()", "deploy the key's stack first",
			"the IAM policy of " + handlerRole + " in this stack"}},
		{"NotFoundException", []string{keyARN, "does not exist", "us-east-1"}},
		{"InvalidArnException", []string{grantee, "Custom::AutoScalingServiceLinkedRole"}},
		{"DisabledException", []string{"enable-key --key-id " + keyARN}},
		{"KMSInvalidStateException", []string{"cancel-key-deletion"}},
		{"LimitExceededException", []string{"quota"}},
		{"ValidationException", []string{keyARN, grantee, "ValidationException: kms said no"}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f := &fakeKMS{t: t, createGrant: func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
				return nil, apiErr(tc.code, "kms said no")
			}}
			_, err := New(f, handlerRole).Create(context.Background(), request("Create", "", props(owned), nil))
			if err == nil {
				t.Fatal("Create succeeded")
			}
			for _, w := range append(tc.want, tc.code+": kms said no") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("reason %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestInvalidPropertiesNameThePropertyAndValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    map[string]interface{}
		want string
	}{
		{"unknown operation", props(set("Operations", []interface{}{"Decrypt", "Fly"})), `Operations: unknown grant operation "Fly"`},
		{"malformed key ARN", props(set("KeyArn", "not-an-arn")), `KeyArn: expected a KMS key ARN`},
		{"alias ARN", props(set("KeyArn", "arn:aws:kms:us-east-1:111111111111:alias/ami")), `alias ARN "arn:aws:kms:us-east-1:111111111111:alias/ami"`},
		{"grantee", props(set("GranteePrincipal", "bob")), `GranteePrincipal: "bob"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeKMS{t: t}
			h := New(f, handlerRole)
			_, errCreate := h.Create(context.Background(), request("Create", "", tc.p, nil))
			_, errUpdate := h.Update(context.Background(), request("Update", physical(keyARN, grantID), tc.p, props()))
			for _, err := range []error{errCreate, errUpdate} {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "invalid Custom::KmsGrant properties") {
					t.Errorf("error %v, want it to contain %q", err, tc.want)
				}
			}
			if len(f.calls) != 0 {
				t.Errorf("KMS calls %v, want none", f.calls)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	// listed answers ListGrants on keyARN with grants of the given ids
	// (filtered by GrantId when the request names one).
	listed := func(ids ...string) func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
		return func(in *kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
			if aws.ToString(in.KeyId) != keyARN {
				t.Errorf("ListGrants input %+v", in)
			}
			out := &kms.ListGrantsOutput{}
			for _, id := range ids {
				if in.GrantId == nil || aws.ToString(in.GrantId) == id {
					out.Grants = append(out.Grants, types.GrantListEntry{GrantId: aws.String(id)})
				}
			}
			return out, nil
		}
	}
	// Every replacing Update first lists the grants that already match.
	noGrants := func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) { return &kms.ListGrantsOutput{}, nil }
	for _, tc := range []struct {
		name      string
		old, new  map[string]interface{}
		physical  string
		fake      fakeKMS
		wantID    string
		wantGrant string // Data's GrantId, when not the physical id's
		wantCalls []string
	}{
		{
			name: "no change: no call, same id",
			old:  props(), new: props(set("Operations", []interface{}{"CreateGrant", "Decrypt"}), set("RetireOnDelete", "false")),
			wantID: physical(keyARN, grantID),
		},
		{
			// Turning the scheduled check on adds HealSchedule to the
			// template: the Update it causes answers GrantName (which the
			// check's rule reads) for a grant created before there was one.
			name: "HealSchedule added: no call, same id, GrantName answered",
			old:  props(), new: props(set(grantspec.PropHealSchedule, "rate(1 day)")),
			wantID: physical(keyARN, grantID),
		},
		{
			name: "operations changed: new grant",
			old:  props(), new: props(set("Operations", []interface{}{"Decrypt"})),
			fake:   fakeKMS{createGrant: created(grantID2), listGrants: noGrants},
			wantID: physical(keyARN, grantID2), wantCalls: []string{"ListGrants", "CreateGrant"},
		},
		{
			name: "key changed: new grant on the new key",
			old:  props(), new: props(set("KeyArn", key2ARN)),
			fake:   fakeKMS{createGrant: created(grantID2), listGrants: noGrants},
			wantID: physical(key2ARN, grantID2), wantCalls: []string{"ListGrants", "CreateGrant"},
		},
		{
			name: "constraint added: new grant",
			old:  props(), new: props(set("EncryptionContextEquals", map[string]interface{}{"a": "b"})),
			fake:   fakeKMS{createGrant: created(grantID2), listGrants: noGrants},
			wantID: physical(keyARN, grantID2), wantCalls: []string{"ListGrants", "CreateGrant"},
		},
		{
			name: "VerifyToken changed, grant exists: keep",
			old:  props(set("VerifyToken", "1")), new: props(set("VerifyToken", "2")),
			fake:   fakeKMS{listGrants: listed(grantID)},
			wantID: physical(keyARN, grantID), wantCalls: []string{"ListGrants"},
		},
		{
			name: "VerifyToken changed, grant vanished: recreate",
			old:  props(set("VerifyToken", "1")), new: props(set("VerifyToken", "2")),
			fake:   fakeKMS{listGrants: listed(), createGrant: created(grantID2)},
			wantID: physical(keyARN, grantID2), wantCalls: []string{"ListGrants", "ListGrants", "CreateGrant"},
		},
		{
			name: "VerifyToken changed, ListGrants denied: CreateGrant by name",
			old:  props(set("VerifyToken", "1")), new: props(set("VerifyToken", "2")),
			fake: fakeKMS{
				listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
					return nil, apiErr("AccessDeniedException", "no")
				},
				createGrant: created(grantID), // KMS returns the existing grant for the same Name
			},
			wantID: physical(keyARN, grantID), wantCalls: []string{"ListGrants", "ListGrants", "CreateGrant"},
		},
		{
			name: "owned grant, VerifyToken changed, grant exists: keep",
			old:  props(owned, set("VerifyToken", "1")), new: props(owned, set("VerifyToken", "2")),
			fake:   fakeKMS{retirable: retirableOf(entry(grantID, keyARN, handlerRole))},
			wantID: physical(keyARN, grantID), wantCalls: []string{"ListRetirableGrants"},
		},
		{
			// An owned grant is its definition and name: re-made, it keeps
			// the physical id (a new one would make CloudFormation delete
			// the old, and that Delete retires every matching grant).
			name: "owned grant, VerifyToken changed, only the same id on another key: recreate, same physical id",
			old:  props(owned, set("VerifyToken", "1")), new: props(owned, set("VerifyToken", "2")),
			fake:   fakeKMS{retirable: retirableOf(entry(grantID, key2ARN, handlerRole)), createGrant: created(grantID2)},
			wantID: physical(keyARN, grantID), wantGrant: grantID2, wantCalls: []string{"ListRetirableGrants", "CreateGrant"},
		},
		{
			name: "owned grant, VerifyToken changed, re-created by the scheduled check: keep, Data names it",
			old:  props(owned, set("VerifyToken", "1")), new: props(owned, set("VerifyToken", "2")),
			fake:   fakeKMS{retirable: retirableOf(entry(grantID2, keyARN, handlerRole))},
			wantID: physical(keyARN, grantID), wantGrant: grantID2, wantCalls: []string{"ListRetirableGrants"},
		},
		{
			name: "owned grant, VerifyToken changed, listing denied: CreateGrant by name, same physical id",
			old:  props(owned, set("VerifyToken", "1")), new: props(owned, set("VerifyToken", "2")),
			fake: fakeKMS{
				retirable: func(*kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
					return nil, apiErr("AccessDeniedException", "no")
				},
				createGrant: created(grantID), // KMS returns the existing grant for the same Name
			},
			wantID: physical(keyARN, grantID), wantCalls: []string{"ListRetirableGrants", "CreateGrant"},
		},
		{
			name: "rollback from invalid old properties: create by name",
			old:  props(set("KeyArn", "garbage")), new: props(),
			fake:   fakeKMS{createGrant: created(grantID), listGrants: noGrants},
			wantID: physical(keyARN, grantID), wantCalls: []string{"ListGrants", "CreateGrant"},
		},
		{
			name: "physical id is not a grant: create",
			old:  props(), new: props(), physical: "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c",
			fake:   fakeKMS{createGrant: created(grantID), listGrants: noGrants},
			wantID: physical(keyARN, grantID), wantCalls: []string{"ListGrants", "CreateGrant"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			f.t = t
			ph := tc.physical
			if ph == "" {
				ph = physical(keyARN, grantID)
			}

			res, err := New(&f, handlerRole).Update(context.Background(), request("Update", ph, tc.new, tc.old))

			if err != nil {
				t.Fatal(err)
			}
			if res.PhysicalResourceID != tc.wantID {
				t.Errorf("physical id %q, want %q", res.PhysicalResourceID, tc.wantID)
			}
			id, _ := grantspec.ParsePhysicalID(tc.wantID)
			if tc.wantGrant != "" {
				id.GrantId = tc.wantGrant
			}
			if want := map[string]interface{}{"GrantId": id.GrantId, "KeyArn": id.KeyArn, "GrantName": grantspec.DefaultName(stackID, "AmiGrant")}; !maps.Equal(res.Data, want) {
				t.Errorf("Data %v, want %v", res.Data, want)
			}
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", f.calls, tc.wantCalls)
			}
		})
	}
}

func TestUpdateFailureNamesTheKey(t *testing.T) {
	f := &fakeKMS{t: t, createGrant: func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		return nil, apiErr("AccessDeniedException", "User: arn:aws:sts::222222222222:assumed-role/h/x is not authorized")
	}, listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) { return &kms.ListGrantsOutput{}, nil }}
	_, err := New(f, handlerRole).Update(context.Background(), request("Update", physical(keyARN, grantID), props(set("KeyArn", key2ARN)), props()))
	if err == nil || !strings.Contains(err.Error(), key2ARN) || !strings.Contains(err.Error(), "assumed-role/h/x") {
		t.Errorf("error %v", err)
	}
}

func TestDelete(t *testing.T) {
	revoked := func(err error) func(*kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error) {
		return func(in *kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error) {
			if aws.ToString(in.KeyId) != keyARN || aws.ToString(in.GrantId) != grantID {
				t.Errorf("RevokeGrant input %+v", in)
			}
			return &kms.RevokeGrantOutput{}, err
		}
	}
	retired := func(err error) func(*kms.RetireGrantInput) (*kms.RetireGrantOutput, error) {
		return func(in *kms.RetireGrantInput) (*kms.RetireGrantOutput, error) {
			if aws.ToString(in.KeyId) != keyARN || aws.ToString(in.GrantId) != grantID {
				t.Errorf("RetireGrant input %+v", in)
			}
			return &kms.RetireGrantOutput{}, err
		}
	}
	retire := props(owned)
	manual := "aws kms retire-grant --region us-east-1 --key-id " + keyARN + " --grant-id " + grantID
	revokeByHand := "aws kms revoke-grant --region us-east-1 --key-id " + keyARN + " --grant-id " + grantID + ", with credentials of account 111111111111 (its key administrators may always revoke)"
	for _, tc := range []struct {
		name      string
		physical  string
		props     map[string]interface{}
		fake      fakeKMS
		wantErr   []string
		wantCalls []string
	}{
		// An owned grant: retired, then the handler's grants matching it
		// are listed, for one re-created under another id (none here).
		{name: "owned: retire", props: retire, fake: fakeKMS{retireGrant: retired(nil), retirable: retirableOf()}, wantCalls: []string{"RetireGrant", "ListRetirableGrants"}},
		{name: "owned: grant gone", props: retire, fake: fakeKMS{retireGrant: retired(apiErr("NotFoundException", "x")), retirable: retirableOf()}, wantCalls: []string{"RetireGrant", "ListRetirableGrants"}},
		{name: "owned: invalid grant id", props: retire, fake: fakeKMS{retireGrant: retired(apiErr("InvalidGrantIdException", "bad")), retirable: retirableOf()}, wantCalls: []string{"RetireGrant", "ListRetirableGrants"}},
		{name: "owned: the listing still shows the retired grant", props: retire, fake: fakeKMS{retireGrant: retired(nil), retirable: retirableOf(entry(grantID, keyARN, handlerRole))}, wantCalls: []string{"RetireGrant", "ListRetirableGrants"}},
		{name: "owned, properties on another key: only the physical id's grant", props: props(owned, set("KeyArn", key2ARN)), fake: fakeKMS{retireGrant: retired(nil)}, wantCalls: []string{"RetireGrant"}},
		{
			name: "owned: retire denied fails, no revoke", props: retire,
			fake:    fakeKMS{retireGrant: retired(apiErr("AccessDeniedException", "not the retiring principal"))},
			wantErr: []string{"KMS RetireGrant of grant " + grantID, "AccessDeniedException: not the retiring principal", "still gives " + grantee, manual, revokeByHand, "--retain-resources AmiGrant"}, wantCalls: []string{"RetireGrant"},
		},
		{
			name: "owned: key disabled fails", props: retire,
			fake:    fakeKMS{retireGrant: retired(&types.DisabledException{Message: aws.String("disabled")})},
			wantErr: []string{"disabled or pending deletion", "back in force", manual}, wantCalls: []string{"RetireGrant"},
		},
		{
			name: "owned: key pending deletion fails", props: retire,
			fake:    fakeKMS{retireGrant: retired(&types.KMSInvalidStateException{Message: aws.String("pending deletion")})},
			wantErr: []string{"disabled or pending deletion", manual}, wantCalls: []string{"RetireGrant"},
		},
		{name: "owned, invalid properties: still retire", props: props(owned, set("Operations", "oops")), fake: fakeKMS{retireGrant: retired(nil)}, wantCalls: []string{"RetireGrant"}},
		{name: "not owned: revoke", fake: fakeKMS{revokeGrant: revoked(nil)}, wantCalls: []string{"RevokeGrant"}},
		{name: "another role retires: revoke", props: props(set("RetiringPrincipal", otherRole)), fake: fakeKMS{revokeGrant: revoked(nil)}, wantCalls: []string{"RevokeGrant"}},
		{name: "not a grant id: no call", physical: "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c"},
		{name: "empty physical id: no call", physical: "-"},
		{name: "not owned: grant gone", fake: fakeKMS{revokeGrant: revoked(apiErr("NotFoundException", "Grant not found"))}, wantCalls: []string{"RevokeGrant"}},
		{
			name: "not owned: revoke denied fails", fake: fakeKMS{revokeGrant: revoked(apiErr("AccessDeniedException", "no"))},
			wantErr: []string{"no longer allows kms:RevokeGrant", revokeByHand}, wantCalls: []string{"RevokeGrant"},
		},
		{name: "not owned, invalid properties: still revoke", props: props(set("Operations", "oops")), fake: fakeKMS{revokeGrant: revoked(nil)}, wantCalls: []string{"RevokeGrant"}},
		{
			name: "other error: FAILED with the manual command", fake: fakeKMS{revokeGrant: revoked(errors.New("connection reset"))},
			wantErr: []string{revokeByHand}, wantCalls: []string{"RevokeGrant"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			f.t = t
			ph := tc.physical
			switch ph {
			case "":
				ph = physical(keyARN, grantID)
			case "-":
				ph = ""
			}
			p := tc.props
			if p == nil {
				p = props()
			}

			err := New(&f, handlerRole).Delete(context.Background(), request("Delete", ph, p, nil))

			if tc.wantErr == nil && err != nil {
				t.Errorf("Delete failed: %v", err)
			}
			if tc.wantErr != nil && err == nil {
				t.Errorf("Delete succeeded, want FAILED")
			}
			for _, w := range tc.wantErr {
				if err != nil && !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to contain %q", err, w)
				}
			}
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", f.calls, tc.wantCalls)
			}
		})
	}
}

// entry is a grant as KMS lists it, defined by props() with name and retiring.
func entry(id, key, retiring string) types.GrantListEntry {
	return types.GrantListEntry{
		GrantId: aws.String(id), KeyId: aws.String(key), Name: aws.String(grantspec.DefaultName(stackID, "AmiGrant")),
		GranteePrincipal: aws.String(grantee), RetiringPrincipal: aws.String(retiring),
		Operations: []types.GrantOperation{"CreateGrant", "Decrypt"},
	}
}

// retirableOf answers ListRetirableGrants for handlerRole with grants.
func retirableOf(grants ...types.GrantListEntry) func(*kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
	return func(in *kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
		out := &kms.ListRetirableGrantsOutput{}
		for _, g := range grants {
			if aws.ToString(g.RetiringPrincipal) == aws.ToString(in.RetiringPrincipal) {
				out.Grants = append(out.Grants, g)
			}
		}
		return out, nil
	}
}

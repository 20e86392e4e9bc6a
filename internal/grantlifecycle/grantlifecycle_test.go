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
)

// fakeKMS records calls and answers through its function fields; a call
// whose field is nil fails the test.
type fakeKMS struct {
	t           *testing.T
	calls       []string
	createGrant func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error)
	listGrants  func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error)
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
)

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

func apiErr(code, msg string) error {
	return &smithy.OperationError{ServiceID: "KMS", OperationName: "op", Err: &smithy.GenericAPIError{Code: code, Message: msg}}
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
	p := props(set("RetiringPrincipal", "arn:aws:iam::222222222222:role/handler"),
		set("EncryptionContextSubset", map[string]interface{}{"aws:ebs:id": "snap-1"}))

	res, err := New(f).Create(context.Background(), request("Create", "", p, nil))

	if err != nil {
		t.Fatal(err)
	}
	if want := physical(keyARN, grantID); res.PhysicalResourceID != want {
		t.Errorf("physical id %q, want %q", res.PhysicalResourceID, want)
	}
	if want := map[string]interface{}{"GrantId": grantID, "KeyArn": keyARN}; !maps.Equal(res.Data, want) {
		t.Errorf("Data %v, want %v", res.Data, want)
	}
	if want := grantspec.DefaultName(stackID, "AmiGrant"); aws.ToString(got.Name) != want {
		t.Errorf("Name %q, want %q", aws.ToString(got.Name), want)
	}
	if aws.ToString(got.KeyId) != keyARN || aws.ToString(got.GranteePrincipal) != grantee ||
		aws.ToString(got.RetiringPrincipal) != "arn:aws:iam::222222222222:role/handler" ||
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
	}}
	if _, err := New(f).Create(context.Background(), request("Create", "", props(set("Name", "my-grant")), nil)); err != nil {
		t.Fatal(err)
	}
	if name != "my-grant" {
		t.Errorf("Name %q, want my-grant", name)
	}
}

func TestCreateFailures(t *testing.T) {
	for _, tc := range []struct {
		code string
		want []string
	}{
		{"AccessDeniedException", []string{keyARN, grantee, "does not allow kms:CreateGrant", "KeyPolicyStatements()", "deploy the source stack first"}},
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
			_, err := New(f).Create(context.Background(), request("Create", "", props(), nil))
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
			h := New(f)
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
	listed := func(ids ...string) func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
		return func(in *kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
			if aws.ToString(in.KeyId) != keyARN || aws.ToString(in.GrantId) != grantID {
				t.Errorf("ListGrants input %+v", in)
			}
			out := &kms.ListGrantsOutput{}
			for _, id := range ids {
				out.Grants = append(out.Grants, types.GrantListEntry{GrantId: aws.String(id)})
			}
			return out, nil
		}
	}
	for _, tc := range []struct {
		name      string
		old, new  map[string]interface{}
		physical  string
		fake      fakeKMS
		wantID    string
		wantCalls []string
	}{
		{
			name: "no change: no call, same id",
			old:  props(), new: props(set("Operations", []interface{}{"CreateGrant", "Decrypt"}), set("RetireOnDelete", "false")),
			wantID: physical(keyARN, grantID),
		},
		{
			name: "operations changed: new grant",
			old:  props(), new: props(set("Operations", []interface{}{"Decrypt"})),
			fake:   fakeKMS{createGrant: created(grantID2)},
			wantID: physical(keyARN, grantID2), wantCalls: []string{"CreateGrant"},
		},
		{
			name: "key changed: new grant on the new key",
			old:  props(), new: props(set("KeyArn", key2ARN)),
			fake:   fakeKMS{createGrant: created(grantID2)},
			wantID: physical(key2ARN, grantID2), wantCalls: []string{"CreateGrant"},
		},
		{
			name: "constraint added: new grant",
			old:  props(), new: props(set("EncryptionContextEquals", map[string]interface{}{"a": "b"})),
			fake:   fakeKMS{createGrant: created(grantID2)},
			wantID: physical(keyARN, grantID2), wantCalls: []string{"CreateGrant"},
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
			wantID: physical(keyARN, grantID2), wantCalls: []string{"ListGrants", "CreateGrant"},
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
			wantID: physical(keyARN, grantID), wantCalls: []string{"ListGrants", "CreateGrant"},
		},
		{
			name: "rollback from invalid old properties: create by name",
			old:  props(set("KeyArn", "garbage")), new: props(),
			fake:   fakeKMS{createGrant: created(grantID)},
			wantID: physical(keyARN, grantID), wantCalls: []string{"CreateGrant"},
		},
		{
			name: "physical id is not a grant: create",
			old:  props(), new: props(), physical: "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c",
			fake:   fakeKMS{createGrant: created(grantID)},
			wantID: physical(keyARN, grantID), wantCalls: []string{"CreateGrant"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			f.t = t
			ph := tc.physical
			if ph == "" {
				ph = physical(keyARN, grantID)
			}

			res, err := New(&f).Update(context.Background(), request("Update", ph, tc.new, tc.old))

			if err != nil {
				t.Fatal(err)
			}
			if res.PhysicalResourceID != tc.wantID {
				t.Errorf("physical id %q, want %q", res.PhysicalResourceID, tc.wantID)
			}
			id, _ := grantspec.ParsePhysicalID(tc.wantID)
			if want := map[string]interface{}{"GrantId": id.GrantId, "KeyArn": id.KeyArn}; !maps.Equal(res.Data, want) {
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
	}}
	_, err := New(f).Update(context.Background(), request("Update", physical(keyARN, grantID), props(set("KeyArn", key2ARN)), props()))
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
	retire := props(set("RetiringPrincipal", "arn:aws:iam::222222222222:role/handler"), set("RetireOnDelete", "true"))
	for _, tc := range []struct {
		name      string
		physical  string
		props     map[string]interface{}
		fake      fakeKMS
		wantErr   string
		wantCalls []string
	}{
		{name: "revoke", fake: fakeKMS{revokeGrant: revoked(nil)}, wantCalls: []string{"RevokeGrant"}},
		{name: "not a grant id: no call", physical: "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c"},
		{name: "empty physical id: no call", physical: "-"},
		{name: "grant gone", fake: fakeKMS{revokeGrant: revoked(apiErr("NotFoundException", "Grant not found"))}, wantCalls: []string{"RevokeGrant"}},
		{name: "invalid grant id", fake: fakeKMS{revokeGrant: revoked(apiErr("InvalidGrantIdException", "bad"))}, wantCalls: []string{"RevokeGrant"}},
		{name: "key pending deletion", fake: fakeKMS{revokeGrant: revoked(&types.KMSInvalidStateException{Message: aws.String("pending deletion")})}, wantCalls: []string{"RevokeGrant"}},
		{name: "key disabled", fake: fakeKMS{revokeGrant: revoked(&types.DisabledException{Message: aws.String("disabled")})}, wantCalls: []string{"RevokeGrant"}},
		{name: "access denied: warn, succeed", fake: fakeKMS{revokeGrant: revoked(apiErr("AccessDeniedException", "no"))}, wantCalls: []string{"RevokeGrant"}},
		{name: "invalid properties: still revoke", props: props(set("Operations", "oops")), fake: fakeKMS{revokeGrant: revoked(nil)}, wantCalls: []string{"RevokeGrant"}},
		{name: "retire", props: retire, fake: fakeKMS{retireGrant: retired(nil)}, wantCalls: []string{"RetireGrant"}},
		{name: "retire gone", props: retire, fake: fakeKMS{retireGrant: retired(apiErr("NotFoundException", "x"))}, wantCalls: []string{"RetireGrant"}},
		{
			name: "retire denied: revoke", props: retire,
			fake:      fakeKMS{retireGrant: retired(apiErr("AccessDeniedException", "not the retiring principal")), revokeGrant: revoked(nil)},
			wantCalls: []string{"RetireGrant", "RevokeGrant"},
		},
		{
			name: "other error: FAILED with the manual command", fake: fakeKMS{revokeGrant: revoked(errors.New("connection reset"))},
			wantErr: "aws kms revoke-grant --region us-east-1 --key-id " + keyARN + " --grant-id " + grantID, wantCalls: []string{"RevokeGrant"},
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

			err := New(&f).Delete(context.Background(), request("Delete", ph, p, nil))

			if tc.wantErr == "" && err != nil {
				t.Errorf("Delete failed: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want it to contain %q", err, tc.wantErr)
			}
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", f.calls, tc.wantCalls)
			}
		})
	}
}

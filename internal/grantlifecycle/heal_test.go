package grantlifecycle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// healName is the name the construct puts in the check's event: the grant's.
var healName = grantspec.DefaultName(stackID, "AmiGrant")

// healEvent is the Input of the scheduled check of the grant p defines.
func healEvent(t *testing.T, p map[string]interface{}) json.RawMessage {
	t.Helper()
	props := map[string]interface{}{}
	for k, v := range p {
		if k != "ServiceToken" {
			props[k] = v
		}
	}
	if _, ok := props["Name"]; !ok {
		props["Name"] = healName
	}
	b, err := json.Marshal(map[string]interface{}{grantspec.HealEventKey: grantspec.HealEventKind, grantspec.HealEventProperties: props,
		grantspec.HealEventStackID: healResource.StackID, grantspec.HealEventLogicalID: healResource.LogicalResourceID, grantspec.HealEventPhysicalID: healResource.PhysicalResourceID})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// healResource is the grant's Custom::KmsGrant the check's event names.
var healResource = grantspec.HealResource{StackID: stackID, LogicalResourceID: "AmiGrant", PhysicalResourceID: physical(keyARN, grantID)}

// fakeStacks answers DescribeStackResource with the next of answers (the
// last one again when they run out), and records the call in calls (the
// KMS fake's, so that one list shows the order of every call).
type fakeStacks struct {
	t       *testing.T
	calls   *[]string
	answers []func(*cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error)
}

func (f *fakeStacks) DescribeStackResource(_ context.Context, in *cloudformation.DescribeStackResourceInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourceOutput, error) {
	*f.calls = append(*f.calls, "DescribeStackResource")
	if len(f.answers) == 0 {
		f.t.Fatalf("unexpected DescribeStackResource %+v", in)
	}
	if aws.ToString(in.StackName) != healResource.StackID || aws.ToString(in.LogicalResourceId) != healResource.LogicalResourceID {
		f.t.Errorf("DescribeStackResource of %s in %s, want %s in %s", aws.ToString(in.LogicalResourceId), aws.ToString(in.StackName), healResource.LogicalResourceID, healResource.StackID)
	}
	answer := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	return answer(in)
}

// stackResource answers the grant's resource with status and physical id.
func stackResource(status cfntypes.ResourceStatus, physicalID string) func(*cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error) {
	return func(in *cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error) {
		return &cloudformation.DescribeStackResourceOutput{StackResourceDetail: &cfntypes.StackResourceDetail{
			StackId: in.StackName, LogicalResourceId: in.LogicalResourceId, PhysicalResourceId: aws.String(physicalID),
			ResourceStatus: status, ResourceType: aws.String(grantspec.ResourceType),
		}}, nil
	}
}

// alive is the grant's resource as a stack keeps it.
var alive = stackResource(cfntypes.ResourceStatusCreateComplete, physical(keyARN, grantID))

// cfnErr is a CloudFormation error as the SDK returns it (query protocol:
// a GenericAPIError for ValidationError, which the model does not declare).
func cfnErr(code, msg string) func(*cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error) {
	return func(*cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error) {
		return nil, &smithy.OperationError{ServiceID: "CloudFormation", OperationName: "DescribeStackResource", Err: &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}}
	}
}

// healer is the handler over f whose CloudFormation gives answers, its
// metrics in out.
func healer(t *testing.T, f *fakeKMS, out *bytes.Buffer, answers ...func(*cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error)) *Handler {
	h := New(f, handlerRole)
	h.Metrics = out
	h.CloudFormation = &fakeStacks{t: t, calls: &f.calls, answers: answers}
	return h
}

// metric is one EMF line the check wrote, reduced to what an alarm reads.
type metric struct {
	Namespace  string
	Dimensions [][]string
	Names      []string
	GrantName  string
	Values     map[string]float64
}

// metricsIn reads the EMF lines of out, checking that each has the shape
// the constructs' alarms expect.
func metricsIn(t *testing.T, out string) []metric {
	t.Helper()
	var ms []metric
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var doc map[string]interface{}
		if json.Unmarshal(sc.Bytes(), &doc) != nil || doc["_aws"] == nil {
			continue
		}
		var line struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || len(line.AWS.CloudWatchMetrics) != 1 || line.AWS.Timestamp == 0 {
			t.Fatalf("EMF line %s: %v", sc.Text(), err)
		}
		d := line.AWS.CloudWatchMetrics[0]
		m := metric{Namespace: d.Namespace, Dimensions: d.Dimensions, Values: map[string]float64{}}
		m.GrantName, _ = doc[grantspec.MetricDimensionGrantName].(string)
		for _, def := range d.Metrics {
			if def.Unit != "Count" {
				t.Errorf("metric %s: unit %q, want Count", def.Name, def.Unit)
			}
			m.Names = append(m.Names, def.Name)
			m.Values[def.Name], _ = doc[def.Name].(float64)
		}
		ms = append(ms, m)
	}
	return ms
}

// wantMetric checks that out holds exactly one EMF line, for name, with values.
func wantMetric(t *testing.T, out, name string, values map[string]float64) {
	t.Helper()
	ms := metricsIn(t, out)
	if len(ms) != 1 {
		t.Fatalf("%d EMF lines, want 1:\n%s", len(ms), out)
	}
	m := ms[0]
	if m.Namespace != "CrossAccountAmi" || !slices.Equal(m.Dimensions[0], []string{"GrantName"}) || len(m.Dimensions) != 1 || m.GrantName != name {
		t.Errorf("EMF line %+v, want namespace CrossAccountAmi, dimensions [[GrantName]], GrantName %s", m, name)
	}
	if len(m.Values) != len(values) {
		t.Errorf("metrics %v, want %v", m.Values, values)
	}
	for k, v := range values {
		if got, ok := m.Values[k]; !ok || got != v {
			t.Errorf("metric %s = %v (present: %v), want %v", k, got, ok, v)
		}
	}
}

func TestHealGrantPresent(t *testing.T) {
	store := &grantStore{}
	store.add(entry(grantID2, keyARN, handlerRole)) // re-created earlier: not the id the stack knows
	for _, g := range strangers() {
		store.add(g)
	}
	f := store.fake(t)
	var out bytes.Buffer
	h := healer(t, f, &out, alive)

	res, err := h.Heal(context.Background(), healEvent(t, props(owned)))

	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res, "present: "+grantID2) || !slices.Equal(f.calls, []string{"DescribeStackResource", "ListRetirableGrants"}) {
		t.Errorf("result %q after calls %v", res, f.calls)
	}
	wantMetric(t, out.String(), healName, map[string]float64{"GrantRecreated": 0, "GrantCheckFailed": 0})
}

func TestHealRecreatesTheGrantOnce(t *testing.T) {
	// GIVEN the grant is gone, and only grants of the same name that are not
	// this resource's remain (by hand, another handler's, other operations)
	store := &grantStore{next: []string{grantID3}}
	for _, g := range strangers() {
		store.add(g)
	}
	f := store.fake(t)
	var got *kms.CreateGrantInput
	create := f.createGrant
	f.createGrant = func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		got = in
		return create(in)
	}
	var out bytes.Buffer
	h := healer(t, f, &out, alive)
	p := props(owned, set("EncryptionContextSubset", map[string]interface{}{"aws:ebs:id": "snap-1"}))

	// WHEN the check runs
	res, err := h.Heal(context.Background(), healEvent(t, p))

	// THEN it makes the grant again, with the request Create makes
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res, "re-created: "+grantID3) || !slices.Equal(f.calls, []string{"DescribeStackResource", "ListRetirableGrants", "CreateGrant", "DescribeStackResource"}) {
		t.Errorf("result %q after calls %v", res, f.calls)
	}
	var fromCreate *kms.CreateGrantInput
	c := &fakeKMS{t: t, createGrant: func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		fromCreate = in
		return created(grantID)(in)
	}}
	if _, err := New(c, handlerRole).Create(context.Background(), request("Create", "", p, nil)); err != nil {
		t.Fatal(err)
	}
	if !sameInput(got, fromCreate) {
		t.Errorf("the check's CreateGrant %+v differs from Create's %+v", got, fromCreate)
	}
	wantMetric(t, out.String(), healName, map[string]float64{"GrantRecreated": 1, "GrantCheckFailed": 0})

	// WHEN the check runs again THEN the grant is there: no second grant
	out.Reset()
	f.calls = nil
	if res, err := h.Heal(context.Background(), healEvent(t, p)); err != nil || !strings.Contains(res, "present: "+grantID3) {
		t.Errorf("second check: %q, %v", res, err)
	}
	if !slices.Equal(f.calls, []string{"DescribeStackResource", "ListRetirableGrants"}) || !slices.Equal(store.ids(), []string{"aaaa", "bbbb", "cccc", grantID3}) {
		t.Errorf("second check: calls %v, grants %v", f.calls, store.ids())
	}
	wantMetric(t, out.String(), healName, map[string]float64{"GrantRecreated": 0, "GrantCheckFailed": 0})
	if len(store.removed) != 0 {
		t.Errorf("the check removed %v", store.removed)
	}
}

func sameInput(a, b *kms.CreateGrantInput) bool {
	if a == nil || b == nil {
		return false
	}
	ca, _ := json.Marshal(a.Constraints)
	cb, _ := json.Marshal(b.Constraints)
	return aws.ToString(a.KeyId) == aws.ToString(b.KeyId) && aws.ToString(a.Name) == aws.ToString(b.Name) &&
		aws.ToString(a.GranteePrincipal) == aws.ToString(b.GranteePrincipal) &&
		aws.ToString(a.RetiringPrincipal) == aws.ToString(b.RetiringPrincipal) &&
		slices.Equal(a.Operations, b.Operations) && string(ca) == string(cb)
}

func TestHealFailures(t *testing.T) {
	denied := func(*kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
		return nil, apiErr("AccessDeniedException", "User: "+handlerRole+" is not authorized to perform: kms:ListRetirableGrants")
	}
	createFails := func(code string) func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		return func(*kms.CreateGrantInput) (*kms.CreateGrantOutput, error) { return nil, apiErr(code, "kms said no") }
	}
	for _, tc := range []struct {
		name      string
		role      string
		event     json.RawMessage
		fake      fakeKMS
		stacks    func(*cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error)
		noStacks  bool
		want      []string
		wantCalls []string
		noMetric  bool
	}{
		{
			name: "ListRetirableGrants denied", event: healEvent(t, props(owned)), fake: fakeKMS{retirable: denied},
			want:      []string{"cannot tell whether the grant " + healName + " on " + keyARN + " still exists", "AccessDeniedException", "The IAM policy of " + handlerRole + " must allow kms:ListRetirableGrants"},
			wantCalls: []string{"DescribeStackResource", "ListRetirableGrants"},
		},
		{
			name: "CreateGrant denied", event: healEvent(t, props(owned)), fake: fakeKMS{retirable: retirableOf(), createGrant: createFails("AccessDeniedException")},
			want:      []string{"the grant " + healName + " on " + keyARN + " is gone, and re-creating it failed", "KMS denied kms:CreateGrant. Two policies", "the key policy of " + keyARN, "the IAM policy of " + handlerRole},
			wantCalls: []string{"DescribeStackResource", "ListRetirableGrants", "CreateGrant"},
		},
		{
			name: "key disabled", event: healEvent(t, props(owned)), fake: fakeKMS{retirable: retirableOf(), createGrant: createFails("DisabledException")},
			want: []string{"DisabledException: kms said no", "enable-key --key-id " + keyARN}, wantCalls: []string{"DescribeStackResource", "ListRetirableGrants", "CreateGrant"},
		},
		{
			name: "key pending deletion", event: healEvent(t, props(owned)), fake: fakeKMS{retirable: retirableOf(), createGrant: createFails("KMSInvalidStateException")},
			want: []string{"cancel-key-deletion"}, wantCalls: []string{"DescribeStackResource", "ListRetirableGrants", "CreateGrant"},
		},
		{
			name: "a grant the handler does not own", event: healEvent(t, props(set("RetiringPrincipal", otherRole))),
			want: []string{`its RetiringPrincipal is "` + otherRole + `", not this handler's role ` + handlerRole, "aws kms list-grants --key-id " + keyARN},
		},
		{
			name: "a grant without retiring principal", event: healEvent(t, props()),
			want: []string{`its RetiringPrincipal is ""`},
		},
		{
			name: "the handler does not know its role", role: "-", event: healEvent(t, props(owned)),
			want: []string{grantspec.HandlerRoleEnv + " is not set"},
		},
		{
			name: "invalid properties", event: healEvent(t, props(owned, set("Operations", []interface{}{"Fly"}))),
			want: []string{`invalid heal-grant event: ResourceProperties: Operations: unknown grant operation "Fly"`},
		},
		{
			name: "no name", event: json.RawMessage(`{"crossaccountami":"heal-grant","ResourceProperties":{"KeyArn":"` + keyARN + `"}}`),
			want: []string{"invalid heal-grant event"}, noMetric: true,
		},
		{
			name:  "an event that names no resource (a rule of an older version)",
			event: json.RawMessage(`{"crossaccountami":"heal-grant","ResourceProperties":{"KeyArn":"` + keyARN + `","GranteePrincipal":"` + grantee + `","Operations":["Decrypt"],"RetiringPrincipal":"` + handlerRole + `","Name":"` + healName + `"}}`),
			want:  []string{"the event names no Custom::KmsGrant resource (it lacks StackId, LogicalResourceId, PhysicalResourceId)", "deploy the stack again"},
		},
		{
			name: "DescribeStackResource denied", event: healEvent(t, props(owned)), stacks: cfnErr("AccessDenied", "User: "+handlerRole+" is not authorized to perform: cloudformation:DescribeStackResource"),
			want:      []string{"cannot tell whether the resource of the grant " + healName + " on " + keyARN + " still exists, so the check does nothing", "cloudformation:DescribeStackResource on its own stack"},
			wantCalls: []string{"DescribeStackResource"},
		},
		{
			name: "DescribeStackResource throttled", event: healEvent(t, props(owned)), stacks: cfnErr("Throttling", "Rate exceeded"),
			want: []string{"Throttling: Rate exceeded"}, wantCalls: []string{"DescribeStackResource"},
		},
		{
			name: "no CloudFormation client", event: healEvent(t, props(owned)), stacks: nil, noStacks: true,
			want: []string{"this handler has no CloudFormation client"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			f.t = t
			role := handlerRole
			if tc.role == "-" {
				role = ""
			}
			var out bytes.Buffer
			h := New(&f, role)
			h.Metrics = &out
			stacks := tc.stacks
			if stacks == nil {
				stacks = alive
			}
			if !tc.noStacks {
				h.CloudFormation = &fakeStacks{t: t, calls: &f.calls, answers: []func(*cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error){stacks}}
			}

			res, err := h.Heal(context.Background(), tc.event)

			if err == nil {
				t.Fatalf("the check succeeded: %q", res)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "retried for up to") {
				t.Errorf("error %q: the check does not retry a denial", err)
			}
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", f.calls, tc.wantCalls)
			}
			if tc.noMetric {
				if ms := metricsIn(t, out.String()); len(ms) != 0 {
					t.Errorf("metrics %+v for an event without a name", ms)
				}
				return
			}
			wantMetric(t, out.String(), healName, map[string]float64{"GrantCheckFailed": 1})
		})
	}
}

func TestFailingHeal(t *testing.T) {
	var out bytes.Buffer
	_, err := FailingHeal(&out, errors.New("AWS_REGION is not set"))(context.Background(), healEvent(t, props(owned)))
	if err == nil || !strings.Contains(err.Error(), "could not load its AWS configuration: AWS_REGION is not set") {
		t.Errorf("error %v", err)
	}
	wantMetric(t, out.String(), healName, map[string]float64{"GrantCheckFailed": 1})
}

// The Delete of an owned grant retires the grant its physical id names and
// every grant of the handler that matches its definition and name: the
// check re-creates a revoked grant under an id the physical id does not
// know. Grants that do not match are never touched.
func TestDeleteRetiresTheRecreatedGrant(t *testing.T) {
	for _, tc := range []struct {
		name        string
		grants      []types.GrantListEntry
		wantRemoved []string
		wantCalls   []string
	}{
		{"the original grant", []types.GrantListEntry{entry(grantID, keyARN, handlerRole)},
			[]string{grantID}, []string{"RetireGrant", "ListRetirableGrants"}},
		{"revoked, then re-created by the check", []types.GrantListEntry{entry(grantID2, keyARN, handlerRole)},
			[]string{grantID2}, []string{"RetireGrant", "ListRetirableGrants", "RetireGrant"}},
		{"both (a check after a lost revocation answer)", []types.GrantListEntry{entry(grantID, keyARN, handlerRole), entry(grantID2, keyARN, handlerRole), entry(grantID3, keyARN, handlerRole)},
			[]string{grantID, grantID2, grantID3}, []string{"RetireGrant", "ListRetirableGrants", "RetireGrant", "RetireGrant"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &grantStore{}
			for _, g := range append(tc.grants, strangers()...) {
				store.add(g)
			}
			onOtherKey := entry("dddd", key2ARN, handlerRole)
			store.add(onOtherKey)
			f := store.fake(t)

			_, err := serve(t, New(f, handlerRole), event(cfn.RequestDelete, physical(keyARN, grantID), props(owned)), 5*time.Second)

			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(store.removed, tc.wantRemoved) || !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("removed %v with calls %v, want %v with %v", store.removed, f.calls, tc.wantRemoved, tc.wantCalls)
			}
			if !slices.Equal(store.ids(), []string{"aaaa", "bbbb", "cccc", "dddd"}) {
				t.Errorf("grants left %v, want the strangers and the grant on the other key", store.ids())
			}
		})
	}
}

func TestDeleteFailsWhenTheRecreatedGrantStays(t *testing.T) {
	t.Run("listing denied", func(t *testing.T) {
		store := &grantStore{}
		store.add(entry(grantID, keyARN, handlerRole))
		f := store.fake(t)
		f.retirable = func(*kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
			return nil, apiErr("AccessDeniedException", "not authorized to perform: kms:ListRetirableGrants")
		}

		err := New(f, handlerRole).Delete(context.Background(), request("Delete", physical(keyARN, grantID), props(owned), nil))

		for _, w := range []string{"the grant " + grantID + " on " + keyARN + " is removed, but listing the other grants named " + healName, "AccessDeniedException",
			"aws kms list-retirable-grants --region us-east-1 --retiring-principal " + handlerRole, "aws kms retire-grant", "--retain-resources AmiGrant"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v, want it to contain %q", err, w)
			}
		}
		if !slices.Equal(f.calls, []string{"RetireGrant", "ListRetirableGrants"}) {
			t.Errorf("calls %v", f.calls)
		}
	})
	t.Run("retiring the re-created grant is denied", func(t *testing.T) {
		store := &grantStore{}
		store.add(entry(grantID2, keyARN, handlerRole))
		f := store.fake(t)
		retire := f.retireGrant
		f.retireGrant = func(in *kms.RetireGrantInput) (*kms.RetireGrantOutput, error) {
			if aws.ToString(in.GrantId) == grantID2 {
				return nil, apiErr("AccessDeniedException", "no")
			}
			return retire(in)
		}

		err := New(f, handlerRole).Delete(context.Background(), request("Delete", physical(keyARN, grantID), props(owned), nil))

		for _, w := range []string{"KMS RetireGrant of grant " + grantID2, "aws kms revoke-grant --region us-east-1 --key-id " + keyARN + " --grant-id " + grantID2, "--retain-resources AmiGrant"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v, want it to contain %q", err, w)
			}
		}
	})
}

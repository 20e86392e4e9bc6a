package destinationhandler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/destinationhandler"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

// rieFunctionTimeout is the Lambda timeout under the emulator. The real
// bootstrap keeps customresource.SafetyMargin (20 s), or half the time when
// less than 40 s are left, so a call that never succeeds fails after 12 s.
const rieFunctionTimeout = 24 * time.Second

// In process the router's margin is shortened: a call that never succeeds
// fails after 4 s.
const (
	inProcessTimeout = 6 * time.Second
	inProcessMargin  = 2 * time.Second
)

const (
	motoAccount = "123456789012"
	slrARN      = "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	// handlerRole is the function's role, as the construct passes it
	// (grantspec.HandlerRoleEnv), and the RetiringPrincipal of the grants in
	// testdata: the grants the handler owns.
	handlerRole = "arn:aws:iam::123456789012:role/crossaccountami/GrantHandler-dest-9f8e7d6c5b"
)

// handlerEnv is the function's environment: the AWS endpoints (moto, or a
// fake) and the role the construct names.
func handlerEnv(endpoint string) map[string]string {
	env := moto.Env(endpoint)
	// The scheduled check asks CloudFormation whether the grant's resource
	// still exists: moto serves DescribeStackResource.
	env["AWS_ENDPOINT_URL_CLOUDFORMATION"] = endpoint
	env[grantspec.HandlerRoleEnv] = handlerRole
	return env
}

// event is a CloudFormation event read from testdata.
type event map[string]interface{}

func loadEvent(t testing.TB, name string) event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

func (e event) with(kv ...interface{}) event {
	out := event{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// props returns a copy of the event's ResourceProperties (or
// OldResourceProperties) with kv set; a nil value removes the key.
func (e event) props(key string, kv ...interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	if m, ok := e[key].(map[string]interface{}); ok {
		for k, v := range m {
			out[k] = v
		}
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func (e event) str(key string) string { s, _ := e[key].(string); return s }

// invoker runs one event through a handler (in process, or the real
// bootstrap under the Runtime Interface Emulator) and returns the raw
// invocation result.
type invoker func(t *testing.T, payload []byte) []byte

// harness drives events and checks every answer.
type harness struct {
	invoke invoker
	cfn    *cfnresponse.Server
	proxy  *moto.Proxy // counts the handler's AWS calls
	kms    *kms.Client // the test's own client, straight to moto
	// stacks is the test's own CloudFormation client, straight to moto.
	stacks *cloudformation.Client
	// output is what the function printed so far (where its metric lines go).
	output func() string
	seq    int
}

// send runs ev with a fresh RequestId and the loopback response URL, signed
// now (the handler refuses a request whose URL has expired), checks that
// exactly one well-formed answer arrived, and returns it with the AWS calls
// the handler made.
func (h *harness) send(t *testing.T, ev event) (cfnresponse.Answer, []string) {
	t.Helper()
	h.seq++
	requestID := fmt.Sprintf("00000000-0000-4000-8000-%012d", h.seq)
	u, err := url.Parse(cfnresponse.Resigned(t, ev.str("ResponseURL"), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ev = ev.with("RequestId", requestID, "ResponseURL", h.cfn.URL+u.EscapedPath()+"?"+u.RawQuery)
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	h.cfn.Reset()
	h.proxy.Reset()
	h.invoke(t, payload)
	answers := h.cfn.Answers()
	if err := cfnresponse.Check(answers, cfnresponse.Request{StackId: ev.str("StackId"), RequestId: requestID, LogicalResourceId: ev.str("LogicalResourceId")}); err != nil {
		t.Fatalf("%s %s: %v", ev.str("RequestType"), ev.str("ResourceType"), err)
	}
	if answers[0].Path != u.EscapedPath() || answers[0].Query != u.RawQuery {
		t.Errorf("answer sent to %q?%q, want the pre-signed URL's %q?%q unchanged", answers[0].Path, answers[0].Query, u.EscapedPath(), u.RawQuery)
	}
	return answers[0], h.proxy.Calls()
}

func (h *harness) grants(t *testing.T, keyARN string) []string {
	t.Helper()
	out, err := h.kms.ListGrants(context.Background(), &kms.ListGrantsInput{KeyId: aws.String(keyARN)})
	if err != nil {
		t.Fatalf("ListGrants: %v", err)
	}
	var ids []string
	for _, g := range out.Grants {
		ids = append(ids, aws.ToString(g.GrantId))
	}
	slices.Sort(ids)
	return ids
}

func newKey(t testing.TB, c *kms.Client) string {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

func motoKMS(m *moto.Server) *kms.Client {
	return kms.New(kms.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
}

// inProcess serves events with the router Main serves, over clients that
// LoadConfig makes from the environment (pointed at the counting proxy).
func inProcess(t *testing.T, endpoint string) invoker {
	return inProcessWithin(t, endpoint, inProcessTimeout)
}

// inProcessWithin is inProcess with a Lambda timeout of its own.
func inProcessWithin(t *testing.T, endpoint string, timeout time.Duration) invoker {
	return inProcessTo(t, endpoint, timeout, nil)
}

// inProcessTo is inProcessWithin with the scheduled check's metric lines
// going to metrics (nil: stdout).
func inProcessTo(t *testing.T, endpoint string, timeout time.Duration, metrics io.Writer) invoker {
	handle := lambdaIn(t, endpoint, timeout, metrics)
	return func(t *testing.T, payload []byte) []byte {
		out, err := handle(payload)
		if err != nil {
			t.Fatalf("invocation failed: %v", err)
		}
		b, _ := json.Marshal(out)
		return b
	}
}

// lambdaIn is the function's entry point (the router Main serves, over
// clients that LoadConfig makes from the environment), invoked under a
// Lambda deadline of timeout; it returns the invocation's result and error.
func lambdaIn(t *testing.T, endpoint string, timeout time.Duration, metrics io.Writer) func(payload []byte) (string, error) {
	for k, v := range handlerEnv(endpoint) {
		t.Setenv(k, v)
	}
	cfg, err := destinationhandler.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = metrics
	router := destinationhandler.NewRouter(cfg)
	router.SafetyMargin = inProcessMargin
	handle := router.LambdaHandler()
	return func(payload []byte) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return handle(ctx, payload)
	}
}

// lockedBuffer collects output written from more than one goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func wantIDs(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func grantOf(t *testing.T, a cfnresponse.Answer) grantspec.PhysicalID {
	t.Helper()
	id, ok := grantspec.ParsePhysicalID(a.PhysicalResourceId)
	if !ok {
		t.Fatalf("physical id %q is not a grant id", a.PhysicalResourceId)
	}
	if name, _ := a.Data[grantspec.AttrGrantName].(string); a.Data[grantspec.AttrGrantId] != id.GrantId || a.Data[grantspec.AttrKeyArn] != id.KeyArn || name == "" || len(a.Data) != 3 {
		t.Errorf("Data %v, want GrantId %s, KeyArn %s and a GrantName", a.Data, id.GrantId, id.KeyArn)
	}
	return id
}

func expect(t *testing.T, step string, a cfnresponse.Answer, status string, calls, wantCalls []string) {
	t.Helper()
	if a.Status != status {
		t.Errorf("%s: %s, want %s: %s", step, a.Status, status, a.Body)
	}
	if wantCalls != nil && !slices.Equal(calls, wantCalls) {
		t.Errorf("%s: AWS calls %v, want %v", step, calls, wantCalls)
	}
}

// grantSequence is the lifecycle a stack goes through, checked against
// moto's grants after every step.
func grantSequence(t *testing.T, h *harness) {
	key := newKey(t, h.kms)
	create := loadEvent(t, "grant-create.json")
	create = create.with("ResourceProperties", create.props("ResourceProperties", "KeyArn", key))
	p1 := create.props("ResourceProperties")
	p2 := create.props("ResourceProperties", "Operations", []interface{}{"Decrypt", "DescribeKey", "CreateGrant"})
	update := loadEvent(t, "grant-update.json")
	del := loadEvent(t, "grant-delete.json")

	// Create: one CreateGrant.
	a, calls := h.send(t, create)
	expect(t, "create", a, "SUCCESS", calls, []string{"KMS.CreateGrant"})
	g1 := grantOf(t, a)
	if g1.KeyArn != key || len(g1.GrantId) != 8 { // moto's grant ids have 8 hex digits
		t.Errorf("create: grant %+v", g1)
	}
	// The derived name, for the scheduled check's event.
	if want := grantspec.DefaultName(create.str("StackId"), create.str("LogicalResourceId")); a.Data[grantspec.AttrGrantName] != want {
		t.Errorf("create: GrantName %v, want %s", a.Data[grantspec.AttrGrantName], want)
	}
	if got := h.grants(t, key); !slices.Equal(got, wantIDs(g1.GrantId)) {
		t.Errorf("after create: grants %v, want %v", got, []string{g1.GrantId})
	}

	// Identical update: no KMS call, same id, same Data keys.
	a, calls = h.send(t, update.with("PhysicalResourceId", g1.String(), "ResourceProperties", p1, "OldResourceProperties", p1))
	expect(t, "identical update", a, "SUCCESS", calls, []string{})
	if grantOf(t, a) != g1 {
		t.Errorf("identical update: physical id %s, want %s", a.PhysicalResourceId, g1)
	}
	if got := h.grants(t, key); !slices.Equal(got, wantIDs(g1.GrantId)) {
		t.Errorf("after identical update: grants %v", got)
	}

	// Replacing update: the grants already matching the new definition are
	// listed (none), then a new grant; the old one untouched.
	a, calls = h.send(t, update.with("PhysicalResourceId", g1.String(), "ResourceProperties", p2, "OldResourceProperties", p1))
	expect(t, "replacing update", a, "SUCCESS", calls, []string{"KMS.ListRetirableGrants", "KMS.CreateGrant"})
	g2 := grantOf(t, a)
	if g2 == g1 {
		t.Errorf("replacing update kept the physical id %s", g1)
	}
	if got := h.grants(t, key); !slices.Equal(got, wantIDs(g1.GrantId, g2.GrantId)) {
		t.Errorf("after replacing update: grants %v, want %v", got, wantIDs(g1.GrantId, g2.GrantId))
	}

	// Someone revokes the new grant; a VerifyToken change recreates it.
	if _, err := h.kms.RevokeGrant(context.Background(), &kms.RevokeGrantInput{KeyId: aws.String(key), GrantId: aws.String(g2.GrantId)}); err != nil {
		t.Fatal(err)
	}
	// The grant is owned: it is found by its definition and name, made again
	// under the same name, and the physical id stays (a new one would make
	// CloudFormation delete the old, which retires every matching grant);
	// Data names the new grant.
	p2v := create.props("ResourceProperties", "Operations", p2["Operations"], "VerifyToken", "2026-11-28")
	a, calls = h.send(t, update.with("PhysicalResourceId", g2.String(), "ResourceProperties", p2v, "OldResourceProperties", p2))
	expect(t, "verify update", a, "SUCCESS", calls, []string{"KMS.ListRetirableGrants", "KMS.CreateGrant"})
	g3 := grantspec.PhysicalID{KeyArn: key, GrantId: fmt.Sprint(a.Data[grantspec.AttrGrantId])}
	if a.PhysicalResourceId != g2.String() || a.Data[grantspec.AttrKeyArn] != key {
		t.Errorf("verify update: physical id %s, Data %v; want the physical id %s kept", a.PhysicalResourceId, a.Data, g2)
	}
	if got := h.grants(t, key); g3 == g2 || !slices.Equal(got, wantIDs(g1.GrantId, g3.GrantId)) {
		t.Errorf("after verify update: grant %s, grants %v", g3, got)
	}
	// The same check while the grant exists keeps it.
	p2w := create.props("ResourceProperties", "Operations", p2["Operations"], "VerifyToken", "2026-11-29")
	a, calls = h.send(t, update.with("PhysicalResourceId", g2.String(), "ResourceProperties", p2w, "OldResourceProperties", p2v))
	expect(t, "verify update, grant present", a, "SUCCESS", calls, []string{"KMS.ListRetirableGrants"})
	if a.PhysicalResourceId != g2.String() || a.Data[grantspec.AttrGrantId] != g3.GrantId {
		t.Errorf("verify update with the grant present: %s, Data %v; want %s naming %s", a.PhysicalResourceId, a.Data, g2, g3.GrantId)
	}

	// CloudFormation deletes the old grant after the update: retired, then
	// the handler's grants of its definition listed (none left).
	a, calls = h.send(t, del.with("PhysicalResourceId", g1.String(), "ResourceProperties", p1))
	expect(t, "delete old", a, "SUCCESS", calls, []string{"KMS.RetireGrant", "KMS.ListRetirableGrants"})
	if got := h.grants(t, key); !slices.Equal(got, wantIDs(g3.GrantId)) {
		t.Errorf("after delete old: grants %v, want %v", got, []string{g3.GrantId})
	}

	// Stack deletion: the physical id names g2, which is gone; the grant
	// made again under its name is found and retired.
	a, calls = h.send(t, del.with("PhysicalResourceId", g2.String(), "ResourceProperties", p2w))
	expect(t, "delete new", a, "SUCCESS", calls, []string{"KMS.RetireGrant", "KMS.ListRetirableGrants", "KMS.RetireGrant"})
	if a.PhysicalResourceId != g2.String() {
		t.Errorf("delete answered physical id %q, want %q", a.PhysicalResourceId, g2)
	}
	if got := h.grants(t, key); len(got) != 0 {
		t.Errorf("after delete new: grants %v, want none", got)
	}

	// The same delete again (CloudFormation retries a delete): success.
	a, calls = h.send(t, del.with("PhysicalResourceId", g2.String(), "ResourceProperties", p2w))
	expect(t, "delete again", a, "SUCCESS", calls, []string{"KMS.RetireGrant", "KMS.ListRetirableGrants"})

	// Create on a key that does not exist: FAILED, naming the key. moto
	// answers HTTP 500 (real KMS: NotFoundException, not retried), which is
	// retried until the handler's deadline. A 500 leaves in doubt whether
	// KMS created the grant, so the answer's physical id names the key and
	// the grant name (real KMS's NotFoundException answers the RequestId).
	missing := "arn:aws:kms:us-east-1:" + motoAccount + ":key/0987dcba-09fe-87dc-65ba-ab0987654321"
	a, calls = h.send(t, create.with("ResourceProperties", create.props("ResourceProperties", "KeyArn", missing)))
	expect(t, "create on a missing key", a, "FAILED", nil, nil)
	pending, isPending := grantspec.ParsePendingID(a.PhysicalResourceId)
	if !strings.Contains(a.Reason, "KMS CreateGrant on "+missing+" for "+slrARN) || !isPending || pending.KeyArn != missing {
		t.Errorf("create on a missing key: Reason %q, PhysicalResourceId %q (want a pending id on %s)", a.Reason, a.PhysicalResourceId, missing)
	}
	if len(calls) == 0 || calls[0] != "KMS.CreateGrant" {
		t.Errorf("create on a missing key: calls %v", calls)
	}

	// CloudFormation then deletes the failed resource: the handler lists the
	// grants its role may retire (no key needed) and finds none of that
	// name: success.
	a, calls = h.send(t, del.with("PhysicalResourceId", a.PhysicalResourceId, "ResourceProperties", create.props("ResourceProperties", "KeyArn", missing)))
	expect(t, "delete after failed create", a, "SUCCESS", calls, []string{"KMS.ListRetirableGrants"})

	// A physical id that never was a grant: no call.
	a, calls = h.send(t, del.with("PhysicalResourceId", "dest-AmiGrant-1RT6Q7Y0G4M2K"))
	expect(t, "delete of a non-grant id", a, "SUCCESS", calls, []string{})

	// Invalid properties are FAILED naming the property and value, with no call.
	for _, bad := range []struct{ prop, value, want string }{
		{"KeyArn", "arn:aws:kms:us-east-1:123456789012:alias/ami", `KeyArn: expected a KMS key ARN, got the alias ARN "arn:aws:kms:us-east-1:123456789012:alias/ami"`},
		{"KeyArn", "1234abcd", `KeyArn: expected a KMS key ARN`},
		{"GranteePrincipal", "arn:aws:s3:::bucket", `GranteePrincipal: "arn:aws:s3:::bucket" is not an IAM principal ARN`},
	} {
		a, calls = h.send(t, create.with("ResourceProperties", create.props("ResourceProperties", bad.prop, bad.value)))
		expect(t, "invalid "+bad.prop, a, "FAILED", calls, []string{})
		if !strings.Contains(a.Reason, bad.want) {
			t.Errorf("invalid %s: Reason %q, want it to contain %q", bad.prop, a.Reason, bad.want)
		}
	}
	a, calls = h.send(t, create.with("ResourceProperties", create.props("ResourceProperties", "Operations", []interface{}{"Decrypt", "Launch"})))
	expect(t, "unknown operation", a, "FAILED", calls, []string{})
	if !strings.Contains(a.Reason, `Operations: unknown grant operation "Launch"`) {
		t.Errorf("unknown operation: Reason %q", a.Reason)
	}
}

// rollbackSequence is the Delete CloudFormation sends after a Create that
// failed in doubt (its CreateGrant reached KMS, the answer was lost). It must
// remove the grant that Create made and no other grant of the same name.
func rollbackSequence(t *testing.T, h *harness) {
	key := newKey(t, h.kms)
	create := loadEvent(t, "grant-create.json")
	props := create.props("ResourceProperties", "KeyArn", key)
	name := grantspec.DefaultName(create.str("StackId"), create.str("LogicalResourceId"))
	ops := []types.GrantOperation{}
	for _, op := range props["Operations"].([]interface{}) {
		ops = append(ops, types.GrantOperation(op.(string)))
	}
	grant := func(grantee, retiring string) string {
		t.Helper()
		in := &kms.CreateGrantInput{KeyId: aws.String(key), Name: aws.String(name), GranteePrincipal: aws.String(grantee), Operations: ops}
		if retiring != "" {
			in.RetiringPrincipal = aws.String(retiring)
		}
		out, err := h.kms.CreateGrant(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.GrantId)
	}
	// GIVEN a hand-made grant and another destination's grant with the
	// Create's name, and the grant the failed Create made
	handMade := grant(slrARN, "")
	otherDest := grant("arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_other",
		"arn:aws:iam::123456789012:role/crossaccountami/GrantHandler-other-0a1b2c3d4e")
	leaked := grant(slrARN, handlerRole)

	// WHEN CloudFormation rolls the Create back
	pending := grantspec.PendingID{KeyArn: key, Name: name}.String()
	a, calls := h.send(t, loadEvent(t, "grant-delete.json").with("PhysicalResourceId", pending, "ResourceProperties", props))

	// THEN only the leaked grant is gone, found among the role's retirable grants
	expect(t, "rollback delete", a, "SUCCESS", calls, []string{"KMS.ListRetirableGrants", "KMS.RetireGrant"})
	if got := h.grants(t, key); !slices.Equal(got, wantIDs(handMade, otherDest)) {
		t.Errorf("grants after the rollback %v, want the hand-made %s and the other destination's %s (the leaked %s removed)", got, handMade, otherDest, leaked)
	}
}

func slrSequence(t *testing.T, h *harness) {
	create := loadEvent(t, "slr-create.json")
	for i, step := range []event{
		create,
		create.with("RequestType", "Update", "PhysicalResourceId", slrARN, "OldResourceProperties", create.props("ResourceProperties")),
	} {
		a, calls := h.send(t, step)
		expect(t, fmt.Sprintf("slr step %d", i), a, "SUCCESS", calls, []string{"IAM.CreateServiceLinkedRole"})
		if a.PhysicalResourceId != slrARN || a.Data["RoleArn"] != slrARN {
			t.Errorf("slr step %d: %s", i, a.Body)
		}
	}
	a, calls := h.send(t, create.with("RequestType", "Delete", "PhysicalResourceId", slrARN))
	expect(t, "slr delete", a, "SUCCESS", calls, []string{})

	a, calls = h.send(t, create.with("ResourceProperties", create.props("ResourceProperties", "CustomSuffix", "has space")))
	expect(t, "slr bad suffix", a, "FAILED", calls, []string{})
	if !strings.Contains(a.Reason, `CustomSuffix: "has space"`) {
		t.Errorf("slr bad suffix: %q", a.Reason)
	}
}

// otherSLRSequence: each other launcher's service-linked role
// (Custom::ServiceLinkedRole) is created with one IAM call; a second stack
// ensuring the same role (moto answers EntityAlreadyExists, as IAM answers
// "has been taken" to a concurrent creator) succeeds with the same role.
func otherSLRSequence(t *testing.T, h *harness) {
	create := loadEvent(t, "slr-create.json")
	for _, tc := range []struct{ service, arn string }{
		{"ec2fleet.amazonaws.com", "arn:aws:iam::123456789012:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet"},
		{"spotfleet.amazonaws.com", "arn:aws:iam::123456789012:role/aws-service-role/spotfleet.amazonaws.com/AWSServiceRoleForEC2SpotFleet"},
		{"spot.amazonaws.com", "arn:aws:iam::123456789012:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"},
	} {
		ev := create.with("ResourceType", "Custom::ServiceLinkedRole", "ResourceProperties", create.props("ResourceProperties", "AWSServiceName", tc.service))
		for _, who := range []string{"first stack", "second stack"} {
			a, calls := h.send(t, ev)
			expect(t, tc.service+" "+who, a, "SUCCESS", calls, []string{"IAM.CreateServiceLinkedRole"})
			if a.PhysicalResourceId != tc.arn || a.Data["RoleArn"] != tc.arn {
				t.Errorf("%s %s: %s", tc.service, who, a.Body)
			}
		}
		a, calls := h.send(t, ev.with("RequestType", "Delete", "PhysicalResourceId", tc.arn))
		expect(t, tc.service+" delete", a, "SUCCESS", calls, []string{})
	}
}

// launcherGrantSequence: a destination with three launchers (Auto
// Scaling, EC2 Fleet, a Karpenter controller role) has three grants on one
// key, one per grantee, each created with one CreateGrant for exactly its
// grantee and retired at Delete (RetireGrant, then ListRetirableGrants for
// a copy), leaving the key without grants.
func launcherGrantSequence(t *testing.T, h *harness) {
	key := newKey(t, h.kms)
	create := loadEvent(t, "grant-create.json")
	grantees := []string{slrARN,
		"arn:aws:iam::123456789012:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet",
		"arn:aws:iam::123456789012:role/karpenter/KarpenterController"}
	var made []grantspec.PhysicalID
	for i, g := range grantees {
		ev := create.with("LogicalResourceId", fmt.Sprintf("AmiGrant%d", i), "ResourceProperties", create.props("ResourceProperties", "KeyArn", key, "GranteePrincipal", g))
		a, calls := h.send(t, ev)
		expect(t, "create for "+g, a, "SUCCESS", calls, []string{"KMS.CreateGrant"})
		made = append(made, grantOf(t, a))
	}
	out, err := h.kms.ListGrants(context.Background(), &kms.ListGrantsInput{KeyId: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range out.Grants {
		got = append(got, aws.ToString(g.GranteePrincipal))
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(grantees))
	if !slices.Equal(got, want) {
		t.Errorf("grantees on the key %v, want %v", got, want)
	}
	for i, g := range grantees {
		ev := loadEvent(t, "grant-delete.json").with("LogicalResourceId", fmt.Sprintf("AmiGrant%d", i), "PhysicalResourceId", made[i].String(),
			"ResourceProperties", create.props("ResourceProperties", "KeyArn", key, "GranteePrincipal", g))
		a, calls := h.send(t, ev)
		expect(t, "delete for "+g, a, "SUCCESS", calls, []string{"KMS.RetireGrant", "KMS.ListRetirableGrants"})
	}
	if left := h.grants(t, key); len(left) != 0 {
		t.Errorf("grants left after the deletes: %v", left)
	}
}

func malformed(t *testing.T, h *harness) {
	a, calls := h.send(t, loadEvent(t, "malformed-properties.json"))
	expect(t, "malformed", a, "FAILED", calls, []string{})
	if !strings.Contains(a.Reason, "malformed CloudFormation event") {
		t.Errorf("malformed: %q", a.Reason)
	}
	a, _ = h.send(t, loadEvent(t, "grant-create.json").with("ResourceType", "Custom::Unknown"))
	expect(t, "unknown type", a, "FAILED", nil, nil)
	if !strings.Contains(a.Reason, `ResourceType: this handler serves Custom::AutoScalingServiceLinkedRole and Custom::CrossAccountAmiCopy and Custom::KmsGrant and Custom::ServiceLinkedRole, got "Custom::Unknown"`) {
		t.Errorf("unknown type: %q", a.Reason)
	}
}

func TestInProcessAgainstMoto(t *testing.T) {
	m := moto.Start(t)
	proxy := m.CountingProxy(t)
	out := &lockedBuffer{}
	h := &harness{invoke: inProcessTo(t, proxy.URL, inProcessTimeout, out), cfn: cfnresponse.Start(t), proxy: proxy, kms: motoKMS(m), stacks: motoStacks(m), output: out.String}

	t.Run("grant", func(t *testing.T) { grantSequence(t, h) })
	t.Run("rollback of a failed create", func(t *testing.T) { rollbackSequence(t, h) })
	t.Run("scheduled check", func(t *testing.T) { healSequence(t, h) })
	t.Run("service-linked role", func(t *testing.T) { slrSequence(t, h) })
	t.Run("other launchers' service-linked roles", func(t *testing.T) { otherSLRSequence(t, h) })
	t.Run("three launchers' grants", func(t *testing.T) { launcherGrantSequence(t, h) })
	t.Run("malformed", func(t *testing.T) { malformed(t, h) })
}

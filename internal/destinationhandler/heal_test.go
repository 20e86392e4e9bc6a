package destinationhandler_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
	"github.com/crossaccountami/crossaccountami/internal/testenv/fakekms"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

// heal runs the scheduled check of the grant props define through the
// function's entry point, and returns its result and the AWS calls it
// made. The check answers nobody: no CloudFormation answer may arrive.
func (h *harness) heal(t *testing.T, props map[string]interface{}, r grantspec.HealResource) (string, []string) {
	t.Helper()
	h.cfn.Reset()
	h.proxy.Reset()
	out := h.invoke(t, healPayload(t, props, r))
	if a := h.cfn.Answers(); len(a) != 0 {
		t.Errorf("the check answered CloudFormation: %v", a)
	}
	var res string
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("result %s: %v", out, err)
	}
	return res, h.proxy.Calls()
}

// emfLine is one metric line of the check, as CloudWatch reads it.
type emfLine struct {
	Namespace  string
	Dimensions [][]string
	Units      map[string]string
	GrantName  string
	Values     map[string]float64
}

// metricsOf reads the EMF lines for grant name in a function's output.
func metricsOf(out, name string) []emfLine {
	var lines []emfLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		text := sc.Text()
		if i := strings.Index(text, `{"`); i > 0 {
			text = text[i:] // the emulator may prefix a line
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal([]byte(text), &doc) != nil || doc["_aws"] == nil {
			continue
		}
		var meta struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		}
		var grant string
		if json.Unmarshal(doc["_aws"], &meta) != nil || json.Unmarshal(doc[grantspec.MetricDimensionGrantName], &grant) != nil || grant != name || len(meta.CloudWatchMetrics) != 1 || meta.Timestamp == 0 {
			continue
		}
		d := meta.CloudWatchMetrics[0]
		l := emfLine{Namespace: d.Namespace, Dimensions: d.Dimensions, Units: map[string]string{}, GrantName: grant, Values: map[string]float64{}}
		for _, m := range d.Metrics {
			var v float64
			_ = json.Unmarshal(doc[m.Name], &v)
			l.Units[m.Name], l.Values[m.Name] = m.Unit, v
		}
		lines = append(lines, l)
	}
	return lines
}

// wantMetrics waits until output holds n metric lines for name (the
// emulator's log arrives a moment after the invocation) and checks the last.
func wantMetrics(t *testing.T, output func() string, name string, n int, values map[string]float64) {
	t.Helper()
	var lines []emfLine
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if lines = metricsOf(output(), name); len(lines) >= n || time.Now().After(deadline) {
			break
		}
	}
	if len(lines) != n {
		t.Fatalf("%d metric lines for %s, want %d", len(lines), name, n)
	}
	l := lines[n-1]
	if l.Namespace != grantspec.MetricNamespace || len(l.Dimensions) != 1 || !slices.Equal(l.Dimensions[0], []string{grantspec.MetricDimensionGrantName}) {
		t.Errorf("metric line %+v: want namespace %s, one dimension set [%s]", l, grantspec.MetricNamespace, grantspec.MetricDimensionGrantName)
	}
	if len(l.Values) != len(values) {
		t.Errorf("metrics %v, want %v", l.Values, values)
	}
	for k, v := range values {
		if got, ok := l.Values[k]; !ok || got != v || l.Units[k] != "Count" {
			t.Errorf("metric %s = %v %s (present: %v), want %v Count", k, got, l.Units[k], ok, v)
		}
	}
}

// retirable lists the grants named name that the handler's role may retire.
func retirable(t *testing.T, c *kms.Client, name string) []types.GrantListEntry {
	t.Helper()
	out, err := c.ListRetirableGrants(context.Background(), &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(handlerRole)})
	if err != nil {
		t.Fatalf("ListRetirableGrants: %v", err)
	}
	var found []types.GrantListEntry
	for _, g := range out.Grants {
		if aws.ToString(g.Name) == name {
			found = append(found, g)
		}
	}
	return found
}

// healSequence is an incident and its repair: a grant the handler created
// is revoked by hand, the scheduled check makes it again, a second check
// finds it, and the stack's Delete retires the grant the check made, which
// its physical id does not name. Then the stack is deleted, and a check
// delivered late (it waited in Lambda's queue) makes no grant. The grant's
// resource is a stand-in in a moto stack (moto runs no custom resource),
// which the check asks about through AWS_ENDPOINT_URL_CLOUDFORMATION.
func healSequence(t *testing.T, h *harness) {
	key := newKey(t, h.kms)
	res0 := standInStack(t, h.stacks, "heal-"+key[strings.LastIndex(key, "/")+1:])
	calls0 := []string{"CloudFormation.DescribeStackResource"}
	withCFN := func(calls ...string) []string { return append(slices.Clone(calls0), calls...) }
	create := loadEvent(t, "grant-create.json")
	del := loadEvent(t, "grant-delete.json")
	name := "heal/" + key[strings.LastIndex(key, "/")+1:] // one name per key: the test's own
	props := create.props("ResourceProperties", "KeyArn", key, "Name", name)
	ops := props["Operations"].([]interface{})

	// GIVEN a grant the handler created (a template name: looked up first)
	a, calls := h.send(t, create.with("ResourceProperties", props))
	expect(t, "create", a, "SUCCESS", calls, []string{"KMS.ListRetirableGrants", "KMS.CreateGrant"})
	g1 := grantOf(t, a)
	if a.Data[grantspec.AttrGrantName] != name {
		t.Errorf("create: GrantName %v, want %s", a.Data[grantspec.AttrGrantName], name)
	}

	// WHEN the check runs while the grant is there THEN it is left alone
	res, calls := h.heal(t, props, res0)
	if !slices.Equal(calls, withCFN("KMS.ListRetirableGrants")) || res != fmt.Sprintf("grant %s on %s present: %s", name, key, g1.GrantId) {
		t.Errorf("check, grant present: %q after calls %v", res, calls)
	}
	wantMetrics(t, h.output, name, 1, map[string]float64{grantspec.MetricGrantRecreated: 0, grantspec.MetricGrantCheckFailed: 0})

	// WHEN someone revokes the grant (an incident)
	if _, err := h.kms.RevokeGrant(context.Background(), &kms.RevokeGrantInput{KeyId: aws.String(key), GrantId: aws.String(g1.GrantId)}); err != nil {
		t.Fatal(err)
	}
	if got := retirable(t, h.kms, name); len(got) != 0 {
		t.Fatalf("grants after the revocation %v", got)
	}
	// AND the check runs THEN the grant is back: same name, key, grantee,
	// operations and retiring principal, under a new id
	res, calls = h.heal(t, props, res0)
	if !slices.Equal(calls, withCFN("KMS.ListRetirableGrants", "KMS.CreateGrant", "CloudFormation.DescribeStackResource")) || !strings.HasPrefix(res, fmt.Sprintf("grant %s on %s re-created: ", name, key)) {
		t.Errorf("check, grant revoked: %q after calls %v", res, calls)
	}
	wantMetrics(t, h.output, name, 2, map[string]float64{grantspec.MetricGrantRecreated: 1, grantspec.MetricGrantCheckFailed: 0})
	back := retirable(t, h.kms, name)
	if len(back) != 1 {
		t.Fatalf("grants named %s after the check: %v, want one", name, back)
	}
	g := back[0]
	gotOps := []string{}
	for _, op := range g.Operations {
		gotOps = append(gotOps, string(op))
	}
	wantOps := []string{}
	for _, op := range ops {
		wantOps = append(wantOps, op.(string))
	}
	if id := aws.ToString(g.GrantId); id == g1.GrantId || !strings.HasSuffix(res, id) ||
		(aws.ToString(g.KeyId) != key && !strings.HasSuffix(key, ":key/"+aws.ToString(g.KeyId))) ||
		aws.ToString(g.GranteePrincipal) != slrARN || aws.ToString(g.RetiringPrincipal) != handlerRole ||
		!grantspec.SameOperations(gotOps, wantOps) {
		t.Errorf("the re-created grant %+v (operations %v), want a new id on %s for %s, operations %v, retiring principal %s", g, gotOps, key, slrARN, wantOps, handlerRole)
	}

	// WHEN the check runs again THEN it finds the grant: no second one
	res, calls = h.heal(t, props, res0)
	if !slices.Equal(calls, withCFN("KMS.ListRetirableGrants")) || !strings.HasSuffix(res, "present: "+aws.ToString(g.GrantId)) {
		t.Errorf("second check: %q after calls %v", res, calls)
	}
	wantMetrics(t, h.output, name, 3, map[string]float64{grantspec.MetricGrantRecreated: 0, grantspec.MetricGrantCheckFailed: 0})
	if got := retirable(t, h.kms, name); len(got) != 1 || aws.ToString(got[0].GrantId) != aws.ToString(g.GrantId) {
		t.Errorf("grants after the second check %v, want only %s", got, aws.ToString(g.GrantId))
	}

	// WHEN the stack is deleted (its physical id names the revoked grant)
	// THEN the grant the check made is retired too
	a, calls = h.send(t, del.with("PhysicalResourceId", g1.String(), "ResourceProperties", props))
	expect(t, "delete after a heal", a, "SUCCESS", calls, []string{"KMS.RetireGrant", "KMS.ListRetirableGrants", "KMS.RetireGrant"})
	if got := retirable(t, h.kms, name); len(got) != 0 {
		t.Errorf("grants named %s after the delete: %v, want none", name, got)
	}

	// A grant that was never revoked: its Delete retires it by its id, and
	// finds no other.
	name2 := name + "/kept"
	props2 := create.props("ResourceProperties", "KeyArn", key, "Name", name2)
	a, _ = h.send(t, create.with("ResourceProperties", props2))
	g2 := grantOf(t, a)
	if res, calls := h.heal(t, props2, res0); !slices.Equal(calls, withCFN("KMS.ListRetirableGrants")) || !strings.HasSuffix(res, "present: "+g2.GrantId) {
		t.Errorf("check of %s: %q after calls %v", name2, res, calls)
	}
	wantMetrics(t, h.output, name2, 1, map[string]float64{grantspec.MetricGrantRecreated: 0, grantspec.MetricGrantCheckFailed: 0})
	a, calls = h.send(t, del.with("PhysicalResourceId", g2.String(), "ResourceProperties", props2))
	expect(t, "delete of the original grant", a, "SUCCESS", calls, []string{"KMS.RetireGrant", "KMS.ListRetirableGrants"})
	if got := retirable(t, h.kms, name2); len(got) != 0 {
		t.Errorf("grants named %s after the delete: %v, want none", name2, got)
	}
	if got := h.grants(t, key); len(got) != 0 {
		t.Errorf("grants on %s after the deletes: %v, want none", key, got)
	}

	// WHEN the stack is deleted AND a check of its grant arrives afterwards
	// THEN it asks CloudFormation, sees the resource DELETE_COMPLETE, and
	// makes no grant
	if _, err := h.stacks.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(res0.StackID)}); err != nil {
		t.Fatal(err)
	}
	res, calls = h.heal(t, props, res0)
	if !slices.Equal(calls, calls0) || !strings.HasPrefix(res, fmt.Sprintf("grant %s on %s not checked: ", name, key)) {
		t.Errorf("late check: %q after calls %v", res, calls)
	}
	if got := h.grants(t, key); len(got) != 0 {
		t.Errorf("grants on %s after a late check: %v, want none", key, got)
	}
	wantMetrics(t, h.output, name, 3, map[string]float64{grantspec.MetricGrantRecreated: 0, grantspec.MetricGrantCheckFailed: 0})
}

// TestScheduledCheckFailures runs the check through the function's entry
// point against a KMS that refuses: the invocation fails (Lambda counts it
// in Errors) after the check wrote GrantCheckFailed 1.
func TestScheduledCheckFailures(t *testing.T) {
	const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	srv := fakekms.Start(t)
	srv.AddKey(key, fakekms.Enabled)
	srv.SetCaller(handlerRole)
	// CloudFormation is a fake in front of the fake KMS: it shows the
	// grant's resource alive unless a subtest says otherwise.
	stacks := startStacksFront(t, srv.URL)
	res0 := grantspec.HealResource{StackID: "arn:aws:cloudformation:us-east-1:123456789012:stack/dest/0f2a3c40-ad8f-11ef-9a5b-0affd3c1d2e1", LogicalResourceID: "AmiGrant", PhysicalResourceID: key + ":0c237476"}
	alive := stackAnswer{Status: "CREATE_COMPLETE", PhysicalID: res0.PhysicalResourceID}
	stacks.answer(alive)
	out := &lockedBuffer{}
	invoke := lambdaIn(t, stacks.URL, inProcessTimeout, out)
	h := &harness{invoke: inProcessTo(t, stacks.URL, inProcessTimeout, out), cfn: cfnresponse.Start(t), proxy: &moto.Proxy{}}
	create := loadEvent(t, "grant-create.json")
	name := "heal/fake"
	props := create.props("ResourceProperties", "Name", name)
	// check runs the check and returns the KMS calls it made, its result and error.
	check := func(t *testing.T) ([]string, string, error) {
		t.Helper()
		srv.ResetCalls()
		res, err := invoke(healPayload(t, props, res0))
		return srv.Calls(), res, err
	}
	lines := 0
	failed := func(t *testing.T, err error, calls, wantCalls []string, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("the check succeeded")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if !slices.Equal(calls, wantCalls) {
			t.Errorf("calls %v, want %v", calls, wantCalls)
		}
		lines++
		wantMetrics(t, out.String, name, lines, map[string]float64{grantspec.MetricGrantCheckFailed: 1})
	}

	t.Run("ListRetirableGrants denied", func(t *testing.T) {
		srv.Inject("ListRetirableGrants", fakekms.Fault{Code: "AccessDeniedException", Message: "User: " + handlerRole + " is not authorized to perform: kms:ListRetirableGrants", Times: 1})
		calls, _, err := check(t)
		failed(t, err, calls, []string{"ListRetirableGrants"}, "cannot tell whether the grant "+name+" on "+key+" still exists", "is not authorized to perform: kms:ListRetirableGrants", "The IAM policy of "+handlerRole+" must allow kms:ListRetirableGrants")
		if got := srv.Grants(key); len(got) != 0 {
			t.Errorf("grants %v: a check that cannot tell creates nothing", got)
		}
	})
	t.Run("CreateGrant denied (the key policy no longer allows it)", func(t *testing.T) {
		srv.Inject("CreateGrant", fakekms.Fault{Code: "AccessDeniedException", Message: "not authorized to perform: kms:CreateGrant", Times: 1})
		calls, _, err := check(t)
		failed(t, err, calls, []string{"ListRetirableGrants", "CreateGrant"}, "the grant "+name+" on "+key+" is gone, and re-creating it failed", "KMS denied kms:CreateGrant. Two policies must allow it", "the key policy of "+key)
	})
	t.Run("key disabled", func(t *testing.T) {
		srv.SetKeyState(key, fakekms.Disabled)
		defer srv.SetKeyState(key, fakekms.Enabled)
		calls, _, err := check(t)
		failed(t, err, calls, []string{"ListRetirableGrants", "CreateGrant"}, "DisabledException", "aws kms enable-key --key-id "+key)
	})
	t.Run("a grant the handler does not own", func(t *testing.T) {
		foreign := create.props("ResourceProperties", "Name", name, "RetiringPrincipal", nil)
		srv.ResetCalls()
		_, err := invoke(healPayload(t, foreign, res0))
		failed(t, err, srv.Calls(), nil, `its RetiringPrincipal is "", not this handler's role `+handlerRole)
	})
	t.Run("the resource is being deleted: nothing is made", func(t *testing.T) {
		stacks.answer(stackAnswer{Status: "DELETE_IN_PROGRESS", PhysicalID: res0.PhysicalResourceID})
		defer stacks.answer(alive)
		calls, res, err := check(t)
		if err != nil || len(calls) != 0 || stacks.Calls() != 1 || len(srv.Grants(key)) != 0 || !strings.Contains(res, "is DELETE_IN_PROGRESS") {
			t.Errorf("check: %q, %v after KMS calls %v and %d DescribeStackResource; grants %v", res, err, calls, stacks.Calls(), srv.Grants(key))
		}
	})
	t.Run("the resource's Delete begins during the CreateGrant: the grant made is retired", func(t *testing.T) {
		stacks.answer(alive, stackAnswer{Status: "DELETE_IN_PROGRESS", PhysicalID: res0.PhysicalResourceID})
		defer stacks.answer(alive)
		calls, res, err := check(t)
		if err != nil || !slices.Equal(calls, []string{"ListRetirableGrants", "CreateGrant", "RetireGrant"}) || stacks.Calls() != 2 || !strings.Contains(res, "retired again") {
			t.Errorf("check: %q, %v after KMS calls %v and %d DescribeStackResource", res, err, calls, stacks.Calls())
		}
		if got := srv.Grants(key); len(got) != 0 {
			t.Errorf("grants %v, want none", got)
		}
	})
	t.Run("then KMS allows it: the grant is made, once", func(t *testing.T) {
		calls, res, err := check(t)
		if err != nil || !slices.Equal(calls, []string{"ListRetirableGrants", "CreateGrant"}) || len(srv.Grants(key)) != 1 {
			t.Fatalf("check: %q, %v after calls %v; grants %v", res, err, calls, srv.Grants(key))
		}
		lines++
		wantMetrics(t, out.String, name, lines, map[string]float64{grantspec.MetricGrantRecreated: 1, grantspec.MetricGrantCheckFailed: 0})
		calls, res, err = check(t)
		if err != nil || !slices.Equal(calls, []string{"ListRetirableGrants"}) || len(srv.Grants(key)) != 1 {
			t.Errorf("second check: %q, %v after calls %v; grants %v", res, err, calls, srv.Grants(key))
		}
		lines++
		wantMetrics(t, out.String, name, lines, map[string]float64{grantspec.MetricGrantRecreated: 0, grantspec.MetricGrantCheckFailed: 0})

		// The grant the check made has an id no physical id names: the
		// resource's Delete retires it all the same.
		del := loadEvent(t, "grant-delete.json").with("ResourceProperties", props)
		srv.ResetCalls()
		a, _ := h.send(t, del)
		expect(t, "delete", a, "SUCCESS", srv.Calls(), []string{"RetireGrant", "ListRetirableGrants", "RetireGrant"})
		if got := srv.Grants(key); len(got) != 0 {
			t.Errorf("grants after the delete %v", got)
		}
	})
	t.Run("an event of no known kind", func(t *testing.T) {
		srv.ResetCalls()
		_, err := invoke([]byte(`{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`))
		if err == nil || !strings.Contains(err.Error(), `not of a kind this function serves ("crossaccountami":"copy-continuation", "crossaccountami":"heal-grant"); received {"version":"0","detail-type":"Scheduled Event"`) || len(srv.Calls()) != 0 {
			t.Errorf("error %v after calls %v", err, srv.Calls())
		}
	})
}

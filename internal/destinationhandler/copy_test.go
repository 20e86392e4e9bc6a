package destinationhandler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/crossaccountami/crossaccountami/internal/copylifecycle"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
	"github.com/crossaccountami/crossaccountami/internal/testenv/rie"
)

// copyFunction is the function's name in the copy tests
// (AWS_LAMBDA_FUNCTION_NAME); the Runtime Interface Emulator also builds
// the context's InvokedFunctionArn from it.
const copyFunction = "dest-CopyHandler"

// lambdaInvoke is one Invoke the fake Lambda API received.
type lambdaInvoke struct {
	Function, InvocationType string
	Payload                  []byte
}

// fakeLambda stands in for the Lambda API's Invoke
// (POST /2015-03-31/functions/{FunctionName}/invocations): it records each
// call and answers 202, as Lambda answers an Event invocation it queued;
// the test then delivers the queued payloads to the function, as Lambda
// would, once the invocation that queued them has returned. The Runtime
// Interface Emulator cannot take the hand-over itself: it serves only
// /2015-03-31/functions/function/invocations, runs one invocation at a time
// and ignores X-Amz-Invocation-Type (its internal/lambda/rie/http.go and
// handlers.go).
type fakeLambda struct {
	URL string

	mu      sync.Mutex
	queued  []lambdaInvoke
	refuse  bool
	invokes int
}

func startFakeLambda(t *testing.T) *fakeLambda {
	f := &fakeLambda{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		name, ok := strings.CutPrefix(path, "/2015-03-31/functions/")
		name, ok2 := strings.CutSuffix(name, "/invocations")
		fn, err := url.PathUnescape(name)
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || !ok || !ok2 || err != nil {
			t.Errorf("fake Lambda: %s %s is not an Invoke", r.Method, path)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.invokes++
		if f.refuse {
			w.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"Type":"User","Message":"not allowed to invoke ` + fn + `"}`))
			return
		}
		f.queued = append(f.queued, lambdaInvoke{Function: fn, InvocationType: r.Header.Get("X-Amz-Invocation-Type"), Payload: body})
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hs.Close)
	f.URL = hs.URL
	return f
}

func (f *fakeLambda) take() []lambdaInvoke {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queued
	f.queued = nil
	return q
}

func (f *fakeLambda) setRefuse(v bool) { f.mu.Lock(); f.refuse = v; f.mu.Unlock() }

// copyEnv is the function's environment for the copy tests: EC2 through
// the copy proxy, Lambda at the fake.
func copyEnv(ec2Endpoint, lambdaEndpoint string) map[string]string {
	env := handlerEnv(ec2Endpoint)
	env["AWS_ENDPOINT_URL_EC2"] = ec2Endpoint
	env["AWS_ENDPOINT_URL_LAMBDA"] = lambdaEndpoint
	env["AWS_LAMBDA_FUNCTION_NAME"] = copyFunction
	return env
}

// runner runs one invocation and returns the function's error message, or
// "" when it succeeded.
type runner func(t *testing.T, payload []byte) string

type copyHarness struct {
	run    runner
	cfn    *cfnresponse.Server
	proxy  *moto.CopyProxy
	lambda *fakeLambda
	ec2    *ec2.Client // the test's own client, straight to moto
	// function is the FunctionName the hand-overs must name.
	function string
}

// delivery is what one CloudFormation delivery led to: every answer, the
// hand-overs, the EC2 calls of each invocation, and the invocations'
// errors.
type delivery struct {
	answers   []cfnresponse.Answer
	handOvers []lambdaInvoke
	calls     []string // one entry per invocation, calls joined by spaces
	errs      []string
}

// deliver runs payload, then each hand-over it queued (and theirs), one
// at a time, as Lambda runs the queued Event invocations.
func (h *copyHarness) deliver(t *testing.T, payload []byte) delivery {
	t.Helper()
	h.cfn.Reset()
	h.proxy.Reset()
	h.lambda.take()
	var d delivery
	next := [][]byte{payload}
	for len(next) > 0 {
		if len(d.calls) > copylifecycle.MaxContinuations+2 {
			t.Fatalf("more than %d invocations for one request", len(d.calls))
		}
		p := next[0]
		next = next[1:]
		if e := h.run(t, p); e != "" {
			d.errs = append(d.errs, e)
		}
		d.calls = append(d.calls, strings.Join(h.proxy.Calls(), " "))
		h.proxy.Reset()
		for _, q := range h.lambda.take() {
			d.handOvers = append(d.handOvers, q)
			next = append(next, q.Payload)
		}
	}
	d.answers = h.cfn.Answers()
	return d
}

// once checks that the delivery answered exactly once, well-formed, with
// status, and returns the answer.
func (d delivery) once(t *testing.T, ev event, status string) cfnresponse.Answer {
	t.Helper()
	if err := cfnresponse.Check(d.answers, cfnresponse.Request{StackId: ev.str("StackId"), RequestId: ev.str("RequestId"), LogicalResourceId: ev.str("LogicalResourceId")}); err != nil {
		t.Fatalf("%s: %v (invocation errors %q)", ev.str("RequestType"), err, d.errs)
	}
	if a := d.answers[0]; a.Status != status {
		t.Fatalf("%s: %s, want %s: %s", ev.str("RequestType"), a.Status, status, a.Body)
	}
	return d.answers[0]
}

func (h *copyHarness) copyEvent(t *testing.T, requestType, requestID, physicalID, source string) event {
	ev := loadEvent(t, "copy-create.json")
	ev = ev.with("RequestType", requestType, "RequestId", requestID,
		"ResponseURL", cfnresponse.PresignedURL(h.cfn.URL, time.Now(), 2*time.Hour),
		"ResourceProperties", ev.props("ResourceProperties", copyspec.PropSourceImageId, source))
	if physicalID != "" {
		ev = ev.with("PhysicalResourceId", physicalID)
	}
	return ev
}

func mustJSON(t *testing.T, v interface{}) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// images are this account's images, by id, with their state.
func (h *copyHarness) images(t *testing.T) map[string]string {
	t.Helper()
	out, err := h.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, i := range out.Images {
		m[aws.ToString(i.ImageId)] = string(i.State)
	}
	return m
}

// snapshotsLeft are those of ids moto still has.
func (h *copyHarness) snapshotsLeft(t *testing.T, ids []string) []string {
	t.Helper()
	var left []string
	for _, id := range ids {
		out, err := h.ec2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err == nil && len(out.Snapshots) > 0 {
			left = append(left, id)
		}
	}
	return left
}

// copySequence is a copy's lifecycle through the function's entry point:
// a Create whose copy is available at once, its duplicate delivery, its
// Delete; a Create whose copy is pending for two looks (two hand-overs,
// one answer), a hand-over that arrives after the request's deadline, its
// Delete; and a Create whose hand-over Lambda refuses (the copy removed,
// FAILED once). It logs the calls each lifecycle event made.
func copySequence(t *testing.T, h *copyHarness) {
	imgs, err := h.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("moto's source AMIs: %v", err)
	}
	source := aws.ToString(imgs.Images[0].ImageId)
	calls := map[string][]string{}
	var order []string
	note := func(event string, d delivery) { order = append(order, event); calls[event] = d.calls }

	// Create: the copy is available at the first look.
	h.proxy.PendingLooks(0)
	create := h.copyEvent(t, "Create", "00000000-0000-4000-8000-00000000c001", "", source)
	d := h.deliver(t, mustJSON(t, create))
	a := d.once(t, create, "SUCCESS")
	note("Create", d)
	copyA, _ := a.Data[copyspec.AttrImageId].(string)
	id, ok := copyspec.ParsePhysicalID(a.PhysicalResourceId)
	if !ok || id.ImageId != copyA || len(d.handOvers) != 0 || len(d.errs) != 0 {
		t.Fatalf("create: physical id %q, ImageId %q, hand-overs %d, errors %q", a.PhysicalResourceId, copyA, len(d.handOvers), d.errs)
	}
	snapsA := strings.Split(fmt.Sprint(a.Data[copyspec.AttrSnapshotIds]), ",")
	if got := h.images(t); len(got) != 1 || got[copyA] != "available" {
		t.Errorf("after create: images %v, want the copy %s alone", got, copyA)
	}

	// The same Create delivered again (Lambda may deliver an event twice):
	// the same answer, no second copy.
	d = h.deliver(t, mustJSON(t, create))
	if again := d.once(t, create, "SUCCESS"); again.PhysicalResourceId != a.PhysicalResourceId {
		t.Errorf("duplicate: answered %s, want %s", again.PhysicalResourceId, a.PhysicalResourceId)
	}
	note("Create, duplicate delivery", d)
	if got := h.images(t); len(got) != 1 {
		t.Errorf("after the duplicate: images %v, want one copy", got)
	}

	// Delete: the copy and its snapshots are gone.
	del := h.copyEvent(t, "Delete", "00000000-0000-4000-8000-00000000c002", a.PhysicalResourceId, source)
	d = h.deliver(t, mustJSON(t, del))
	d.once(t, del, "SUCCESS")
	note("Delete", d)
	if got := h.images(t); len(got) != 0 {
		t.Errorf("after delete: images %v, want none", got)
	}
	if left := h.snapshotsLeft(t, snapsA); len(snapsA) == 0 || len(left) != 0 {
		t.Errorf("after delete: snapshots %v of %v left", left, snapsA)
	}

	// Create: the copy is pending for two looks; the first invocation and
	// the first hand-over each hand over, the second hand-over answers.
	h.proxy.PendingLooks(2)
	slow := h.copyEvent(t, "Create", "00000000-0000-4000-8000-00000000c003", "", source)
	d = h.deliver(t, mustJSON(t, slow))
	b := d.once(t, slow, "SUCCESS")
	note("Create, copy pending for two looks", d)
	if len(d.handOvers) != 2 || len(d.calls) != 3 || len(d.errs) != 0 {
		t.Errorf("slow create: %d hand-overs, %d invocations, errors %q; want 2, 3, none", len(d.handOvers), len(d.calls), d.errs)
	}
	for i, ho := range d.handOvers {
		c, err := copylifecycle.DecodeContinuation(ho.Payload)
		if ho.InvocationType != "Event" || ho.Function != h.function || err != nil || c.State.Continuations != i+1 || c.Event.RequestID != slow.str("RequestId") {
			t.Errorf("hand-over %d: Invoke of %q with InvocationType %q, continuation %+v (%v); want an Event invocation of %q carrying the Create", i+1, ho.Function, ho.InvocationType, c.State, err, h.function)
		}
	}
	copyB, _ := b.Data[copyspec.AttrImageId].(string)
	if got := h.images(t); len(got) != 1 || got[copyB] != "available" {
		t.Errorf("after the slow create: images %v, want the copy %s alone", got, copyB)
	}

	// A hand-over that arrives after the request's deadline: nothing done,
	// nothing answered, the invocation fails saying why.
	if len(d.handOvers) > 0 {
		late, _ := copylifecycle.DecodeContinuation(d.handOvers[0].Payload)
		late.State.Deadline = time.Now().Add(-time.Minute)
		d = h.deliver(t, mustJSON(t, late))
		if len(d.answers) != 0 || len(d.errs) != 1 || !strings.Contains(d.errs[0], "after the request's deadline") || d.calls[0] != "" {
			t.Errorf("late hand-over: answers %d, errors %q, calls %q; want none, one naming the deadline, none", len(d.answers), d.errs, d.calls)
		}
		note("Hand-over after the deadline", d)
	}

	del = h.copyEvent(t, "Delete", "00000000-0000-4000-8000-00000000c004", b.PhysicalResourceId, source)
	d = h.deliver(t, mustJSON(t, del))
	d.once(t, del, "SUCCESS")
	if got := h.images(t); len(got) != 0 {
		t.Errorf("after the second delete: images %v", got)
	}

	// Create whose hand-over Lambda refuses: the machine removes the copy
	// and its snapshots and answers FAILED, once, with the pending id.
	h.proxy.PendingLooks(2)
	h.lambda.setRefuse(true)
	defer h.lambda.setRefuse(false)
	refused := h.copyEvent(t, "Create", "00000000-0000-4000-8000-00000000c005", "", source)
	d = h.deliver(t, mustJSON(t, refused))
	f := d.once(t, refused, "FAILED")
	note("Create, hand-over refused", d)
	if _, pending := copyspec.ParsePendingID(f.PhysicalResourceId); !pending ||
		!strings.Contains(f.Reason, "handing the wait for the copy") || !strings.Contains(f.Reason, "AccessDeniedException") || !strings.Contains(f.Reason, "removed") {
		t.Errorf("refused hand-over: %s", f.Body)
	}
	if got := h.images(t); len(got) != 0 {
		t.Errorf("after the refused hand-over: images %v, want none", got)
	}

	for _, e := range order {
		t.Logf("EC2 calls per invocation, %s: %q", e, calls[e])
	}
}

func copyEC2(m *moto.Server) *ec2.Client {
	return ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
}

// TestCopyInProcess runs copySequence through the router Main serves, in
// process (clients from LoadConfig; EC2 through the copy proxy to moto,
// Lambda's Invoke at the fake, whose queued hand-overs the test delivers).
func TestCopyInProcess(t *testing.T) {
	m := moto.Start(t)
	proxy := m.CopyProxy(t)
	fl := startFakeLambda(t)
	for k, v := range copyEnv(proxy.URL, fl.URL) {
		t.Setenv(k, v)
	}
	handle := lambdaIn(t, proxy.URL, inProcessTimeout, nil)
	run := func(t *testing.T, payload []byte) string {
		if _, err := handle(payload); err != nil {
			return err.Error()
		}
		return ""
	}
	// Without a Lambda context the function's name is AWS_LAMBDA_FUNCTION_NAME.
	copySequence(t, &copyHarness{run: run, cfn: cfnresponse.Start(t), proxy: proxy, lambda: fl, ec2: copyEC2(m), function: copyFunction})
}

// TestCopyBootstrapUnderRIE runs copySequence through the real bootstrap
// under the Lambda Runtime Interface Emulator: the hand-overs are the
// bootstrap's own lambda Invoke calls, received by the fake Lambda API and
// delivered to the emulator by the test.
func TestCopyBootstrapUnderRIE(t *testing.T) {
	bootstrap := rie.HostBootstrap(t, handlerbuild.DestinationHandler)
	m := moto.Start(t)
	proxy := m.CopyProxy(t)
	fl := startFakeLambda(t)
	e := rie.Start(t, rie.Options{Bootstrap: bootstrap, Env: copyEnv(proxy.URL, fl.URL), FunctionTimeout: rieFunctionTimeout})
	run := func(t *testing.T, payload []byte) string {
		ctx, cancel := context.WithTimeout(context.Background(), rieFunctionTimeout+10*time.Second)
		defer cancel()
		out, err := e.Invoke(ctx, payload)
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, e.Log())
		}
		var fnErr struct{ ErrorMessage, ErrorType string }
		if json.Unmarshal(out, &fnErr) == nil && fnErr.ErrorType != "" {
			return fnErr.ErrorType + ": " + fnErr.ErrorMessage
		}
		return ""
	}
	// The emulator's Lambda context names the function
	// arn:aws:lambda:us-east-1:012345678912:function:<AWS_LAMBDA_FUNCTION_NAME>.
	h := &copyHarness{run: run, cfn: cfnresponse.Start(t), proxy: proxy, lambda: fl, ec2: copyEC2(m),
		function: "arn:aws:lambda:us-east-1:012345678912:function:" + copyFunction}
	copySequence(t, h)
	if t.Failed() {
		t.Logf("emulator and function output:\n%s", e.Log())
	}
}

// TestCopyBootstrapWithoutConfiguration runs the bootstrap without a
// region (its configuration cannot load): a copy's Create and a hand-over
// of one are still answered FAILED, once each, naming the cause (the
// hand-over with the physical id its state carries), instead of leaving
// CloudFormation waiting until ServiceTimeout.
func TestCopyBootstrapWithoutConfiguration(t *testing.T) {
	bootstrap := rie.HostBootstrap(t, handlerbuild.DestinationHandler)
	env := copyEnv("http://127.0.0.1:9", "http://127.0.0.1:9")
	env["AWS_REGION"], env["AWS_DEFAULT_REGION"] = "", ""
	e := rie.Start(t, rie.Options{Bootstrap: bootstrap, Env: env, FunctionTimeout: rieFunctionTimeout})
	srv := cfnresponse.Start(t)
	h := &copyHarness{cfn: srv}
	create := h.copyEvent(t, "Create", "00000000-0000-4000-8000-00000000c101", "", "ami-0123456789abcdef0")
	var ev copylifecycle.Continuation
	if err := json.Unmarshal(mustJSON(t, map[string]interface{}{"crossaccountami": copylifecycle.ContinuationKind, "event": create,
		"state": map[string]interface{}{"token": "ca0123456789abcdef0123456789abcdef", "imageId": "ami-0fedcba9876543210", "deadline": time.Now().Add(time.Hour),
			"continuations": 1, "failedPhysicalId": "pending-copy/ca0123456789abcdef0123456789abcdef"}}), &ev); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		wantID  string
	}{
		{"create", mustJSON(t, create), create.str("RequestId")},
		{"hand-over", mustJSON(t, ev), "pending-copy/ca0123456789abcdef0123456789abcdef"},
	} {
		srv.Reset()
		e.MustInvoke(t, tc.payload)
		answers := srv.Answers()
		if err := cfnresponse.Check(answers, cfnresponse.Request{StackId: create.str("StackId"), RequestId: create.str("RequestId"), LogicalResourceId: create.str("LogicalResourceId")}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if a := answers[0]; a.Status != "FAILED" || a.PhysicalResourceId != tc.wantID || !strings.Contains(a.Reason, "could not load its AWS configuration") || !strings.Contains(a.Reason, "AWS_REGION is not set") {
			t.Errorf("%s: %s, want FAILED with %s naming the configuration", tc.name, a.Body, tc.wantID)
		}
	}
	if t.Failed() {
		t.Logf("emulator and function output:\n%s", e.Log())
	}
}

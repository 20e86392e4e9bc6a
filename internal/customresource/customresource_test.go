package customresource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
)

const (
	stackID   = "arn:aws:cloudformation:us-east-1:222222222222:stack/dest/0f2a3c40-ad8f-11ef-9a5b-0affd3c1d2e1"
	requestID = "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c"
)

// handler answers through function fields.
type handler struct {
	create, update func(context.Context, customresource.Request) (customresource.Result, error)
	delete         func(context.Context, customresource.Request) error
}

func (h handler) Create(ctx context.Context, r customresource.Request) (customresource.Result, error) {
	return h.create(ctx, r)
}
func (h handler) Update(ctx context.Context, r customresource.Request) (customresource.Result, error) {
	return h.update(ctx, r)
}
func (h handler) Delete(ctx context.Context, r customresource.Request) error { return h.delete(ctx, r) }

func answering(id string, data map[string]interface{}, err error) handler {
	res := func(context.Context, customresource.Request) (customresource.Result, error) {
		if err != nil {
			return customresource.Result{}, err
		}
		return customresource.Result{PhysicalResourceID: id, Data: data}, nil
	}
	return handler{create: res, update: res, delete: func(context.Context, customresource.Request) error { return err }}
}

func event(url, requestType, resourceType, physicalID string) json.RawMessage {
	ev := map[string]interface{}{
		"RequestType": requestType, "ServiceToken": "arn:aws:lambda:us-east-1:222222222222:function:h",
		"ResponseURL": url + "/cfn-response", "StackId": stackID, "RequestId": requestID,
		"LogicalResourceId": "AmiGrant", "ResourceType": resourceType,
		"ResourceProperties": map[string]interface{}{"ServiceToken": "x", "KeyArn": "k"},
	}
	if physicalID != "" {
		ev["PhysicalResourceId"] = physicalID
	}
	if requestType == "Update" {
		ev["OldResourceProperties"] = map[string]interface{}{"KeyArn": "old"}
	}
	b, _ := json.Marshal(ev)
	return b
}

type env struct {
	router *customresource.Router
	cfn    *cfnresponse.Server
	log    *bytes.Buffer
}

func newEnv(t *testing.T, h customresource.Handler) env {
	r := customresource.NewRouter()
	var buf bytes.Buffer
	r.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	r.Handle("Custom::Thing", h)
	return env{router: r, cfn: cfnresponse.Start(t), log: &buf}
}

func (e env) invoke(t *testing.T, ctx context.Context, raw json.RawMessage) cfnresponse.Answer {
	t.Helper()
	e.cfn.Reset()
	if _, err := e.router.LambdaHandler()(ctx, raw); err != nil {
		t.Fatalf("invocation failed: %v", err)
	}
	answers := e.cfn.Answers()
	if err := cfnresponse.Check(answers, cfnresponse.Request{StackId: stackID, RequestId: requestID, LogicalResourceId: "AmiGrant"}); err != nil {
		t.Fatal(err)
	}
	return answers[0]
}

func TestAnswers(t *testing.T) {
	const oldID = "old-id"
	data := map[string]interface{}{"GrantId": "g"}
	for _, tc := range []struct {
		requestType  string
		resourceType string
		handler      handler
		wantStatus   string
		wantID       string
		wantReason   string
		wantData     bool
	}{
		{"Create", "Custom::Thing", answering("new-id", data, nil), "SUCCESS", "new-id", "", true},
		{"Update", "Custom::Thing", answering("new-id", data, nil), "SUCCESS", "new-id", "", true},
		{"Delete", "Custom::Thing", answering("ignored", data, nil), "SUCCESS", oldID, "", false},
		{"Create", "Custom::Thing", answering("", nil, errors.New("boom")), "FAILED", requestID, "boom", false},
		{"Update", "Custom::Thing", answering("", nil, errors.New("boom")), "FAILED", oldID, "boom", false},
		{"Delete", "Custom::Thing", answering("", nil, errors.New("boom")), "FAILED", oldID, "boom", false},
		{"Create", "Custom::Thing", answering("", data, nil), "FAILED", requestID, "no physical resource id", false},
		{"Create", "Custom::Thing", answering(strings.Repeat("x", 1025), data, nil), "FAILED", requestID, "1025 bytes long", false},
		{"Create", "Custom::Thing", answering("id", map[string]interface{}{"Big": strings.Repeat("x", 5000)}, nil), "FAILED", requestID, "CloudFormation accepts less than 4096", false},
		{"Create", "Custom::Other", answering("id", data, nil), "FAILED", requestID, `ResourceType: this handler serves Custom::Thing, got "Custom::Other"`, false},
		{"Replace", "Custom::Thing", answering("id", data, nil), "FAILED", oldID, `RequestType: expected Create, Update or Delete, got "Replace"`, false},
	} {
		t.Run(tc.requestType+" "+tc.resourceType+" "+tc.wantStatus+" "+tc.wantReason, func(t *testing.T) {
			e := newEnv(t, tc.handler)
			physical := oldID
			if tc.requestType == "Create" {
				physical = ""
			}

			a := e.invoke(t, context.Background(), event(e.cfn.URL, tc.requestType, tc.resourceType, physical))

			if a.Status != tc.wantStatus || a.PhysicalResourceId != tc.wantID || !strings.Contains(a.Reason, tc.wantReason) {
				t.Errorf("answer %s, want Status %s, PhysicalResourceId %q, Reason containing %q", a.Body, tc.wantStatus, tc.wantID, tc.wantReason)
			}
			if got := a.Data != nil; got != tc.wantData {
				t.Errorf("Data %v, want present: %v", a.Data, tc.wantData)
			}
			logs := e.log.String()
			for _, w := range []string{`"requestType":"` + tc.requestType + `"`, `"logicalResourceId":"AmiGrant"`, `"outcome":"` + tc.wantStatus + `"`, `"physicalResourceId":"` + tc.wantID + `"`} {
				if len(tc.wantID) < 100 && !strings.Contains(logs, w) {
					t.Errorf("log lacks %s:\n%s", w, logs)
				}
			}
		})
	}
}

func TestTimeoutWhenTheHandlerIgnoresItsContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := answering("", nil, nil)
	h.create = func(ctx context.Context, _ customresource.Request) (customresource.Result, error) {
		customresource.Waiting(ctx, "KMS CreateGrant on key-1 for role-1", func(err error) string { return "explained: " + err.Error() })
		customresource.RecordRetry(ctx, errors.New("InvalidArnException: no such principal"))
		<-release // ignores ctx
		return customresource.Result{PhysicalResourceID: "late"}, nil
	}
	e := newEnv(t, h)
	e.router.SafetyMargin = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()

	a := e.invoke(t, ctx, event(e.cfn.URL, "Create", "Custom::Thing", ""))

	want := "timed out waiting for KMS CreateGrant on key-1 for role-1: last error: explained: InvalidArnException: no such principal"
	if a.Status != "FAILED" || a.Reason != want || a.PhysicalResourceId != requestID {
		t.Errorf("answer %s, want FAILED %q", a.Body, want)
	}
}

func TestTimeoutWhenTheHandlerHonoursItsContext(t *testing.T) {
	h := answering("", nil, nil)
	h.delete = func(ctx context.Context, _ customresource.Request) error {
		customresource.Waiting(ctx, "KMS RevokeGrant of grant g on k", nil)
		<-ctx.Done()
		return fmt.Errorf("operation error KMS: RevokeGrant: %w", ctx.Err())
	}
	e := newEnv(t, h)
	e.router.SafetyMargin = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()

	a := e.invoke(t, ctx, event(e.cfn.URL, "Delete", "Custom::Thing", "old-id"))

	// The handler's own error may or may not make it into the answer,
	// depending on which the router sees first; the timeout is named.
	if a.Status != "FAILED" || !strings.HasPrefix(a.Reason, "timed out waiting for KMS RevokeGrant of grant g on k (no answer before the handler's deadline)") ||
		a.PhysicalResourceId != "old-id" {
		t.Errorf("answer %s", a.Body)
	}
}

func TestPanicAnswersFailedOnce(t *testing.T) {
	for _, requestType := range []string{"Create", "Update", "Delete"} {
		t.Run(requestType, func(t *testing.T) {
			h := handler{
				create: func(context.Context, customresource.Request) (customresource.Result, error) { panic("bug") },
				update: func(context.Context, customresource.Request) (customresource.Result, error) { panic("bug") },
				delete: func(context.Context, customresource.Request) error { panic("bug") },
			}
			e := newEnv(t, h)
			physical := "old-id"
			if requestType == "Create" {
				physical = ""
			}
			var recovered interface{}
			func() {
				defer func() { recovered = recover() }()
				_, _ = e.router.LambdaHandler()(context.Background(), event(e.cfn.URL, requestType, "Custom::Thing", physical))
			}()

			// The panic goes on to the Lambda runtime, which reports it.
			if recovered != "bug" {
				t.Errorf("recovered %v, want the handler's panic", recovered)
			}
			answers := e.cfn.Answers()
			if err := cfnresponse.Check(answers, cfnresponse.Request{StackId: stackID, RequestId: requestID, LogicalResourceId: "AmiGrant"}); err != nil {
				t.Fatal(err)
			}
			if a := answers[0]; a.Status != "FAILED" || !strings.Contains(a.Reason, "panicked") {
				t.Errorf("answer %s", a.Body)
			}
			if !strings.Contains(e.log.String(), `"panic":"bug"`) {
				t.Errorf("log lacks the panic:\n%s", e.log)
			}
		})
	}
}

func TestLongReasonIsCutToFit(t *testing.T) {
	long := "KMS said: " + strings.Repeat(`<&>"é\`+"\n", 2000)
	e := newEnv(t, answering("", nil, errors.New(long)))

	a := e.invoke(t, context.Background(), event(e.cfn.URL, "Update", "Custom::Thing", strings.Repeat("p", 1024)))

	if !strings.HasPrefix(a.Reason, "KMS said: <&>") || !strings.HasSuffix(a.Reason, "the full text is in the log]") {
		t.Errorf("Reason %q", a.Reason)
	}
	if len(a.Body) < 4000 {
		t.Errorf("body of %d bytes: the reason was cut more than needed", len(a.Body))
	}
	if n := strings.Count(e.log.String(), "é"); n < 2000 {
		t.Error("the log does not hold the full reason")
	}
}

func TestMalformedEventGetsAnAnswer(t *testing.T) {
	e := newEnv(t, answering("id", nil, nil))
	var ev map[string]interface{}
	_ = json.Unmarshal(event(e.cfn.URL, "Update", "Custom::Thing", "old-id"), &ev)
	ev["ResourceProperties"] = "not an object"
	raw, _ := json.Marshal(ev)

	a := e.invoke(t, context.Background(), raw)

	if a.Status != "FAILED" || !strings.Contains(a.Reason, "malformed CloudFormation event") || a.PhysicalResourceId != "old-id" {
		t.Errorf("answer %s", a.Body)
	}
}

func TestStackARN(t *testing.T) {
	a, err := customresource.Request{StackID: stackID}.StackARN()
	if err != nil || a.Partition != "aws" || a.Account != "222222222222" {
		t.Errorf("StackARN = %+v, %v", a, err)
	}
	if _, err := (customresource.Request{StackID: "arn:aws:s3:::bucket"}).StackARN(); err == nil || !strings.Contains(err.Error(), `StackId`) {
		t.Errorf("StackARN of an S3 ARN: %v", err)
	}
}

// eventEnv is a router with a Custom::Thing handler that fails the test if
// called, and an event handler for {"crossaccountami":"heal-grant"}.
func eventEnv(t *testing.T, h customresource.EventHandler) env {
	never := func(context.Context, customresource.Request) (customresource.Result, error) {
		t.Error("the CloudFormation handler was called")
		return customresource.Result{}, errors.New("no")
	}
	e := newEnv(t, handler{create: never, update: never, delete: func(context.Context, customresource.Request) error {
		t.Error("the CloudFormation handler was called")
		return nil
	}})
	e.router.HandleEvent("crossaccountami", "heal-grant", h)
	return e
}

func TestScheduledEventGoesToItsEventHandler(t *testing.T) {
	var got json.RawMessage
	e := eventEnv(t, func(ctx context.Context, raw json.RawMessage) (string, error) {
		got = raw
		customresource.Logger(ctx).Info("from the handler")
		return "grant present", nil
	})
	raw := json.RawMessage(`{"crossaccountami":"heal-grant","ResourceProperties":{"Name":"g"}}`)

	res, err := e.router.LambdaHandler()(context.Background(), raw)

	if err != nil || res != "grant present" || string(got) != string(raw) {
		t.Errorf("result %q, %v; the handler got %s", res, err, got)
	}
	if a := e.cfn.Answers(); len(a) != 0 {
		t.Errorf("CloudFormation answers %v, want none", a)
	}
	for _, w := range []string{`"msg":"from the handler","event":"heal-grant"`, `"outcome":"succeeded"`, `"result":"grant present"`} {
		if !strings.Contains(e.log.String(), w) {
			t.Errorf("log lacks %s:\n%s", w, e.log)
		}
	}
}

func TestEventHandlerErrorFailsTheInvocation(t *testing.T) {
	e := eventEnv(t, func(context.Context, json.RawMessage) (string, error) {
		return "", errors.New("KMS denied kms:ListRetirableGrants")
	})
	_, err := e.router.LambdaHandler()(context.Background(), json.RawMessage(`{"crossaccountami":"heal-grant"}`))
	if err == nil || err.Error() != "KMS denied kms:ListRetirableGrants" {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(e.log.String(), `"outcome":"failed"`) {
		t.Errorf("log:\n%s", e.log)
	}
}

func TestEventHandlerTimeoutNamesWhatItWaitedFor(t *testing.T) {
	e := eventEnv(t, func(ctx context.Context, _ json.RawMessage) (string, error) {
		customresource.Waiting(ctx, "KMS ListRetirableGrants of role-1", nil)
		<-ctx.Done()
		return "", fmt.Errorf("operation error KMS: ListRetirableGrants: %w", ctx.Err())
	})
	e.router.SafetyMargin = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()

	_, err := e.router.LambdaHandler()(ctx, json.RawMessage(`{"crossaccountami":"heal-grant"}`))

	// The internal deadline passes before Lambda's: the handler returns,
	// and the invocation fails naming the call.
	if err == nil || !strings.HasPrefix(err.Error(), "timed out waiting for KMS ListRetirableGrants of role-1 (no answer before the handler's deadline) (operation error KMS") ||
		!errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Errorf("error %v (Lambda's context: %v)", err, ctx.Err())
	}
}

func TestUnknownEventIsAnErrorNamingIt(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
	}{
		{"an EventBridge scheduled event without Input", `{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events","account":"222222222222","time":"2026-11-28T09:30:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:222222222222:rule/r"],"detail":{}}`},
		{"another kind", `{"crossaccountami":"heal-everything"}`},
		{"the kind as a number", `{"crossaccountami":7}`},
		{"not an object", `"heal-grant"`},
		{"long", `{"detail":"` + strings.Repeat("x", 2000) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := eventEnv(t, func(context.Context, json.RawMessage) (string, error) {
				t.Error("the event handler was called")
				return "", nil
			})

			_, err := e.router.LambdaHandler()(context.Background(), json.RawMessage(tc.raw))

			want := tc.raw
			if len(want) > 512 {
				want = fmt.Sprintf("%s... (%d bytes)", want[:512], len(tc.raw))
			}
			if err == nil || !strings.HasPrefix(err.Error(), "unknown event: not a CloudFormation custom resource event (it has no RequestType and no ResponseURL) and not of a kind this function serves (\"crossaccountami\":\"heal-grant\"); received ") ||
				!strings.HasSuffix(err.Error(), want) {
				t.Errorf("error %v", err)
			}
			if a := e.cfn.Answers(); len(a) != 0 {
				t.Errorf("CloudFormation answers %v, want none", a)
			}
		})
	}
}

func TestCloudFormationEventWithAKindMemberIsStillCloudFormations(t *testing.T) {
	e := newEnv(t, answering("id", nil, nil))
	e.router.HandleEvent("crossaccountami", "heal-grant", func(context.Context, json.RawMessage) (string, error) {
		t.Error("the event handler was called")
		return "", nil
	})
	var ev map[string]interface{}
	_ = json.Unmarshal(event(e.cfn.URL, "Create", "Custom::Thing", ""), &ev)
	ev["crossaccountami"] = "heal-grant"
	raw, _ := json.Marshal(ev)

	if a := e.invoke(t, context.Background(), raw); a.Status != "SUCCESS" || a.PhysicalResourceId != "id" {
		t.Errorf("answer %s", a.Body)
	}
}

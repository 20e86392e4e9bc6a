package customresource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
)

// handOverFailedID is the physical id the tests' hand-overs name for a
// FAILED answer (as a copy's continuation names its pending id).
const handOverFailedID = "pending-copy/ca0123456789abcdef0123456789abcdef"

// handOver is a hand-over payload of the tests: the CloudFormation event it
// carries, under "event", and the physical id of its FAILED answer.
func handOver(t *testing.T, ev json.RawMessage) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(map[string]interface{}{"crossaccountami": "test-continuation", "event": ev, "failedId": handOverFailedID})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func handOverEvent(raw json.RawMessage) (cfn.Event, string, error) {
	var p struct {
		Event    cfn.Event
		FailedID string `json:"failedId"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.Event.RequestType == "" {
		return cfn.Event{}, "", errors.New("no event in the hand-over")
	}
	return p.Event, p.FailedID, nil
}

// selfEnv is a router with Custom::Copy served by h, for CloudFormation's
// events and for hand-overs.
func selfEnv(t *testing.T, h customresource.SelfAnsweringHandler) env {
	r := customresource.NewRouter()
	var buf bytes.Buffer
	r.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	r.Handle("Custom::Thing", answering("thing", nil, nil))
	r.HandleSelfAnswering("Custom::Copy", h)
	r.HandleSelfAnsweringEvent("crossaccountami", "test-continuation", handOverEvent, h)
	return env{router: r, cfn: cfnresponse.Start(t), log: &buf}
}

// A self-answering handler's events reach it, CloudFormation's and the
// hand-overs alike, with the Lambda deadline (not the router's earlier
// one); the router sends nothing itself, and the handler's result is the
// invocation's.
func TestSelfAnsweringHandlerAnswersItself(t *testing.T) {
	var got []string
	var deadlines []time.Time
	e := selfEnv(t, func(ctx context.Context, ev cfn.Event, raw json.RawMessage) (string, error) {
		got = append(got, string(ev.RequestType)+" "+ev.RequestID)
		d, _ := ctx.Deadline()
		deadlines = append(deadlines, d)
		return "handed over", nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lambdaDeadline, _ := ctx.Deadline()
	ev := event(e.cfn.URL, "Create", "Custom::Copy", "")

	for _, raw := range []json.RawMessage{ev, handOver(t, ev)} {
		res, err := e.router.LambdaHandler()(ctx, raw)
		if err != nil || res != "handed over" {
			t.Errorf("invocation: %q, %v; want the handler's result", res, err)
		}
	}

	if want := "Create " + requestID; len(got) != 2 || got[0] != want || got[1] != want {
		t.Errorf("the handler saw %q, want the Create twice", got)
	}
	for _, d := range deadlines {
		if !d.Equal(lambdaDeadline) {
			t.Errorf("the handler's deadline %s, want the Lambda deadline %s", d, lambdaDeadline)
		}
	}
	if a := e.cfn.Answers(); len(a) != 0 {
		t.Errorf("the router answered %d times, want never", len(a))
	}
	if types := e.router.ResourceTypes(); strings.Join(types, " ") != "Custom::Copy Custom::Thing" {
		t.Errorf("ResourceTypes %v", types)
	}
}

// A panic before the handler settled the request is answered FAILED once,
// with the request id on Create (for a hand-over, the physical id it
// names: a copy's pending id, which leads the Delete to the copy), and
// goes on to the runtime; after Settled
// (the handler answered or handed over) nothing more is sent.
func TestSelfAnsweringPanicIsAnsweredOnlyBeforeSettled(t *testing.T) {
	for _, tc := range []struct {
		name       string
		settle     bool
		handOver   bool
		wantAnswer bool
	}{
		{"before settled", false, false, true},
		{"before settled, in a hand-over", false, true, true},
		{"after settled", true, false, false},
		{"after settled, in a hand-over", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := selfEnv(t, func(ctx context.Context, ev cfn.Event, raw json.RawMessage) (string, error) {
				if tc.settle {
					customresource.Settled(ctx)
				}
				panic("bug")
			})
			raw := event(e.cfn.URL, "Create", "Custom::Copy", "")
			if tc.handOver {
				raw = handOver(t, raw)
			}
			var recovered interface{}
			func() {
				defer func() { recovered = recover() }()
				_, _ = e.router.LambdaHandler()(context.Background(), raw)
			}()

			if recovered != "bug" {
				t.Errorf("recovered %v, want the handler's panic", recovered)
			}
			answers := e.cfn.Answers()
			if !tc.wantAnswer {
				if len(answers) != 0 {
					t.Errorf("answers %d, want none after Settled", len(answers))
				}
				return
			}
			if err := cfnresponse.Check(answers, cfnresponse.Request{StackId: stackID, RequestId: requestID, LogicalResourceId: "AmiGrant"}); err != nil {
				t.Fatal(err)
			}
			wantID := requestID
			if tc.handOver {
				wantID = handOverFailedID
			}
			if a := answers[0]; a.Status != "FAILED" || a.PhysicalResourceId != wantID || !strings.Contains(a.Reason, "the Custom::Copy Create handler panicked: bug") {
				t.Errorf("answer %s", a.Body)
			}
		})
	}
}

// A request whose response URL expired is refused before the handler is
// called, whether CloudFormation delivers it late or a hand-over carries
// it; a hand-over that carries no readable event fails the invocation.
func TestSelfAnsweringExpiredURLIsRefused(t *testing.T) {
	e := selfEnv(t, func(context.Context, cfn.Event, json.RawMessage) (string, error) {
		t.Error("the handler was called")
		return "", nil
	})
	e.router.Now = func() time.Time { return signedAt.Add(3 * time.Hour) }
	ev := withURL(t, event(e.cfn.URL, "Create", "Custom::Copy", ""), cfnresponse.PresignedURL(e.cfn.URL, signedAt, 2*time.Hour))

	for _, raw := range []json.RawMessage{ev, handOver(t, ev)} {
		_, err := e.router.LambdaHandler()(context.Background(), raw)
		var expired *customresource.ResponseURLExpiredError
		if !errors.As(err, &expired) {
			t.Errorf("invocation error %v, want a ResponseURLExpiredError", err)
		}
	}
	if _, err := e.router.LambdaHandler()(context.Background(), json.RawMessage(`{"crossaccountami":"test-continuation"}`)); err == nil || !strings.Contains(err.Error(), "no event in the hand-over") {
		t.Errorf("a hand-over without its event: %v", err)
	}
	if a := e.cfn.Answers(); len(a) != 0 {
		t.Errorf("answers %d, want none", len(a))
	}
}

// Serve (the cfn.CustomResourceFunction form, which answers through
// LambdaWrap) cannot serve a self-answering type, and says so; a malformed
// event of that type still gets the router's FAILED answer.
func TestSelfAnsweringTypeThroughServeAndMalformed(t *testing.T) {
	e := selfEnv(t, func(context.Context, cfn.Event, json.RawMessage) (string, error) {
		t.Error("the handler was called")
		return "", nil
	})
	_, _, err := e.router.Serve(context.Background(), cfn.Event{RequestType: cfn.RequestCreate, ResourceType: "Custom::Copy", RequestID: requestID, ResponseURL: e.cfn.URL + "/x"})
	if err == nil || !strings.Contains(err.Error(), "Custom::Copy answers its requests itself") {
		t.Errorf("Serve: %v", err)
	}
	var ev map[string]interface{}
	_ = json.Unmarshal(event(e.cfn.URL, "Create", "Custom::Copy", ""), &ev)
	ev["ResourceProperties"] = "not an object"
	raw, _ := json.Marshal(ev)
	if a := e.invoke(t, context.Background(), raw); a.Status != "FAILED" || !strings.Contains(a.Reason, "malformed CloudFormation event") {
		t.Errorf("malformed: %s", a.Body)
	}
}

func TestSelfAnsweringTypeRegisteredTwicePanics(t *testing.T) {
	r := customresource.NewRouter()
	r.Handle("Custom::Thing", answering("thing", nil, nil))
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "Custom::Thing is already registered") {
			t.Errorf("recovered %v", v)
		}
	}()
	r.HandleSelfAnswering("Custom::Thing", func(context.Context, cfn.Event, json.RawMessage) (string, error) { return "", nil })
}

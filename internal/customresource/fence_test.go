package customresource_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
)

// signedAt is when CloudFormation signed the response URLs of these tests;
// the router's clock (Router.Now) is set relative to it.
var signedAt = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

// withURL is event with its ResponseURL replaced.
func withURL(t *testing.T, raw json.RawMessage, responseURL string) json.RawMessage {
	t.Helper()
	var ev map[string]interface{}
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev["ResponseURL"] = responseURL
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// refusing is a handler that fails the test if any of its methods is called.
func refusing(t *testing.T) handler {
	never := func(context.Context, customresource.Request) (customresource.Result, error) {
		t.Error("the handler was called")
		return customresource.Result{PhysicalResourceID: "acted"}, nil
	}
	return handler{create: never, update: never, delete: func(context.Context, customresource.Request) error {
		t.Error("the handler was called")
		return nil
	}}
}

func TestExpiredResponseURLIsNeitherServedNorAnswered(t *testing.T) {
	twoHours := signedAt.Add(2 * time.Hour)
	for _, tc := range []struct {
		name        string
		requestType string
		url         func(base string) string
		now         time.Time
		expiredAt   time.Time
	}{
		{"SigV4, an hour after expiry", "Create", func(b string) string { return cfnresponse.PresignedURL(b, signedAt, 2*time.Hour) }, signedAt.Add(3 * time.Hour), twoHours},
		{"SigV4, at the second of expiry", "Create", func(b string) string { return cfnresponse.PresignedURL(b, signedAt, 2*time.Hour) }, twoHours, twoHours},
		{"SigV4, a Delete", "Delete", func(b string) string { return cfnresponse.PresignedURL(b, signedAt, 2*time.Hour) }, twoHours.Add(time.Second), twoHours},
		{"SigV2 Expires", "Update", func(b string) string {
			return b + "/cfn-response?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=" + strconv.FormatInt(twoHours.Unix(), 10) + "&Signature=vjSAMPLENmGa%2ByT272YEAiv4%3D"
		}, twoHours.Add(time.Minute), twoHours},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, refusing(t))
			e.router.Now = func() time.Time { return tc.now }
			physical := "old-id"
			if tc.requestType == "Create" {
				physical = ""
			}
			raw := withURL(t, event(e.cfn.URL, tc.requestType, "Custom::Thing", physical), tc.url(e.cfn.URL))

			_, err := e.router.LambdaHandler()(context.Background(), raw)

			// The invocation fails (Lambda counts it in Errors), saying why.
			var expired *customresource.ResponseURLExpiredError
			if !errors.As(err, &expired) {
				t.Fatalf("invocation error %v, want a ResponseURLExpiredError", err)
			}
			if !expired.ExpiredAt.Equal(tc.expiredAt) || !expired.ReceivedAt.Equal(tc.now) || expired.RequestID != requestID || expired.LogicalResourceID != "AmiGrant" {
				t.Errorf("error %+v, want expired at %s, received at %s", expired, tc.expiredAt, tc.now)
			}
			for _, w := range []string{"expired at " + tc.expiredAt.Format(time.RFC3339), "request " + requestID, "AmiGrant"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// Nothing is PUT: CloudFormation stopped reading long ago, and S3
			// refuses an expired URL.
			if a := e.cfn.Answers(); len(a) != 0 {
				t.Errorf("answers %q, want none", a)
			}
			logs := e.log.String()
			for _, w := range []string{`"level":"ERROR"`, `"msg":"response URL expired`, `"receivedAt":"` + tc.now.Format(time.RFC3339Nano) + `"`,
				`"expiredAt":"` + tc.expiredAt.Format(time.RFC3339Nano) + `"`, `"requestId":"` + requestID + `"`, `"logicalResourceId":"AmiGrant"`} {
				if !strings.Contains(logs, w) {
					t.Errorf("log lacks %s:\n%s", w, logs)
				}
			}
		})
	}
}

// The internal deadline is the response URL's expiry minus the margin when
// that comes before the Lambda deadline minus the margin.
func TestDeadlineEndsBeforeTheResponseURLExpires(t *testing.T) {
	var deadline time.Time
	h := answering("", nil, nil)
	h.create = func(ctx context.Context, _ customresource.Request) (customresource.Result, error) {
		deadline, _ = ctx.Deadline()
		customresource.Waiting(ctx, "KMS CreateGrant on key-1 for role-1", nil)
		<-ctx.Done()
		return customresource.Result{}, ctx.Err()
	}
	e := newEnv(t, h)
	e.router.SafetyMargin = 100 * time.Millisecond
	// The URL expires one second after the event arrives; Lambda would
	// let the function run five.
	e.router.Now = func() time.Time { return signedAt.Add(2*time.Hour - time.Second) }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw := withURL(t, event(e.cfn.URL, "Create", "Custom::Thing", ""), cfnresponse.PresignedURL(e.cfn.URL, signedAt, 2*time.Hour))

	start := time.Now()
	a := e.invoke(t, ctx, raw)

	if want := start.Add(900 * time.Millisecond); deadline.Before(want) || deadline.After(want.Add(200*time.Millisecond)) {
		t.Errorf("the handler's deadline is %s after the start, want 900ms (the URL's expiry minus the margin)", deadline.Sub(start))
	}
	if a.Status != "FAILED" || !strings.HasPrefix(a.Reason, "timed out waiting for KMS CreateGrant on key-1 for role-1") || a.PhysicalResourceId != requestID {
		t.Errorf("answer %s", a.Body)
	}
}

// A URL that expires within the margin leaves no time to act and answer:
// the handler is not called, and the answer (which may still land) says why.
func TestResponseURLAboutToExpireIsAnsweredWithoutActing(t *testing.T) {
	e := newEnv(t, refusing(t))
	e.router.SafetyMargin = 20 * time.Second
	now := signedAt.Add(2*time.Hour - 5*time.Second)
	e.router.Now = func() time.Time { return now }
	raw := withURL(t, event(e.cfn.URL, "Create", "Custom::Thing", ""), cfnresponse.PresignedURL(e.cfn.URL, signedAt, 2*time.Hour))

	a := e.invoke(t, context.Background(), raw)

	want := "the response URL expires at 2026-11-28T11:30:00Z, 5s after the request arrived; the handler needs 20s to act and answer, so it did not act"
	if a.Status != "FAILED" || a.Reason != want || a.PhysicalResourceId != requestID {
		t.Errorf("answer %s, want FAILED %q", a.Body, want)
	}
}

func TestFreshResponseURLIsServed(t *testing.T) {
	e := newEnv(t, answering("id", nil, nil))
	e.router.Now = func() time.Time { return signedAt.Add(time.Minute) }
	raw := withURL(t, event(e.cfn.URL, "Create", "Custom::Thing", ""), cfnresponse.PresignedURL(e.cfn.URL, signedAt, 2*time.Hour))

	a := e.invoke(t, context.Background(), raw)

	if a.Status != "SUCCESS" || a.PhysicalResourceId != "id" {
		t.Errorf("answer %s", a.Body)
	}
	if strings.Contains(e.log.String(), `"level":"WARN"`) {
		t.Errorf("a warning for a URL with a known expiry:\n%s", e.log)
	}
}

// A URL whose expiry cannot be read is served, with a warning that names
// what was missing (see responseWindow for why serving is the choice).
func TestResponseURLWithoutAnExpiryIsServedWithAWarning(t *testing.T) {
	for _, tc := range []struct{ name, query, why string }{
		{"no query", "", "no X-Amz-Date with X-Amz-Expires (Signature Version 4) and no Expires (Signature Version 2)"},
		{"SigV4 without X-Amz-Expires", "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261128T093000Z&X-Amz-Signature=abc", "X-Amz-Date without X-Amz-Expires"},
		{"X-Amz-Date not a date", "?X-Amz-Date=yesterday&X-Amz-Expires=7200", `X-Amz-Date: expected yyyyMMddTHHmmssZ, got "yesterday"`},
		{"X-Amz-Expires not a number", "?X-Amz-Date=20261128T093000Z&X-Amz-Expires=2h", `X-Amz-Expires: expected 1 to 604800 seconds, got "2h"`},
		{"X-Amz-Expires beyond S3's week", "?X-Amz-Date=20261128T093000Z&X-Amz-Expires=604801", `X-Amz-Expires: expected 1 to 604800 seconds, got "604801"`},
		{"Expires not a number", "?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=tomorrow&Signature=abc", `Expires: expected seconds since 1970-01-01 UTC, got "tomorrow"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, answering("id", nil, nil))
			e.router.Now = func() time.Time { return signedAt.Add(3 * time.Hour) }
			raw := withURL(t, event(e.cfn.URL, "Create", "Custom::Thing", ""), e.cfn.URL+"/cfn-response"+tc.query)

			a := e.invoke(t, context.Background(), raw)

			if a.Status != "SUCCESS" || a.PhysicalResourceId != "id" {
				t.Errorf("answer %s", a.Body)
			}
			why, _ := json.Marshal(tc.why)
			logs := e.log.String()
			for _, w := range []string{`"level":"WARN","msg":"the response URL has no expiry this handler recognises; serving the request without that bound"`, `"why":` + string(why), `"requestId":"` + requestID + `"`} {
				if !strings.Contains(logs, w) {
					t.Errorf("log lacks %s:\n%s", w, logs)
				}
			}
			// The URL is a credential (anyone holding it may answer): the
			// log names its host, never its query.
			if strings.Contains(logs, "Signature=") || strings.Contains(logs, "X-Amz-Date=") {
				t.Errorf("the log quotes the URL's query:\n%s", logs)
			}
		})
	}
}

// Every FAILED answer to a Create after the handler recorded a pending id
// carries it, whatever made the Create fail.
func TestFailedCreateAnswersItsPendingID(t *testing.T) {
	const pending = "pending|key-1|grant-name"
	for _, tc := range []struct {
		name      string
		after     func(ctx context.Context) (customresource.Result, error)
		wantPanic bool
		reason    string
	}{
		{"error", func(context.Context) (customresource.Result, error) {
			return customresource.Result{}, errors.New("KMS CreateGrant failed: boom")
		}, false, "KMS CreateGrant failed: boom"},
		{"timeout", func(ctx context.Context) (customresource.Result, error) {
			<-ctx.Done()
			return customresource.Result{}, ctx.Err()
		}, false, "timed out waiting for"},
		{"answer too large", func(context.Context) (customresource.Result, error) {
			return customresource.Result{PhysicalResourceID: "id", Data: map[string]interface{}{"Big": strings.Repeat("x", 5000)}}, nil
		}, false, "CloudFormation accepts less than 4096"},
		{"panic", func(context.Context) (customresource.Result, error) { panic("bug") }, true, "the Custom::Thing Create handler panicked: bug"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := answering("", nil, nil)
			h.create = func(ctx context.Context, _ customresource.Request) (customresource.Result, error) {
				customresource.FailurePhysicalID(ctx, pending)
				return tc.after(ctx)
			}
			e := newEnv(t, h)
			e.router.SafetyMargin = 100 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()

			var recovered interface{}
			func() {
				defer func() { recovered = recover() }()
				_, _ = e.router.LambdaHandler()(ctx, event(e.cfn.URL, "Create", "Custom::Thing", ""))
			}()

			answers := e.cfn.Answers()
			if err := cfnresponse.Check(answers, cfnresponse.Request{StackId: stackID, RequestId: requestID, LogicalResourceId: "AmiGrant"}); err != nil {
				t.Fatal(err)
			}
			if a := answers[0]; a.Status != "FAILED" || a.PhysicalResourceId != pending || !strings.Contains(a.Reason, tc.reason) {
				t.Errorf("answer %s, want FAILED with PhysicalResourceId %q and a Reason containing %q", a.Body, pending, tc.reason)
			}
			// A panic still reaches the Lambda runtime (which reports it and
			// restarts the process), after the one answer.
			if tc.wantPanic != (recovered != nil) || (tc.wantPanic && recovered != "bug") {
				t.Errorf("recovered %v, want the handler's panic: %v", recovered, tc.wantPanic)
			}
			if tc.wantPanic {
				logs := e.log.String()
				for _, w := range []string{`"msg":"handler panicked"`, `"panic":"bug"`, `"stack":"goroutine `, `fence_test.go`, `"physicalResourceId":"` + pending + `"`} {
					if !strings.Contains(logs, w) {
						t.Errorf("log lacks %s:\n%s", w, logs)
					}
				}
			}
		})
	}
}

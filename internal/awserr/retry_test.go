package awserr_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/testenv/fakekms"
)

const keyARN = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

type retries struct {
	mu    sync.Mutex
	codes []string
}

func (r *retries) record(_ context.Context, err error) {
	var ae smithy.APIError
	code := "?"
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes = append(r.codes, code)
}

// client is a real KMS client against the fake, with the retryer under test
// (short delays, so the tests do not wait).
func client(t *testing.T, srv *fakekms.Server, r *retries) *kms.Client {
	t.Helper()
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		Retryer: awserr.NewRetryer(awserr.RetryOptions{
			BaseDelay: time.Millisecond, MaxBackoff: 5 * time.Millisecond, OnRetry: r.record,
		}),
	})
}

func createGrant(ctx context.Context, c *kms.Client) (*kms.CreateGrantOutput, error) {
	return c.CreateGrant(ctx, grantInput())
}

func TestRetried(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
		times  int
	}{
		{"InvalidArnException", 400, 3},
		{"DependencyTimeoutException", 500, 2},
		{"KMSInternalException", 500, 2},
		{"ThrottlingException", 400, 2},
		// More retries than the SDK's default retry quota (500 tokens, 14 a
		// retry) allows: ratelimit.None keeps retrying.
		{"InvalidArnException", 400, 60},
	} {
		t.Run(tc.code, func(t *testing.T) {
			srv := fakekms.Start(t)
			srv.AddKey(keyARN, fakekms.Enabled)
			srv.Inject("CreateGrant", fakekms.Fault{Code: tc.code, Status: tc.status, Message: "not yet", Times: tc.times})
			var r retries

			out, err := createGrant(context.Background(), client(t, srv, &r))

			if err != nil {
				t.Fatalf("CreateGrant failed after %d faults: %v", tc.times, err)
			}
			if len(aws.ToString(out.GrantId)) != 64 {
				t.Errorf("GrantId %q", aws.ToString(out.GrantId))
			}
			if got := len(srv.Calls()); got != tc.times+1 {
				t.Errorf("%d calls, want %d", got, tc.times+1)
			}
			if want := slices.Repeat([]string{tc.code}, tc.times); !slices.Equal(r.codes, want) {
				t.Errorf("recorded retries %v, want %v", r.codes, want)
			}
		})
	}
}

func TestNotRetried(t *testing.T) {
	for _, code := range []string{"LimitExceededException", "NotFoundException", "AccessDeniedException", "DisabledException"} {
		t.Run(code, func(t *testing.T) {
			srv := fakekms.Start(t)
			srv.AddKey(keyARN, fakekms.Enabled)
			srv.Inject("CreateGrant", fakekms.Fault{Code: code, Message: "no"})
			var r retries

			_, err := createGrant(context.Background(), client(t, srv, &r))

			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != code {
				t.Errorf("error %v, want %s", err, code)
			}
			if got := len(srv.Calls()); got != 1 {
				t.Errorf("%d calls, want 1", got)
			}
		})
	}
}

func TestRetriesStopAtTheDeadline(t *testing.T) {
	srv := fakekms.Start(t)
	srv.AddKey(keyARN, fakekms.Enabled)
	srv.Inject("CreateGrant", fakekms.Fault{Code: "InvalidArnException", Message: "no such principal"})
	var r retries
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	_, err := createGrant(ctx, client(t, srv, &r))

	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("error %v, want the deadline", err)
	}
	if len(r.codes) < 2 || r.codes[len(r.codes)-1] != "InvalidArnException" {
		t.Errorf("recorded retries %v, want InvalidArnException retried", r.codes)
	}
}

func TestDefaults(t *testing.T) {
	r := awserr.NewRetryer(awserr.RetryOptions{})
	if r.MaxAttempts() != awserr.DefaultMaxAttempts {
		t.Errorf("MaxAttempts %d", r.MaxAttempts())
	}
	for attempt := 1; attempt < 30; attempt++ {
		d, err := r.RetryDelay(attempt, &types.InvalidArnException{})
		if err != nil || d < 0 || d > awserr.DefaultMaxBackoff {
			t.Fatalf("RetryDelay(%d) = %v, %v; want within [0, %v]", attempt, d, err, awserr.DefaultMaxBackoff)
		}
	}
}

func TestRetryCodesUntil(t *testing.T) {
	denied := fakekms.Fault{Code: "AccessDeniedException", Message: "not yet", Times: 3}
	withUntil := func(until time.Time) func(*kms.Options) {
		return func(o *kms.Options) {
			o.Retryer = awserr.RetryCodesUntil(o.Retryer, until, "AccessDeniedException")
		}
	}
	t.Run("retried while the window is open", func(t *testing.T) {
		// GIVEN KMS that denies CreateGrant three times (a policy propagating)
		srv := fakekms.Start(t)
		srv.AddKey(keyARN, fakekms.Enabled)
		srv.Inject("CreateGrant", denied)
		r := &retries{}
		// WHEN CreateGrant runs with the denial retried for a minute
		out, err := client(t, srv, r).CreateGrant(context.Background(), grantInput(), withUntil(time.Now().Add(time.Minute)))
		// THEN it succeeds on the fourth attempt, and each retry was reported
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.GrantId) == "" || !slices.Equal(r.codes, []string{"AccessDeniedException", "AccessDeniedException", "AccessDeniedException"}) {
			t.Errorf("grant %q, retries %v", aws.ToString(out.GrantId), r.codes)
		}
	})
	t.Run("final once the window has closed", func(t *testing.T) {
		// GIVEN the same denials, and a window that has closed
		srv := fakekms.Start(t)
		srv.AddKey(keyARN, fakekms.Enabled)
		srv.Inject("CreateGrant", denied)
		r := &retries{}
		// WHEN CreateGrant runs
		_, err := client(t, srv, r).CreateGrant(context.Background(), grantInput(), withUntil(time.Now().Add(-time.Second)))
		// THEN the first denial is the answer: one call, no retry
		if !strings.Contains(fmt.Sprint(err), "AccessDeniedException") || len(srv.Calls()) != 1 || len(r.codes) != 0 {
			t.Errorf("err %v, calls %v, retries %v", err, srv.Calls(), r.codes)
		}
	})
	t.Run("other calls keep the plain rules", func(t *testing.T) {
		// GIVEN the denials, and a call without the option
		srv := fakekms.Start(t)
		srv.AddKey(keyARN, fakekms.Enabled)
		srv.Inject("CreateGrant", denied)
		// WHEN CreateGrant runs
		_, err := client(t, srv, &retries{}).CreateGrant(context.Background(), grantInput())
		// THEN a denial is final
		if !strings.Contains(fmt.Sprint(err), "AccessDeniedException") || len(srv.Calls()) != 1 {
			t.Errorf("err %v, calls %v", err, srv.Calls())
		}
	})
}

func grantInput() *kms.CreateGrantInput {
	return &kms.CreateGrantInput{
		KeyId: aws.String(keyARN), GranteePrincipal: aws.String("arn:aws:iam::222222222222:role/r"),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}, Name: aws.String("n"),
	}
}

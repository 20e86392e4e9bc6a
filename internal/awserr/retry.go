package awserr

// Retries. The AWS SDK's standard retryer is configured for handlers that
// must keep trying until their deadline rather than give up after three
// attempts: KMS answers InvalidArnException while a new IAM principal
// propagates, and that can last minutes.
//
// No retry loop is written here: the SDK's retry middleware does the work;
// this file only chooses what is retried, how long to back off, and reports
// each retried error so a timeout can say what went wrong last.

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// RetryableCodes are error codes retried beyond the SDK's defaults
// (throttling, HTTP 5xx, connection errors, which the standard retryer
// already retries).
var RetryableCodes = []string{
	"InvalidArnException",        // a new grantee or retiring principal is not visible to KMS yet
	"DependencyTimeoutException", // KMS: a dependency did not answer in time
	"KMSInternalException",       // KMS: internal error
}

// NotRetriedCodes are never retried, although the SDK counts them as
// throttling: for KMS, LimitExceededException means a quota (grants per key
// or per principal) is full, and waiting does not empty it.
var NotRetriedCodes = []string{"LimitExceededException"}

// RetryOptions of the retryer. The zero value means the defaults.
type RetryOptions struct {
	// MaxAttempts bounds the attempts of one call. Default: 1000, so that in
	// practice the context deadline is what ends the retries.
	MaxAttempts int
	// BaseDelay is the first backoff (doubled on each retry, with full
	// jitter). Default: 100 ms. Throttling errors start at 1 s (the SDK's rule).
	BaseDelay time.Duration
	// MaxBackoff caps one backoff. Default: 10 s.
	MaxBackoff time.Duration
	// OnRetry, when set, is called with each error that is about to be
	// retried and the context of the call (customresource.RecordRetry).
	OnRetry func(ctx context.Context, err error)
}

// Defaults.
const (
	DefaultMaxAttempts = 1000
	DefaultBaseDelay   = 100 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
)

// NewRetryer returns a retryer for aws.Config.Retryer (config.WithRetryer):
// retry.NewStandard with the extra RetryableCodes, capped exponential
// backoff with full jitter, and no retry quota (ratelimit.None), so a burst
// of errors never stops the retries before the deadline does.
func NewRetryer(o RetryOptions) aws.RetryerV2 {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = DefaultBaseDelay
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	std := retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		so.MaxBackoff = o.MaxBackoff
		so.BaseDelay = o.BaseDelay
		so.RateLimiter = ratelimit.None
		// IsErrorRetryables takes the first definite answer, so the
		// exclusions go first.
		so.Retryables = append([]retry.IsErrorRetryable{notRetried{}}, so.Retryables...)
		so.Retryables = append(so.Retryables, retry.RetryableErrorCode{Codes: codeSet(RetryableCodes)})
	})
	return &recording{Standard: std, onRetry: o.OnRetry}
}

type notRetried struct{}

func (notRetried) IsErrorRetryable(err error) aws.Ternary {
	if (retry.RetryableErrorCode{Codes: codeSet(NotRetriedCodes)}).IsErrorRetryable(err) == aws.TrueTernary {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

func codeSet(codes []string) map[string]struct{} {
	m := make(map[string]struct{}, len(codes))
	for _, c := range codes {
		m[c] = struct{}{}
	}
	return m
}

// recording reports every retried error. The retry middleware asks for a
// retry token exactly when it has decided to retry an attempt's error.
type recording struct {
	*retry.Standard
	onRetry func(context.Context, error)
}

func (r *recording) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	if r.onRetry != nil {
		r.onRetry(ctx, opErr)
	}
	return r.Standard.GetRetryToken(ctx, opErr)
}

// RetryCodesUntil returns r, retrying also the errors with one of codes, but
// only until the time until. It is for errors that are final in general but
// expected for a while in one situation: KMS answers AccessDeniedException
// to CreateGrant until a key policy or IAM policy written moments earlier
// has propagated, and a policy that is really wrong should still fail, just
// later. Use it per call: client.CreateGrant(ctx, in, func(o *kms.Options) {
// o.Retryer = awserr.RetryCodesUntil(o.Retryer, until, "AccessDeniedException") }).
func RetryCodesUntil(r aws.Retryer, until time.Time, codes ...string) aws.Retryer {
	return &retryUntil{Retryer: r, until: until, codes: codeSet(codes)}
}

type retryUntil struct {
	aws.Retryer
	until time.Time
	codes map[string]struct{}
}

func (r *retryUntil) IsErrorRetryable(err error) bool {
	if time.Now().Before(r.until) && (retry.RetryableErrorCode{Codes: r.codes}).IsErrorRetryable(err) == aws.TrueTernary {
		return true
	}
	return r.Retryer.IsErrorRetryable(err)
}

// GetAttemptToken keeps the RetryerV2 behaviour of the wrapped retryer.
func (r *retryUntil) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.GetInitialToken(), nil
}

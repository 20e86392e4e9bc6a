package customresource

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// CloudFormation's ResponseURL is a pre-signed S3 PUT URL ("CloudFormation
// custom resource request and response reference",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref.html).
// S3 documents two query forms that carry its expiry:
//   - Signature Version 4: X-Amz-Date (yyyyMMddTHHmmssZ, UTC), the signing
//     time, and X-Amz-Expires, the seconds it stays valid, 1 to 604800
//     (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html);
//     CloudFormation's URLs have this form today, with X-Amz-Expires=7200.
//   - Signature Version 2: Expires, in seconds since 1970-01-01 UTC
//     (https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html,
//     "Query string request authentication alternative").
const (
	sigV4DateLayout = "20060102T150405Z"
	maxSigV4Expires = 604800 // seven days, S3's limit on a pre-signed URL
)

// errNoExpiry says that a URL carries neither form.
var errNoExpiry = errors.New("no X-Amz-Date with X-Amz-Expires (Signature Version 4) and no Expires (Signature Version 2)")

// ResponseURLExpiry returns the instant from which S3 refuses a PUT to the
// pre-signed URL raw (either form), or why it cannot tell.
func ResponseURLExpiry(raw string) (time.Time, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("not a URL: %v", err)
	}
	q := u.Query()
	date, expires := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires")
	switch {
	case date != "" && expires != "":
		signed, err := time.Parse(sigV4DateLayout, date)
		if err != nil {
			return time.Time{}, fmt.Errorf("X-Amz-Date: expected yyyyMMddTHHmmssZ, got %q", date)
		}
		secs, err := strconv.Atoi(expires)
		if err != nil || secs < 1 || secs > maxSigV4Expires {
			return time.Time{}, fmt.Errorf("X-Amz-Expires: expected 1 to %d seconds, got %q", maxSigV4Expires, expires)
		}
		return signed.Add(time.Duration(secs) * time.Second), nil
	case date != "":
		return time.Time{}, errors.New("X-Amz-Date without X-Amz-Expires")
	case expires != "":
		return time.Time{}, errors.New("X-Amz-Expires without X-Amz-Date")
	case q.Has("Expires"):
		v := q.Get("Expires")
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs < 0 {
			return time.Time{}, fmt.Errorf("Expires: expected seconds since 1970-01-01 UTC, got %q", v)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Time{}, errNoExpiry
}

// ResponseURLSignedAt returns when the pre-signed URL raw was signed (its
// Signature Version 4 X-Amz-Date), or ok false when it has none that
// parses. Signature Version 2 URLs carry no signing time.
func ResponseURLSignedAt(raw string) (signed time.Time, ok bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(sigV4DateLayout, u.Query().Get("X-Amz-Date"))
	return t, err == nil
}

// ResponseURLExpiredError is the invocation's error when an event arrives
// after its response URL expired: CloudFormation stopped waiting for the
// answer (its ServiceTimeout is shorter than the URL's life), and may
// already have sent the rollback's requests, so acting now would create
// what nothing will remove. The handler was not called and nothing was
// sent.
type ResponseURLExpiredError struct {
	ReceivedAt, ExpiredAt        time.Time
	RequestType                  string
	RequestID, LogicalResourceID string
}

func (e *ResponseURLExpiredError) Error() string {
	return fmt.Sprintf("not acting on the %s request %s (logical id %s): its response URL expired at %s, %s before the request arrived at %s; CloudFormation no longer waits for this answer, so nothing was done and nothing sent",
		e.RequestType, e.RequestID, e.LogicalResourceID, e.ExpiredAt.Format(time.RFC3339), e.ReceivedAt.Sub(e.ExpiredAt).Round(time.Second), e.ReceivedAt.Format(time.RFC3339))
}

// responseWindow is what the response URL of one event allows.
type responseWindow struct {
	receivedAt time.Time // on the router's clock (Router.Now)
	arrived    time.Time // the same instant on the runtime's clock
	expiresAt  time.Time // zero when the URL's expiry is unknown
	unknownWhy error     // why it is unknown
}

// known reports whether the URL's expiry is known.
func (w responseWindow) known() bool { return !w.expiresAt.IsZero() }

// expired reports whether the URL had expired when the event arrived.
func (w responseWindow) expired() bool { return w.known() && !w.receivedAt.Before(w.expiresAt) }

// left is the time between the event's arrival and the URL's expiry.
func (w responseWindow) left() time.Duration { return w.expiresAt.Sub(w.receivedAt) }

// windowOf reads the response URL of an event received at receivedAt.
func windowOf(responseURL string, receivedAt time.Time) responseWindow {
	w := responseWindow{receivedAt: receivedAt, arrived: time.Now()}
	w.expiresAt, w.unknownWhy = ResponseURLExpiry(responseURL)
	return w
}

// responseURLHost names the URL's host for the log: the URL itself is a
// credential (whoever holds it may answer for the resource) and is never
// logged.
func responseURLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

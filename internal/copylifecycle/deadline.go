package copylifecycle

import (
	"net/url"
	"strconv"
	"time"
)

// CloudFormation stops waiting for a custom resource ServiceTimeout after it
// sends the request ("Response timeout",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-custom-resources.html#response-timeout).
// The event does not say when that was; its pre-signed ResponseURL does, in
// SigV4 form: X-Amz-Date is when CloudFormation signed it, and X-Amz-Date +
// X-Amz-Expires when S3 stops accepting the answer
// (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html;
// internal/customresource/responseurl.go reads the same fields for the
// router's fence). Without them, the request is taken to be as old as the
// functions' event age bound allows.

const sigV4DateLayout = "20060102T150405Z"

// signedAt returns when CloudFormation signed the response URL and when it
// expires, or ok false when the URL has no SigV4 date.
func signedAt(responseURL string) (signed, expires time.Time, ok bool) {
	u, err := url.Parse(responseURL)
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	q := u.Query()
	t, err := time.Parse(sigV4DateLayout, q.Get("X-Amz-Date"))
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 1 {
		return t, time.Time{}, true
	}
	return t, t.Add(time.Duration(secs) * time.Second), true
}

// deadlineOf is when a request received at now, whose CloudFormation wait
// is wait, must have answered.
func (m *Machine) deadlineOf(responseURL string, wait time.Duration, now time.Time) time.Time {
	sent, expires, ok := signedAt(responseURL)
	if !ok {
		sent = now.Add(-m.maxAge())
	}
	d := sent.Add(wait - m.ansMargin())
	if !expires.IsZero() && expires.Add(-m.ansMargin()).Before(d) {
		d = expires.Add(-m.ansMargin())
	}
	return d
}

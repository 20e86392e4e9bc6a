package copylifecycle

import (
	"time"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// CloudFormation stops waiting for a custom resource ServiceTimeout after it
// sends the request ("Response timeout",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-custom-resources.html#response-timeout).
// The event does not say when that was; its pre-signed ResponseURL does, in
// SigV4 form: X-Amz-Date is when CloudFormation signed it, and X-Amz-Date +
// X-Amz-Expires when S3 stops accepting the answer
// (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
// customresource reads both, as the router's fence does. Without a signing
// time, the request is taken to be as old as the functions' event age bound
// allows.

// deadlineOf is when a request received at now, whose CloudFormation wait
// is wait, must have answered.
func (m *Machine) deadlineOf(responseURL string, wait time.Duration, now time.Time) time.Time {
	sent, ok := customresource.ResponseURLSignedAt(responseURL)
	if !ok {
		sent = now.Add(-m.maxAge())
	}
	d := sent.Add(wait - m.ansMargin())
	if expires, err := customresource.ResponseURLExpiry(responseURL); err == nil && expires.Add(-m.ansMargin()).Before(d) {
		d = expires.Add(-m.ansMargin())
	}
	return d
}

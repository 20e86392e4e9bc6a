// Package cfnresponse stands in for CloudFormation's pre-signed response
// URL: a loopback HTTP server that records every answer a custom resource
// handler PUTs, and checks the rules CloudFormation applies to it.
package cfnresponse

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Answer is one recorded PUT.
type Answer struct {
	Method string
	Path   string // as sent, escaped
	Query  string // as sent
	Body   []byte
	// Decoded body.
	Status             string
	Reason             string
	PhysicalResourceId string
	StackId            string
	RequestId          string
	LogicalResourceId  string
	Data               map[string]interface{}
}

// Server records answers.
type Server struct {
	URL string

	mu      sync.Mutex
	answers []Answer
}

// Start runs the server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a := Answer{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: body}
		_ = json.Unmarshal(body, &a)
		s.mu.Lock()
		s.answers = append(s.answers, a)
		s.mu.Unlock()
	}))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Answers returns the answers received so far.
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answers...)
}

// Reset forgets the answers received so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = nil
}

// Request is what an answer must echo.
type Request struct {
	StackId, RequestId, LogicalResourceId string
}

// Check returns what is wrong with answers for an event: it wants exactly
// one PUT with a known Status, the identifiers echoed, a Reason on FAILED, a
// non-empty PhysicalResourceId of at most 1 KB and a body under 4 KB.
func Check(answers []Answer, req Request) error {
	if len(answers) != 1 {
		return fmt.Errorf("got %d answers, want exactly one: %q", len(answers), bodies(answers))
	}
	a := answers[0]
	var raw map[string]interface{}
	switch {
	case a.Method != http.MethodPut:
		return fmt.Errorf("answer sent with %s, want PUT", a.Method)
	case json.Unmarshal(a.Body, &raw) != nil:
		return fmt.Errorf("answer is not JSON: %q", a.Body)
	case a.Status != "SUCCESS" && a.Status != "FAILED":
		return fmt.Errorf("Status %q, want SUCCESS or FAILED: %s", a.Status, a.Body)
	case a.Status == "FAILED" && a.Reason == "":
		return fmt.Errorf("FAILED without a Reason: %s", a.Body)
	case a.StackId != req.StackId || a.RequestId != req.RequestId || a.LogicalResourceId != req.LogicalResourceId:
		return fmt.Errorf("identifiers not echoed: got StackId %q RequestId %q LogicalResourceId %q, want %+v", a.StackId, a.RequestId, a.LogicalResourceId, req)
	case a.PhysicalResourceId == "" || len(a.PhysicalResourceId) > 1024:
		return fmt.Errorf("PhysicalResourceId of %d bytes, want 1 to 1024: %q", len(a.PhysicalResourceId), a.PhysicalResourceId)
	case len(a.Body) >= 4096:
		return fmt.Errorf("body of %d bytes, want less than 4096", len(a.Body))
	}
	return nil
}

func bodies(answers []Answer) []string {
	var out []string
	for _, a := range answers {
		out = append(out, string(a.Body))
	}
	return out
}

// sigV4Date is the format of X-Amz-Date (ISO 8601 basic, UTC), as S3's
// "Authenticating Requests: Using Query Parameters (AWS Signature Version
// 4)" gives it: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
const sigV4Date = "20060102T150405Z"

// PresignedURL is a response URL of the form CloudFormation sends (a
// pre-signed S3 PUT, Signature Version 4 query parameters) under base,
// signed at signedAt and valid for expires (whole seconds). The signature
// is a placeholder: the recording server checks none.
func PresignedURL(base string, signedAt time.Time, expires time.Duration) string {
	q := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Date":          {signedAt.UTC().Format(sigV4Date)},
		"X-Amz-SignedHeaders": {"host"},
		"X-Amz-Expires":       {strconv.Itoa(int(expires / time.Second))},
		"X-Amz-Credential":    {"AKIA6ODU5DHT7EXAMPLE/" + signedAt.UTC().Format("20060102") + "/us-east-1/s3/aws4_request"},
		"X-Amz-Signature":     {"3f1e0bd6f9a0e5c2d7b8a4c1e9f0d2b3a5c6e7f8091a2b3c4d5e6f708192a3b4"},
	}
	return base + "/cfn-response?" + q.Encode()
}

// Resigned returns rawURL with its X-Amz-Date set to signedAt, the rest of
// the query as it was, so that an event recorded in testdata is as fresh
// as one CloudFormation just sent. A URL without X-Amz-Date is returned
// unchanged.
func Resigned(t testing.TB, rawURL string, signedAt time.Time) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("response URL %q: %v", rawURL, err)
	}
	if !u.Query().Has("X-Amz-Date") {
		return rawURL
	}
	// Replace the one parameter in place: the order of the others stays.
	var parts []string
	for _, p := range strings.Split(u.RawQuery, "&") {
		if strings.HasPrefix(p, "X-Amz-Date=") {
			p = "X-Amz-Date=" + signedAt.UTC().Format(sigV4Date)
		}
		parts = append(parts, p)
	}
	u.RawQuery = strings.Join(parts, "&")
	return u.String()
}

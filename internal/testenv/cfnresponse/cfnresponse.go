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
	"sync"
	"testing"
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

// Package moto starts moto_server on a free 127.0.0.1 port for one test and
// stops it (by its process id) when the test ends. A missing moto_server is
// a test failure, never a skip.
package moto

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/testenv/proc"
)

// Server is a running moto_server.
type Server struct {
	URL string

	proc *proc.Process
}

// Start runs moto_server until the test ends and waits until it answers.
func Start(t testing.TB) *Server {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server is needed for this test and is not on PATH (pip install 'moto[server]==5.2.1'): %v", err)
	}
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	s.proc = proc.Start(t, exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port)))
	s.proc.WaitReady(t, 60*time.Second, proc.AnswersOK(s.URL+"/moto-api/data.json"))
	return s
}

// Reset clears every service's state.
func (s *Server) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("resetting moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resetting moto: HTTP %d", resp.StatusCode)
	}
}

// Log returns what moto_server printed so far.
func (s *Server) Log() string { return s.proc.Log() }

// Env is the environment that points the AWS SDK at this server, with fake
// credentials and region us-east-1.
func (s *Server) Env() map[string]string { return Env(s.URL) }

// Env is the environment that points the AWS SDK's KMS, IAM and STS clients
// at endpoint, with fake credentials and region us-east-1.
func Env(endpoint string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_KMS":        endpoint,
		"AWS_ENDPOINT_URL_IAM":        endpoint,
		"AWS_ENDPOINT_URL_STS":        endpoint,
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_SESSION_TOKEN":           "testing",
		"AWS_REGION":                  "us-east-1",
		"AWS_DEFAULT_REGION":          "us-east-1",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	}
}

// SetEnv sets Env for the rest of the test.
func (s *Server) SetEnv(t testing.TB) { SetEnv(t, s.URL) }

// SetEnv sets Env(endpoint) for the rest of the test.
func SetEnv(t testing.TB, endpoint string) {
	for k, v := range Env(endpoint) {
		t.Setenv(k, v)
	}
}

// Proxy forwards requests to a server and records the API operations it
// sees, as "KMS.CreateGrant" (JSON protocols, from X-Amz-Target) or
// "IAM.CreateServiceLinkedRole" (query protocol, from the Action, and the
// service its signature names: "CloudFormation.DescribeStackResource").
type Proxy struct {
	URL string

	mu    sync.Mutex
	calls []string
}

// CountingProxy starts a Proxy in front of s until the test ends.
func (s *Server) CountingProxy(t testing.TB) *Proxy {
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.record(r)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

var targetServices = map[string]string{"TrentService": "KMS"}

// queryServices names the query-protocol services by their signing name,
// the service of the signature's credential scope.
var queryServices = map[string]string{"iam": "IAM", "cloudformation": "CloudFormation", "ec2": "EC2", "sts": "STS"}

// signingName is the service of a SigV4 Authorization header's credential
// scope (Credential=<key>/<date>/<region>/<service>/aws4_request), or "".
func signingName(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	if parts := strings.Split(cred, "/"); len(parts) == 5 {
		return parts[3]
	}
	return ""
}

func (p *Proxy) record(r *http.Request) {
	op := "?"
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		svc, name, _ := strings.Cut(target, ".")
		if s, ok := targetServices[svc]; ok {
			svc = s
		}
		op = svc + "." + name
	} else if body, err := io.ReadAll(r.Body); err == nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			svc, ok := queryServices[signingName(r.Header.Get("Authorization"))]
			if !ok {
				svc = "IAM" // what this proxy served first; unsigned requests included
			}
			op = svc + "." + form.Get("Action")
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, op)
}

// Calls returns the operations forwarded since the last Reset.
func (p *Proxy) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// Reset forgets the operations recorded so far.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = nil
}

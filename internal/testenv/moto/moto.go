// Package moto starts moto_server on a free 127.0.0.1 port for one test and
// stops it (by its process id) when the test ends. A missing moto_server is
// a test failure, never a skip.
package moto

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running moto_server.
type Server struct {
	URL string

	cmd *exec.Cmd
	out *lockedBuffer
}

// Start runs moto_server until the test ends and waits until it answers.
func Start(t testing.TB) *Server {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server is needed for this test and is not on PATH (pip install 'moto[server]==5.2.1'): %v", err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), out: &lockedBuffer{}}
	s.cmd = exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// Its own process group, so that stopping it also stops any child.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("moto_server exited before answering (%v):\n%s", err, s.out)
		default:
		}
		if s.ready() {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within 60s:\n%s", s.URL, s.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/moto-api/data.json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
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
func (s *Server) Log() string { return s.out.String() }

// Env is the environment that points the AWS SDK at this server, with fake
// credentials and region us-east-1.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_KMS":        s.URL,
		"AWS_ENDPOINT_URL_IAM":        s.URL,
		"AWS_ENDPOINT_URL_STS":        s.URL,
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
func (s *Server) SetEnv(t testing.TB) {
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

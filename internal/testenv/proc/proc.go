// Package proc runs a helper server (moto_server, aws-lambda-rie) as a child
// process for one test: on a free loopback port, waited for until it
// answers, and stopped by its process group id when the test ends, so that
// no server outlives the test binary.
package proc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a command started by Start.
type Process struct {
	name   string
	out    *lockedBuffer
	exited chan error
}

// Start starts cmd in a process group of its own, collects what it prints,
// and kills the group (the command and any child it started, such as the
// emulator's bootstrap) when the test ends.
func Start(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{name: filepath.Base(cmd.Path), out: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
	return p
}

// WaitReady polls ready until it reports true. It fails the test, with what
// the process printed, if the process exits first or timeout passes.
func (p *Process) WaitReady(t testing.TB, timeout time.Duration, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-p.exited:
			p.exited <- err // for the cleanup's receive
			t.Fatalf("%s exited before answering (%v):\n%s", p.name, err, p.out)
		default:
		}
		if ready() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %v:\n%s", p.name, timeout, p.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log returns what the process printed so far (stdout and stderr).
func (p *Process) Log() string { return p.out.String() }

// Listening reports whether addr accepts a TCP connection.
func Listening(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// AnswersOK reports whether a GET of url answers HTTP 200.
func AnswersOK(url string) func() bool {
	return func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// lockedBuffer is written by the command's output copier and read by the
// test at the same time.
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

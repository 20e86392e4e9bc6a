// Package rie runs a Lambda bootstrap binary under the AWS Lambda Runtime
// Interface Emulator (aws-lambda-rie, a tool of the development tools module
// .ci/tools, not a dependency of this module) on 127.0.0.1, for one test, and
// stops it by its process id when the test ends.
package rie

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/testenv/proc"
)

// Tool is the tool name in the tool directive of .ci/tools/go.mod.
const Tool = "aws-lambda-rie"

// ToolsModule is the development tools module's directory, relative to
// this module's root.
const ToolsModule = ".ci/tools"

var (
	toolOnce sync.Once
	toolPath string
	toolErr  error
)

// Path builds the emulator from the tools module (once per test binary;
// go tool keeps the binary in the go build cache, so later builds are cheap
// and concurrent test binaries do not race on one file) and returns its
// path. It needs this module's source tree (go env GOMOD, then .ci/tools)
// and the Go toolchain; without them the test fails, it is not skipped.
func Path(t testing.TB) string {
	t.Helper()
	toolOnce.Do(func() { toolPath, toolErr = build() })
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolPath
}

func build() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("building %s: no main module here (go env GOMOD: %q, %v)", Tool, gomod, err)
	}
	tools := filepath.Join(filepath.Dir(gomod), filepath.FromSlash(ToolsModule))
	if _, err := os.Stat(filepath.Join(tools, "go.mod")); err != nil {
		return "", fmt.Errorf("building %s: the tools module is missing: %v", Tool, err)
	}
	// Stdout is the path alone; go: downloading lines go to stderr.
	var stderr bytes.Buffer
	cmd := exec.Command("go", "tool", "-n", Tool)
	cmd.Dir = tools
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n %s in %s: %v\n%s", Tool, tools, err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)), nil
}

// HostBootstrap builds the handler main package pkg (such as
// handlerbuild.DestinationHandler) for the host's architecture, which is what the
// emulator runs here (the deployed bootstrap is arm64), and returns the
// binary's path.
func HostBootstrap(t testing.TB, pkg string) string {
	t.Helper()
	dir, err := handlerbuild.Build(context.Background(), handlerbuild.Options{Package: pkg, GOARCH: runtime.GOARCH})
	if err != nil {
		t.Fatalf("building the bootstrap %s: %v", pkg, err)
	}
	return filepath.Join(dir, handlerbuild.BinaryName)
}

// Options of an emulator.
type Options struct {
	// Bootstrap is the absolute path of the function binary.
	Bootstrap string
	// Env is added to the emulator's environment, which the emulator passes
	// on to the function.
	Env map[string]string
	// FunctionTimeout is AWS_LAMBDA_FUNCTION_TIMEOUT (whole seconds).
	FunctionTimeout time.Duration
}

// Emulator is a running aws-lambda-rie.
type Emulator struct {
	URL string

	proc            *proc.Process
	functionTimeout time.Duration
}

// Start runs the emulator until the test ends.
func Start(t testing.TB, o Options) *Emulator {
	t.Helper()
	bin := Path(t)
	invokePort, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	runtimePort, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	invokeAddr := "127.0.0.1:" + strconv.Itoa(invokePort)
	cmd := exec.Command(bin,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(runtimePort),
		o.Bootstrap)
	cmd.Env = os.Environ()
	for k, v := range o.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if o.FunctionTimeout > 0 {
		cmd.Env = append(cmd.Env, "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(o.FunctionTimeout/time.Second)))
	}
	// proc.Start kills the emulator's process group: the bootstrap it
	// started goes with it.
	e := &Emulator{URL: "http://" + invokeAddr, proc: proc.Start(t, cmd), functionTimeout: o.FunctionTimeout}
	e.proc.WaitReady(t, 30*time.Second, proc.Listening(invokeAddr))
	return e
}

// Invoke sends one event and returns the function's answer (the emulator
// reports a function error as HTTP 200 with errorMessage/errorType).
func (e *Emulator) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("invoke: HTTP %d: %s", resp.StatusCode, body)
	}
	return body, nil
}

// MustInvoke sends one event and returns the function's answer. It fails
// the test, with the emulator's log, when the invoke fails or the function
// returns an error (the emulator reports one as HTTP 200 with
// errorMessage/errorType). It gives up 10s after the function timeout.
func (e *Emulator) MustInvoke(t testing.TB, payload []byte) []byte {
	t.Helper()
	timeout := e.functionTimeout
	if timeout == 0 {
		timeout = defaultFunctionTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	out, err := e.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, e.Log())
	}
	var fnErr struct{ ErrorMessage, ErrorType string }
	if json.Unmarshal(out, &fnErr) == nil && fnErr.ErrorType != "" {
		t.Fatalf("the function failed: %s: %s\n%s", fnErr.ErrorType, fnErr.ErrorMessage, e.Log())
	}
	return out
}

// defaultFunctionTimeout is the emulator's own default for
// AWS_LAMBDA_FUNCTION_TIMEOUT.
const defaultFunctionTimeout = 300 * time.Second

// Log returns what the emulator and the function printed so far.
func (e *Emulator) Log() string { return e.proc.Log() }

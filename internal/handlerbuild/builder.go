package handlerbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// passThrough are the go env settings that say where modules, caches and the
// toolchain come from. Their effective values (environment or go env file)
// are passed to the build explicitly, because the build runs with GOENV=off.
// None of them changes the bytes of the binary: the toolchain they select is
// part of the key.
var passThrough = []string{
	"GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE",
	"GOVCS", "GOAUTH", "GOMODCACHE", "GOPATH", "GOCACHE", "GOCACHEPROG",
	"GOTMPDIR", "GOTOOLCHAIN", "GOROOT", "GOWORK",
}

// keepEnv are GO* variables of the Go runtime that tune the go command itself
// and never reach the output.
var keepEnv = []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GOTRACEBACK"}

// builder holds one Build's resolved settings.
type builder struct {
	pkg       string
	goarch    string
	dir       string
	cacheRoot string
	goenv     map[string]string // effective go env in dir, user's environment
	forced    []string          // the settings that shape the output, KEY=VALUE
	env       []string          // the whole environment of go list and go build
	progress  io.Writer         // where a cold build is announced

	index   indexState // what the index knew when key ran
	pending *manifest  // a computed key's manifest, for recordIndex

	prebuilt   *Prebuilt // offered and not turned off by PrebuiltEnv
	wantSource bool      // computeKey also computes the source hash
	source     string    // the source hash, once computed
}

func newBuilder(ctx context.Context, opts Options) (*builder, error) {
	b := &builder{pkg: opts.Package, goarch: opts.GOARCH, dir: opts.Dir, cacheRoot: opts.CacheDir, progress: opts.Progress,
		prebuilt: opts.Prebuilt}
	switch v := os.Getenv(PrebuiltEnv); v {
	case "":
	case "off":
		b.prebuilt = nil
	default:
		return nil, fmt.Errorf("handlerbuild: %s must be empty or \"off\" (build every handler from source), got %q", PrebuiltEnv, v)
	}
	if b.pkg == "" {
		return nil, fmt.Errorf("handlerbuild: Options.Package must name a main package, got %q", opts.Package)
	}
	if b.goarch == "" {
		b.goarch = "arm64"
	}
	if b.progress == nil {
		b.progress = os.Stderr
	}
	var archEnv string
	switch b.goarch {
	case "arm64":
		archEnv = "GOARM64=v8.0"
	case "amd64":
		archEnv = "GOAMD64=v1"
	default:
		return nil, fmt.Errorf("handlerbuild: Options.GOARCH must be \"arm64\" or \"amd64\" (the Lambda architectures), got %q", opts.GOARCH)
	}
	if b.dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("handlerbuild: Options.Dir is empty and the working directory is unknown: %w", err)
		}
		b.dir = wd
	}
	if b.cacheRoot == "" {
		b.cacheRoot = os.Getenv(CacheDirEnv)
	}
	if b.cacheRoot == "" {
		uc, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("handlerbuild: no cache directory: set %s or Options.CacheDir: %w", CacheDirEnv, err)
		}
		b.cacheRoot = filepath.Join(uc, "crossaccountami", "handlers")
	}

	// The user's effective settings, as the go command in dir sees them.
	query := append([]string{"env", "-json", "GOVERSION", "GOFLAGS", "GOMOD"}, passThrough...)
	out, err := runGo(ctx, b.dir, os.Environ(), nil, query...)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(out, &b.goenv); err != nil {
		return nil, fmt.Errorf("handlerbuild: decoding `go env -json` output %q: %w", out, err)
	}

	b.forced = []string{
		"GOENV=off",
		"GOOS=linux",
		"GOARCH=" + b.goarch,
		archEnv,
		"CGO_ENABLED=0",
		"GOFIPS140=off",
		"GOFLAGS=" + filterGOFLAGS(b.goenv["GOFLAGS"]),
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(name, "GO") || strings.HasPrefix(name, "CGO_")) && !slices.Contains(keepEnv, name) {
			continue // GOEXPERIMENT, GODEBUG, GOARM64, ... : reset
		}
		b.env = append(b.env, kv)
	}
	for _, name := range passThrough {
		if v := b.goenv[name]; v != "" {
			b.env = append(b.env, name+"="+v)
		}
	}
	if b.goenv["GOWORK"] == "" {
		b.env = append(b.env, "GOWORK=off")
	}
	b.env = append(b.env, b.forced...)
	return b, nil
}

// filterGOFLAGS keeps the flags that choose how go.mod is read (the resolved
// versions are in the key) and drops every flag that could change the code.
func filterGOFLAGS(goflags string) string {
	var keep []string
	for _, f := range strings.Fields(goflags) {
		name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if name == "mod" || name == "modcacherw" {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

// buildFlags are the go build flags besides -o and the package.
var buildFlags = []string{
	"-trimpath", "-buildvcs=false", "-tags", "lambda.norpc", "-pgo=off", "-ldflags=-s -w -buildid=",
}

func (b *builder) buildArgs(out string) []string {
	args := append([]string{"build"}, buildFlags...)
	return append(args, "-o", out, b.pkg)
}

func (b *builder) run(ctx context.Context, args ...string) ([]byte, error) {
	return runGo(ctx, b.dir, b.env, b.forced, args...)
}

// runGo runs go in dir with env. A failure names the command line (with the
// variables in shown), the directory and the command's whole stderr.
func runGo(ctx context.Context, dir string, env, shown []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("handlerbuild: `%s` in %s failed: %w\n%s",
			commandLine(shown, args), dir, err, strings.TrimRight(stderr.String(), "\n"))
	}
	return stdout.Bytes(), nil
}

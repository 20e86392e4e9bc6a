// Package handlerbuild builds a Go Lambda handler (a main package of this
// module, or any other) with the local Go toolchain, at synth time, into a
// cached directory that holds exactly one file, bootstrap. Constructs pass
// that directory to awslambda.Code_FromAsset.
//
// # Reproducibility
//
// The binary is built with
//
//	GOOS=linux GOARCH=<arch> CGO_ENABLED=0 go build -trimpath -buildvcs=false \
//	    -tags lambda.norpc -pgo=off -ldflags='-s -w -buildid=' -o bootstrap <Package>
//
// and an environment in which nothing the user configured can change the
// output silently:
//
//   - GOENV=off: a `go env -w` setting (GOFLAGS, GOEXPERIMENT, GOAMD64, ...)
//     cannot reach the build. An empty environment variable does not override
//     the go env file, so this is the only way to reset such settings. The
//     settings that only say where modules come from (GOPROXY, GOPRIVATE,
//     GONOSUMDB, GOMODCACHE, GOCACHE, ...) are read first with `go env` and
//     passed on explicitly, so private modules still resolve.
//   - GOFLAGS: only -mod=... and -modcacherw survive from the user's GOFLAGS
//     (they choose how go.mod is read, and the resolved versions are part of
//     the cache key); any other flag (-tags, -gcflags, -race, ...) is dropped.
//   - GOEXPERIMENT, GODEBUG, GOFIPS140 are reset; GOARM64=v8.0 (arm64) or
//     GOAMD64=v1 (amd64) are set to the Lambda baseline.
//   - -pgo=off: a default.pgo file next to the main package would otherwise
//     change the code.
//   - GOTOOLCHAIN is left as the user has it: a consumer module whose go.mod
//     requires a newer Go must still build. The toolchain actually selected
//     (`go env GOVERSION` in the build's directory and environment) is part
//     of the cache key, and different toolchains may produce different
//     binaries; pin the toolchain in go.mod (toolchain line) for identical
//     assets across machines.
//
// The AWS CDK hashes an asset directory (AssetHashType SOURCE) over each
// file's relative path and content only: neither the file mode nor the mtime
// enters the hash (aws-cdk-lib core/lib/fs/fingerprint.js; the mtime is used
// only as an invalidation key of CDK's local fingerprint cache, which is
// keyed per directory path, and a cache directory here never changes
// content). The binary's mode is nevertheless set to 0755 regardless of the
// umask, because Lambda needs it executable by its sandbox user; the mtime
// is left as it is.
//
// # Cache
//
// The cache key (see [Result.Key]) is a SHA-256 over the format version, the
// Go toolchain version, GOOS/GOARCH/GOARM64, the flags, and, for every
// package the build compiles (`go list -deps`): standard packages by import
// path (their content is fixed by GOVERSION); packages of a module version in
// the module cache by module path@version (the module cache is read-only and
// verified against go.sum); every other package (main module, workspace
// modules, directory replacements, vendor/) by the relative names and
// contents of all its files that go into the build, plus its module's go.mod.
// The main module's go.mod and go.sum and any go.work/go.work.sum are hashed
// as well.
//
// Cache entries live in $CROSSACCOUNTAMI_CACHE_DIR/<key>/, or
// os.UserCacheDir()/crossaccountami/handlers/<key>/ when the variable is
// unset. An entry is written once: built in a temporary directory outside the
// cache, moved into a staging directory next to the entries and renamed into
// place, so a concurrent synth sees either no entry or a complete one.
//
// Computing the key runs `go list`, which costs more than the rest of a
// cache hit together. The cache root's index/ directory therefore remembers,
// per configuration (directory, package, go env, flags), the key of the last
// computation and the content hashes of every input it read that can change
// in place; a synth whose inputs all still match reuses that key without
// running `go list` (see index.go for what is verified and why it suffices).
//
// # Prebuilt binaries
//
// Options.Prebuilt offers a binary built ahead of time (package prebuilt
// ships this module's handlers). A cache miss installs it instead of
// building only when its source hash equals the source hash of what this
// build would compile (see prebuilt.go); the key names the prebuilt
// offered, so an entry holds either that binary or a local build, always
// the same one for the same key. PrebuiltEnv=off builds from source.
//
// # Progress
//
// A cache miss builds the handler, which takes from seconds to a minute or
// more when the Go build cache is cold. The build is announced on
// Options.Progress (standard error by default; never standard output), one
// line when it starts and one when it is done. A cache hit prints nothing.
package handlerbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Well-known handler packages of this module. They are import paths, so a
// construct names a handler without importing the handler's dependencies.
const (
	DestinationHandler = "github.com/crossaccountami/crossaccountami/internal/destinationhandler/bootstrap"
	SourceHandler      = "github.com/crossaccountami/crossaccountami/internal/sourcehandler/bootstrap"
)

// CacheDirEnv names the environment variable that overrides the cache root.
const CacheDirEnv = "CROSSACCOUNTAMI_CACHE_DIR"

// BinaryName is the name of the single file in a built directory.
const BinaryName = "bootstrap"

// Options say what to build.
type Options struct {
	// Package is the import path of the main package to build.
	Package string
	// GOARCH is the target architecture, "arm64" or "amd64".
	// Default: "arm64".
	GOARCH string
	// Dir is the directory in which `go` runs; its module resolves Package.
	// Default: the process's working directory.
	Dir string
	// CacheDir is the cache root.
	// Default: $CROSSACCOUNTAMI_CACHE_DIR, else
	// os.UserCacheDir()/crossaccountami/handlers.
	CacheDir string
	// Progress receives one line when a cache miss starts building and one
	// when the build is done, so a synth that pauses for a cold build says
	// why. Nothing is written on a cache hit.
	// Default: os.Stderr (standard output is left to the app).
	Progress io.Writer
	// Prebuilt, when set, is a binary of Package built ahead of time; a
	// cache miss installs it instead of building when it was built from the
	// same source (see "Prebuilt handlers" in prebuilt.go).
	// Default: - always build from source.
	Prebuilt *Prebuilt
}

// Result describes a finished Build.
type Result struct {
	// Dir holds exactly one file, bootstrap.
	Dir string
	// Key is the cache key: the name of Dir inside the cache root.
	Key string
	// Cached is true when Dir was already in the cache and nothing was built.
	Cached bool
	// Prebuilt is true when this call installed Options.Prebuilt's binary
	// into the cache instead of building.
	Prebuilt bool
	// Toolchain is the GOVERSION of the go command this call ran (for a
	// cache miss: the one that built the binary, unless Prebuilt).
	Toolchain string
}

// Build returns a directory that contains exactly one file, bootstrap, the
// main package opts.Package built for linux/opts.GOARCH.
func Build(ctx context.Context, opts Options) (dir string, err error) {
	r, err := BuildResult(ctx, opts)
	if err != nil {
		return "", err
	}
	return r.Dir, nil
}

// MustBuild is Build for construct code: it panics with the full error
// (compiler output included), which CDK/jsii surfaces as a failed synth.
func MustBuild(opts Options) string {
	dir, err := Build(context.Background(), opts)
	if err != nil {
		panic(err)
	}
	return dir
}

// BuildResult is Build that also reports the cache key and whether the
// result came from the cache.
func BuildResult(ctx context.Context, opts Options) (Result, error) {
	b, err := newBuilder(ctx, opts)
	if err != nil {
		return Result{}, err
	}
	key, err := b.key(ctx)
	if err != nil {
		return Result{}, err
	}
	final := filepath.Join(b.cacheRoot, key)
	if ok, err := complete(final); err != nil {
		return Result{}, err
	} else if ok {
		b.recordIndexOrWarn()
		return Result{Dir: final, Key: key, Cached: true, Toolchain: b.goenv["GOVERSION"]}, nil
	}
	name := handlerName(b.pkg)
	reason := b.missReason()
	if b.prebuilt != nil {
		fits, err := b.prebuiltFits(ctx)
		if err != nil {
			return Result{}, err
		}
		if fits {
			if err := b.install(final, b.writePrebuilt); err != nil {
				return Result{}, err
			}
			fmt.Fprintf(b.progress, "crossaccountami: installed %s prebuilt (linux/%s, built by %s from the same source; %s=off builds it here) in %s\n",
				name, b.goarch, b.prebuilt.Toolchain, PrebuiltEnv, final)
			b.recordIndexOrWarn()
			return Result{Dir: final, Key: key, Prebuilt: true, Toolchain: b.goenv["GOVERSION"]}, nil
		}
		reason += "; its sources differ from the prebuilt one's"
	}
	fmt.Fprintf(b.progress, "crossaccountami: building %s (linux/%s, %s, %s)...\n",
		name, b.goarch, b.goenv["GOVERSION"], reason)
	start := time.Now()
	if err := b.install(final, func(out string) error {
		_, err := b.run(ctx, b.buildArgs(out)...)
		return err
	}); err != nil {
		return Result{}, err
	}
	fmt.Fprintf(b.progress, "crossaccountami: built %s in %.1fs (cached in %s)\n",
		name, time.Since(start).Seconds(), final)
	b.recordIndexOrWarn()
	return Result{Dir: final, Key: key, Toolchain: b.goenv["GOVERSION"]}, nil
}

// recordIndexOrWarn records the index once the entry exists. A failure
// does not fail the synth (the binary is there, and a read-only cache of
// prebuilt entries must keep working); it only makes later synths compute
// the key again, so it is reported and not returned.
func (b *builder) recordIndexOrWarn() {
	if err := b.recordIndex(); err != nil {
		fmt.Fprintf(b.progress, "crossaccountami: warning: cannot record the handler cache index in %s: %v; "+
			"later synths will run `go list` again (make the directory writable, or remove it)\n",
			filepath.Join(b.cacheRoot, "index"), err)
	}
}

// handlerName names a handler in progress lines.
func handlerName(pkg string) string {
	switch pkg {
	case DestinationHandler:
		return "the destination handler (KMS grants, service-linked roles, AMI copies)"
	case SourceHandler:
		return "the source handler"
	}
	return "the handler " + pkg
}

// missReason says, in a progress line, why the cache had no entry.
func (b *builder) missReason() string {
	switch b.index {
	case indexStale:
		return "its sources changed since the last build"
	case indexVerified:
		// The inputs match the last build, whose entry is gone.
		return "its cache entry was removed"
	}
	if entries, _ := os.ReadDir(b.cacheRoot); len(entries) == 0 {
		return "first synth on this machine"
	}
	return "first build in this directory with this toolchain and settings"
}

// complete reports whether dir is a finished cache entry. Entries appear by
// rename only, so an existing directory is complete unless someone edited
// it; one that does not hold exactly the binary is an error, not a miss.
func complete(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("handlerbuild: reading cache entry %s: %w", dir, err)
	}
	if len(entries) != 1 || entries[0].Name() != BinaryName || !entries[0].Type().IsRegular() {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		return false, fmt.Errorf("handlerbuild: cache entry %s must hold only %q, holds %q; remove the directory", dir, BinaryName, names)
	}
	return true, nil
}

// install has produce write the binary in a temporary directory outside the
// cache and renames it into final through a staging directory inside the
// cache root.
func (b *builder) install(final string, produce func(out string) error) error {
	tmp, err := os.MkdirTemp("", "handlerbuild-")
	if err != nil {
		return fmt.Errorf("handlerbuild: creating a build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, BinaryName)
	if err := produce(out); err != nil {
		return err
	}

	if err := os.MkdirAll(b.cacheRoot, 0o755); err != nil {
		return fmt.Errorf("handlerbuild: creating cache root %s: %w", b.cacheRoot, err)
	}
	stage, err := os.MkdirTemp(b.cacheRoot, ".stage-")
	if err != nil {
		return fmt.Errorf("handlerbuild: creating a staging directory in %s: %w", b.cacheRoot, err)
	}
	defer os.RemoveAll(stage) // a no-op once renamed
	if err := os.Chmod(stage, 0o755); err != nil {
		return fmt.Errorf("handlerbuild: %w", err)
	}
	staged := filepath.Join(stage, BinaryName)
	if err := moveFile(out, staged); err != nil {
		return fmt.Errorf("handlerbuild: moving %s to %s: %w", out, staged, err)
	}
	if err := os.Chmod(staged, 0o755); err != nil {
		return fmt.Errorf("handlerbuild: %w", err)
	}
	if err := os.Rename(stage, final); err != nil {
		// Another build of the same key won the race: its entry has the
		// same content, use it.
		if ok, cerr := complete(final); cerr == nil && ok {
			return nil
		}
		return fmt.Errorf("handlerbuild: renaming %s to %s: %w", stage, final, err)
	}
	return nil
}

// moveFile renames src to dst, copying (and syncing) when they are on
// different file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// commandLine renders a go invocation with the variables that shape it, so
// an error message can be pasted into a shell.
func commandLine(env []string, args []string) string {
	var sb strings.Builder
	for _, kv := range env {
		sb.WriteString(shellQuote(kv))
		sb.WriteByte(' ')
	}
	sb.WriteString("go")
	for _, a := range args {
		sb.WriteByte(' ')
		sb.WriteString(shellQuote(a))
	}
	return sb.String()
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

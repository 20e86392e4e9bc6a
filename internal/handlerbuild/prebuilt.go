package handlerbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// # Prebuilt handlers
//
// A cold build of a handler that imports the AWS SDK compiles the standard
// library and the SDK for linux/arm64: most of a first synth on a clean
// machine (a CI container). A Prebuilt spares it: a binary that this
// recipe built ahead of time from the same source, shipped inside the
// module (see package prebuilt, which also holds the test that rebuilds it
// from source and fails when the bytes differ).
//
// A prebuilt binary is used only for a source it was built from: on a
// cache miss, Build computes the source hash of the package it was asked
// for (SourceHash: every non-standard package's files, in the module
// versions this build resolves) and installs the prebuilt binary only if it
// equals Prebuilt.SourceHash; otherwise it builds from source, as without a
// Prebuilt. A handler edited in a checkout, or a consumer module that
// resolves the SDK to other versions, therefore gets a local build.
//
// What the source hash leaves out, on purpose, is the toolchain: the
// prebuilt binary is the one Prebuilt.Toolchain makes, whatever `go` is on
// the PATH (which makes the asset hash the same on every machine), and the
// standard library is that toolchain's. Set PrebuiltEnv=off to build with
// the local toolchain instead (a Go security release newer than the
// prebuilt's, say).

// PrebuiltEnv names the environment variable that, set to "off", makes
// every Build compile from source even when a matching Prebuilt is offered.
const PrebuiltEnv = "CROSSACCOUNTAMI_PREBUILT_HANDLERS"

// sourceFormat changes whenever what SourceHash covers changes.
const sourceFormat = "crossaccountami/handlerbuild/source/v1"

// Prebuilt is a handler binary built ahead of time by this package's recipe.
type Prebuilt struct {
	// SourceHash is SourceHash of the build that produced the binary.
	SourceHash string
	// Toolchain is the go command's GOVERSION that built it.
	Toolchain string
	// SHA256 is the hex SHA-256 of the binary; Build refuses bytes that do
	// not match it.
	SHA256 string
	// Binary returns the binary.
	Binary func() ([]byte, error)
}

// SourceHash is the hash of everything a build of opts.Package compiles
// except the toolchain: the package, the target and the recipe (forced
// settings, flags), and for every package of the build (`go list -deps`),
// standard ones by import path, every other one by import path, module path,
// the module's go version (the language version its files compile with) and
// the names and contents of its files. It does not depend on where the
// module lies (a checkout, the module cache, a replacement directory) nor on
// which module is the main one, so a checkout of this repository and a
// consumer's build of the same release agree.
//
// It does not cover the main module's go and godebug lines, which set the
// binary's default GODEBUG values: a prebuilt binary keeps the defaults of
// the module that built it.
func SourceHash(ctx context.Context, opts Options) (string, error) {
	opts.Prebuilt = nil
	b, err := newBuilder(ctx, opts)
	if err != nil {
		return "", err
	}
	b.wantSource = true
	_, s, err := b.computeKey(ctx)
	if err != nil {
		return "", err
	}
	return s.source, nil
}

// sourceWriter hashes the build's packages for SourceHash, alongside the
// key's computation (both read the same `go list` output).
type sourceWriter struct{ w keyWriter }

func newSourceWriter(b *builder) sourceWriter {
	s := sourceWriter{keyWriter{sha256.New()}}
	s.w.field("format", sourceFormat)
	s.w.field("package", b.pkg)
	for _, kv := range b.forced {
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			s.w.field("env", kv)
		}
	}
	s.w.field("flags", strings.Join(buildFlags, "\x00"))
	return s
}

func (s sourceWriter) pkg(p *listPackage) error {
	if p.Standard {
		s.w.field("std", p.ImportPath)
		return nil
	}
	var modPath, goVersion string
	if m := p.Module; m != nil {
		modPath, goVersion = m.Path, m.GoVersion
		if m.Replace != nil && m.Replace.GoVersion != "" {
			goVersion = m.Replace.GoVersion
		}
	}
	s.w.field("pkg", p.ImportPath, modPath, goVersion)
	for _, name := range p.files() {
		sum, _, err := hashFile(filepath.Join(p.Dir, name))
		if err != nil {
			return fmt.Errorf("handlerbuild: hashing package %s: %w", p.ImportPath, err)
		}
		s.w.field("file", name, sum)
	}
	return nil
}

func (s sourceWriter) sum() string { return hex.EncodeToString(s.w.h.Sum(nil)) }

// prebuiltFits reports whether b.prebuilt was built from the source this
// build would compile. The source hash comes from the key's computation
// when this synth ran it, else (the key came from the index) from `go list`.
func (b *builder) prebuiltFits(ctx context.Context) (bool, error) {
	if b.source == "" {
		b.wantSource = true
		_, s, err := b.computeKey(ctx)
		if err != nil {
			return false, err
		}
		b.source = s.source
	}
	return b.source == b.prebuilt.SourceHash, nil
}

// writePrebuilt writes the prebuilt binary to out, after checking its bytes
// against Prebuilt.SHA256.
func (b *builder) writePrebuilt(out string) error {
	bin, err := b.prebuilt.Binary()
	if err != nil {
		return fmt.Errorf("handlerbuild: reading the prebuilt %s: %w", b.pkg, err)
	}
	sum := sha256.Sum256(bin)
	if got := hex.EncodeToString(sum[:]); got != b.prebuilt.SHA256 {
		return fmt.Errorf("handlerbuild: the prebuilt %s has SHA-256 %s, its manifest says %s: "+
			"the embedded file is damaged; rebuild it (go generate ./internal/handlerbuild/prebuilt) or set %s=off",
			b.pkg, got, b.prebuilt.SHA256, PrebuiltEnv)
	}
	return os.WriteFile(out, bin, 0o755)
}

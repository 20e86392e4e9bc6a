// Command regenerate rebuilds the prebuilt handlers of package prebuilt
// from this module's source (run by `go generate ./internal/handlerbuild/prebuilt`
// in that package's directory): each handler with handlerbuild's recipe for
// prebuilt.GOARCH, by prebuilt.Toolchain, into a fresh cache, then its
// gzip file and prebuilt.json.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild/prebuilt"
)

func main() {
	if err := regenerate(context.Background(), "."); err != nil {
		fmt.Fprintln(os.Stderr, "regenerate:", err)
		os.Exit(1)
	}
}

func regenerate(ctx context.Context, dir string) error {
	// The go command switches to (and if needed downloads) this release.
	if err := os.Setenv("GOTOOLCHAIN", prebuilt.Toolchain); err != nil {
		return err
	}
	if err := os.Setenv(handlerbuild.PrebuiltEnv, "off"); err != nil {
		return err
	}
	cache, err := os.MkdirTemp("", "prebuilt-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)

	var m prebuilt.Manifest
	for _, pkg := range prebuilt.Handlers {
		opts := handlerbuild.Options{Package: pkg, GOARCH: prebuilt.GOARCH, Dir: dir, CacheDir: cache}
		r, err := handlerbuild.BuildResult(ctx, opts)
		if err != nil {
			return err
		}
		if r.Toolchain != prebuilt.Toolchain {
			return fmt.Errorf("%s was built by %s, not %s (is GOTOOLCHAIN honoured?)", pkg, r.Toolchain, prebuilt.Toolchain)
		}
		source, err := handlerbuild.SourceHash(ctx, opts)
		if err != nil {
			return err
		}
		bin, err := os.ReadFile(filepath.Join(r.Dir, handlerbuild.BinaryName))
		if err != nil {
			return err
		}
		e := prebuilt.Entry{
			Package:    pkg,
			GOARCH:     prebuilt.GOARCH,
			Toolchain:  r.Toolchain,
			SourceHash: source,
			SHA256:     sha256Hex(bin),
			Size:       len(bin),
			File:       filepath.Base(filepath.Dir(pkg)) + "-" + prebuilt.GOARCH + ".gz",
		}
		gz, err := compress(bin)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.File), gz, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d bytes, %d gzipped, sha256 %s, source %s\n", e.File, e.Size, len(gz), e.SHA256, e.SourceHash)
		m.Handlers = append(m.Handlers, e)
	}
	// A binary of a handler no longer listed would ship for nothing.
	old, err := filepath.Glob(filepath.Join(dir, "*.gz"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if !slices.ContainsFunc(m.Handlers, func(e prebuilt.Entry) bool { return e.File == filepath.Base(f) }) {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, prebuilt.ManifestFile), append(data, '\n'), 0o644)
}

// compress gzips bin with a header that holds no name and no time, so the
// file depends only on bin and compress/flate.
func compress(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(bin); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

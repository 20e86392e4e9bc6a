// Package prebuilt holds this module's Lambda handlers built ahead of time
// (linux/arm64, handlerbuild's recipe, the Toolchain below), so that a
// synth on a clean machine does not compile the AWS SDK and the standard
// library for arm64 (issue 20: the build was most of a cold first synth).
//
// handlerbuild installs a binary of this package only when its source hash
// equals the source hash the synth computes for the handler it would build
// (see handlerbuild's prebuilt.go); any other source is built locally. The
// test of this package rebuilds every binary from source and fails when the
// bytes differ, or when the source changed and the binaries were not
// rebuilt. To rebuild them from source (with Toolchain; the go command
// downloads it when another one is installed):
//
//	go generate ./internal/handlerbuild/prebuilt
//
// Each handler change therefore adds its gzip file (about 3.5 MB for the
// destination handler, see prebuilt.json) to the repository's history.
package prebuilt

//go:generate go run ./regenerate

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"fmt"
	"io"

	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
)

// Toolchain is the Go release that builds the binaries: `go generate` and
// the test run the go command with GOTOOLCHAIN set to it, so the bytes do
// not depend on the Go installed. Changing it needs `go generate`.
const Toolchain = "go1.26.8"

// GOARCH is the architecture of the binaries: the constructs' Lambda
// functions run on arm64.
const GOARCH = "arm64"

// Handlers are the packages that have a prebuilt binary.
var Handlers = []string{handlerbuild.DestinationHandler, handlerbuild.SourceHandler}

// ManifestFile names the manifest among the embedded files.
const ManifestFile = "prebuilt.json"

//go:embed prebuilt.json *.gz
var files embed.FS

// Manifest is prebuilt.json: one entry per binary.
type Manifest struct {
	Handlers []Entry `json:"handlers"`
}

// Entry describes one binary.
type Entry struct {
	Package    string `json:"package"`
	GOARCH     string `json:"goarch"`
	Toolchain  string `json:"toolchain"`
	SourceHash string `json:"sourceHash"`
	SHA256     string `json:"sha256"`
	Size       int    `json:"size"`
	// File is the gzip-compressed binary, next to the manifest.
	File string `json:"file"`
}

// ReadManifest decodes the embedded manifest.
func ReadManifest() (Manifest, error) {
	var m Manifest
	data, err := files.ReadFile(ManifestFile)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("prebuilt: decoding %s: %w", ManifestFile, err)
	}
	return m, nil
}

// For returns the prebuilt binary of pkg for goarch, or nil when there is
// none (handlerbuild then builds from source).
func For(pkg, goarch string) *handlerbuild.Prebuilt {
	m, err := ReadManifest()
	if err != nil {
		// The embedded manifest is fixed at compile time and checked by
		// this package's test: a damaged one is only a slower synth.
		return nil
	}
	for _, e := range m.Handlers {
		if e.Package == pkg && e.GOARCH == goarch {
			return &handlerbuild.Prebuilt{
				SourceHash: e.SourceHash,
				Toolchain:  e.Toolchain,
				SHA256:     e.SHA256,
				Binary:     func() ([]byte, error) { return Binary(e) },
			}
		}
	}
	return nil
}

// Binary decompresses e's file. handlerbuild checks its SHA-256.
func Binary(e Entry) ([]byte, error) {
	gz, err := files.ReadFile(e.File)
	if err != nil {
		return nil, err
	}
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("prebuilt: %s: %w", e.File, err)
	}
	bin, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("prebuilt: %s: %w", e.File, err)
	}
	return bin, nil
}

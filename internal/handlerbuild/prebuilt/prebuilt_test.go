package prebuilt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
)

const regenerate = "go generate ./internal/handlerbuild/prebuilt"

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestPrebuiltIsTheSourcesBuild is the gate that lets a synth install these
// binaries: each one must be what its handler's source builds today, by
// Toolchain with handlerbuild's recipe. It fails when a handler (or a
// dependency) changed and the binaries were not rebuilt, when an embedded
// file is not the one its manifest describes, and when a build from source
// no longer gives the committed bytes (the recipe stopped being
// reproducible).
func TestPrebuiltIsTheSourcesBuild(t *testing.T) {
	m, err := ReadManifest()
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, e := range m.Handlers {
		pkgs = append(pkgs, e.Package)
	}
	if !slices.Equal(pkgs, Handlers) {
		t.Fatalf("%s holds %q, want %q: run %s", ManifestFile, pkgs, Handlers, regenerate)
	}
	// The go command switches to (or downloads) the toolchain that built
	// the binaries, whatever Go runs this test.
	t.Setenv("GOTOOLCHAIN", Toolchain)
	t.Setenv(handlerbuild.PrebuiltEnv, "off")
	ctx := context.Background()
	for _, e := range m.Handlers {
		t.Run(filepath.Base(filepath.Dir(e.Package)), func(t *testing.T) {
			// GIVEN the embedded binary
			if e.GOARCH != GOARCH || e.Toolchain != Toolchain {
				t.Errorf("%s is for %s, built by %s; want %s by %s: run %s", e.File, e.GOARCH, e.Toolchain, GOARCH, Toolchain, regenerate)
			}
			embedded, err := Binary(e)
			if err != nil {
				t.Fatal(err)
			}
			if got := sha256Hex(embedded); got != e.SHA256 || len(embedded) != e.Size {
				t.Errorf("%s holds %d bytes with SHA-256 %s; the manifest says %d bytes, %s", e.File, len(embedded), got, e.Size, e.SHA256)
			}

			// THEN its source is the handler's source today
			opts := handlerbuild.Options{Package: e.Package, GOARCH: e.GOARCH, Dir: ".", CacheDir: t.TempDir(), Progress: testLog{t}}
			source, err := handlerbuild.SourceHash(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if source != e.SourceHash {
				t.Fatalf("the source of %s changed since %s was built (source hash %s, the manifest says %s): "+
					"synths build it locally until you run %s", e.Package, e.File, source, e.SourceHash, regenerate)
			}

			// AND a build from source gives exactly its bytes
			r, err := handlerbuild.BuildResult(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.Prebuilt || r.Cached || r.Toolchain != Toolchain {
				t.Fatalf("build = %+v, want a fresh build from source by %s", r, Toolchain)
			}
			built, err := os.ReadFile(filepath.Join(r.Dir, handlerbuild.BinaryName))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(built, embedded) {
				t.Errorf("a build of %s from source (%d bytes, SHA-256 %s) differs from %s (%d bytes, SHA-256 %s): "+
					"the build is not reproducible, or %s was not made from this source",
					e.Package, len(built), sha256Hex(built), e.File, len(embedded), sha256Hex(embedded), e.File)
			}
		})
	}
}

func TestForOffersOnlyWhatIsEmbedded(t *testing.T) {
	for _, pkg := range Handlers {
		p := For(pkg, GOARCH)
		if p == nil {
			t.Fatalf("For(%s, %s) = nil", pkg, GOARCH)
		}
		bin, err := p.Binary()
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256Hex(bin); got != p.SHA256 {
			t.Errorf("For(%s).Binary() has SHA-256 %s, want %s", pkg, got, p.SHA256)
		}
	}
	if p := For(handlerbuild.DestinationHandler, "amd64"); p != nil {
		t.Errorf("For(destination, amd64) = %+v, want nil (only %s is prebuilt)", p, GOARCH)
	}
	if p := For("example.com/other", GOARCH); p != nil {
		t.Errorf("For(example.com/other) = %+v, want nil", p)
	}
}

// TestNoStrayFiles: the package's gzip files are exactly the manifest's; a
// stale binary would cost every module download for nothing.
func TestNoStrayFiles(t *testing.T) {
	m, err := ReadManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ManifestFile}
	for _, e := range m.Handlers {
		want = append(want, e.File)
	}
	got, err := filepath.Glob("*.gz")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, ManifestFile)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the package holds %q, the manifest names %q", got, want)
	}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSuffix(p, []byte("\n"))))
	return len(p), nil
}

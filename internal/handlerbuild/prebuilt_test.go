package handlerbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const helloPkg = "example.com/hello"

func sourceHash(t *testing.T, dir string) string {
	t.Helper()
	h, err := SourceHash(context.Background(), Options{Package: helloPkg, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fakePrebuilt is a "binary" that no compiler produced, so a test can tell
// an installed prebuilt from a local build.
func fakePrebuilt(source string) *Prebuilt {
	bin := []byte("prebuilt hello for " + source)
	sum := sha256.Sum256(bin)
	return &Prebuilt{SourceHash: source, Toolchain: "go1.0-test", SHA256: hex.EncodeToString(sum[:]),
		Binary: func() ([]byte, error) { return bin, nil }}
}

func TestSourceHashFollowsTheSourceNotItsPlace(t *testing.T) {
	// GIVEN the same module at two paths, and a copy with one edit
	a, b, edited := copyModule(t, "hello"), copyModule(t, "hello"), copyModule(t, "hello")
	main := filepath.Join(edited, "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, bytes.Replace(src, []byte(`"v1"`), []byte(`"v2"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}

	// THEN the two copies hash alike and the edited one differs
	ha, hb, he := sourceHash(t, a), sourceHash(t, b), sourceHash(t, edited)
	if ha != hb {
		t.Errorf("the same source at two paths hashes as %s and %s", ha, hb)
	}
	if he == ha {
		t.Errorf("editing main.go left the source hash at %s", ha)
	}
}

func TestPrebuiltIsInstalledForItsSource(t *testing.T) {
	// GIVEN a prebuilt binary made from the module's source
	dir, cache := copyModule(t, "hello"), t.TempDir()
	p := fakePrebuilt(sourceHash(t, dir))

	// WHEN the cache misses
	var progress strings.Builder
	r, err := BuildResult(context.Background(), Options{Package: helloPkg, Dir: dir, CacheDir: cache, Prebuilt: p, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}

	// THEN the entry holds the prebuilt bytes, nothing was built, and the
	// line says so and how to build instead
	bin, err := os.ReadFile(filepath.Join(r.Dir, BinaryName))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := p.Binary()
	if !r.Prebuilt || r.Cached || !bytes.Equal(bin, want) {
		t.Errorf("got %+v holding %d bytes, want the prebuilt bytes %q installed", r, len(bin), want)
	}
	if got := progress.String(); !strings.Contains(got, "prebuilt") || !strings.Contains(got, PrebuiltEnv+"=off") || strings.Contains(got, "building") {
		t.Errorf("progress = %q, want one line naming the prebuilt and %s=off", got, PrebuiltEnv)
	}

	// AND the next synth is a cache hit (from the index, without go list)
	again := mustBuild(t, Options{Package: helloPkg, Dir: dir, CacheDir: cache, Prebuilt: p})
	if !again.Cached || again.Dir != r.Dir {
		t.Errorf("second synth = %+v, want a cache hit on %s", again, r.Dir)
	}
}

func TestPrebuiltOfAnotherSourceIsNotUsed(t *testing.T) {
	// GIVEN a prebuilt binary whose source hash is not the module's
	dir := copyModule(t, "hello")
	p := fakePrebuilt(strings.Repeat("0", 64))

	// WHEN the cache misses
	var progress strings.Builder
	r, err := BuildResult(context.Background(), Options{Package: helloPkg, Dir: dir, CacheDir: t.TempDir(), Prebuilt: p, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}

	// THEN the handler is built from source, and the line says why
	bin := checkEntry(t, r.Dir, "arm64")
	if r.Prebuilt || bytes.Contains(bin, []byte("prebuilt hello")) {
		t.Errorf("got %+v, want a local build", r)
	}
	if got := progress.String(); !strings.Contains(got, "differ from the prebuilt") {
		t.Errorf("progress = %q, want the reason: the sources differ from the prebuilt one's", got)
	}
}

func TestPrebuiltOffBuildsFromSource(t *testing.T) {
	// GIVEN a matching prebuilt binary, and the user's switch
	dir := copyModule(t, "hello")
	p := fakePrebuilt(sourceHash(t, dir))
	t.Setenv(PrebuiltEnv, "off")

	// THEN it is built from source
	r := mustBuild(t, Options{Package: helloPkg, Dir: dir, CacheDir: t.TempDir(), Prebuilt: p})
	if bin := checkEntry(t, r.Dir, "arm64"); r.Prebuilt || bytes.Contains(bin, []byte("prebuilt hello")) {
		t.Errorf("got %+v with %s=off, want a local build", r, PrebuiltEnv)
	}

	// AND a value other than off is refused, naming it
	t.Setenv(PrebuiltEnv, "no")
	_, err := BuildResult(context.Background(), Options{Package: helloPkg, Dir: dir, CacheDir: t.TempDir(), Prebuilt: p})
	if err == nil || !strings.Contains(err.Error(), PrebuiltEnv) || !strings.Contains(err.Error(), `"no"`) {
		t.Errorf("err = %v, want one naming %s and \"no\"", err, PrebuiltEnv)
	}
}

func TestDamagedPrebuiltIsAnError(t *testing.T) {
	// GIVEN a matching prebuilt whose bytes are not the ones its SHA-256 names
	dir, cache := copyModule(t, "hello"), t.TempDir()
	p := fakePrebuilt(sourceHash(t, dir))
	p.Binary = func() ([]byte, error) { return []byte("tampered"), nil }

	// THEN Build fails naming both hashes, and leaves no entry
	_, err := BuildResult(context.Background(), Options{Package: helloPkg, Dir: dir, CacheDir: cache, Prebuilt: p, Progress: logWriter{t}})
	if err == nil || !strings.Contains(err.Error(), p.SHA256) {
		t.Fatalf("err = %v, want one naming the manifest's SHA-256 %s", err, p.SHA256)
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if e.Name() != "index" {
			t.Errorf("cache holds %s after a refused prebuilt", e.Name())
		}
	}
}

package handlerbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// copyModule copies a testdata module to a fresh directory, so a test can
// edit it and so builds from different paths can be compared. The copy is
// backdated (see backdate).
func copyModule(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatalf("copying testdata/%s: %v", name, err)
	}
	backdate(t, dst)
	return dst
}

// backdate sets the mtime of everything under dir an hour back. A key
// computed from inputs modified within modTimeCutoff is not recorded in the
// index, so without it no test right after a copy could reach the index.
func backdate(t testing.TB, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatalf("backdating %s: %v", dir, err)
	}
}

// treeHash hashes a directory the way the CDK fingerprints a SOURCE asset:
// relative paths and contents only.
func treeHash(t testing.TB, dir string) string {
	t.Helper()
	h := sha256.New()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		h.Write([]byte(rel + "\x00" + hex.EncodeToString(sum[:]) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func mustBuild(t testing.TB, opts Options) Result {
	t.Helper()
	if opts.Progress == nil {
		opts.Progress = logWriter{t}
	}
	r, err := BuildResult(context.Background(), opts)
	if err != nil {
		t.Fatalf("BuildResult(%+v): %v", opts, err)
	}
	return r
}

// logWriter sends progress lines to the test log instead of the test
// binary's standard error.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// checkEntry asserts the shape of a built directory and returns the binary.
func checkEntry(t testing.TB, dir, goarch string) []byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != BinaryName {
		t.Fatalf("%s holds %v, want only %s", dir, entries, BinaryName)
	}
	path := filepath.Join(dir, BinaryName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("%s has mode %v, want 0755", path, fi.Mode().Perm())
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64}[goarch]
	if f.Machine != want || f.OSABI != elf.ELFOSABI_NONE {
		t.Errorf("%s is for %v/%v, want %v (linux)", path, f.Machine, f.OSABI, want)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildIsReproducibleAndCached(t *testing.T) {
	for _, goarch := range []string{"arm64", "amd64"} {
		t.Run(goarch, func(t *testing.T) {
			// GIVEN the same module at two paths and two empty caches
			a, b := copyModule(t, "hello"), copyModule(t, "hello")
			cacheA, cacheB := t.TempDir(), t.TempDir()

			// WHEN each is built cold
			ra := mustBuild(t, Options{Package: "example.com/hello", GOARCH: goarch, Dir: a, CacheDir: cacheA})
			rb := mustBuild(t, Options{Package: "example.com/hello", GOARCH: goarch, Dir: b, CacheDir: cacheB})

			// THEN both built, with the same key, bytes and asset hash
			if ra.Cached || rb.Cached {
				t.Fatalf("cold builds reported Cached: %+v %+v", ra, rb)
			}
			binA, binB := checkEntry(t, ra.Dir, goarch), checkEntry(t, rb.Dir, goarch)
			if ra.Key != rb.Key {
				t.Errorf("keys differ across paths: %s vs %s", ra.Key, rb.Key)
			}
			if !bytes.Equal(binA, binB) {
				t.Errorf("binaries differ across paths (%d vs %d bytes)", len(binA), len(binB))
			}
			if ha, hb := treeHash(t, ra.Dir), treeHash(t, rb.Dir); ha != hb {
				t.Errorf("asset hashes differ: %s vs %s", ha, hb)
			}

			// WHEN built again into the first cache
			again := mustBuild(t, Options{Package: "example.com/hello", GOARCH: goarch, Dir: a, CacheDir: cacheA})

			// THEN it is a cache hit on the same directory
			if !again.Cached || again.Dir != ra.Dir {
				t.Errorf("second build = %+v, want a cache hit on %s", again, ra.Dir)
			}
		})
	}
}

func TestUserSettingsCannotChangeTheOutput(t *testing.T) {
	mod := copyModule(t, "hello")
	cache := t.TempDir()
	base := mustBuild(t, Options{Package: "example.com/hello", Dir: mod, CacheDir: cache})
	baseBin := checkEntry(t, base.Dir, "arm64")

	goenvFile := filepath.Join(t.TempDir(), "go.env")
	if err := os.WriteFile(goenvFile, []byte("GOFLAGS=-tags=hostile\nGOEXPERIMENT=nogreenteagc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"GOFLAGS tags and ldflags", map[string]string{"GOFLAGS": "-tags=hostile -ldflags=-X=main.version=hostile -mod=mod"}},
		{"GOFLAGS gcflags and race-free trimpath off", map[string]string{"GOFLAGS": "-gcflags=-N -trimpath=false"}},
		{"GOEXPERIMENT", map[string]string{"GOEXPERIMENT": "nogreenteagc"}},
		{"GOARM64 and GOAMD64", map[string]string{"GOARM64": "v9.0", "GOAMD64": "v3"}},
		{"go env file", map[string]string{"GOENV": goenvFile}},
		{"CGO_ENABLED and GOOS", map[string]string{"CGO_ENABLED": "1", "GOOS": "windows", "GOARCH": "386"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r := mustBuild(t, Options{Package: "example.com/hello", Dir: mod, CacheDir: cache})
			if r.Key != base.Key || !r.Cached {
				t.Errorf("with %v: key %s cached=%v, want the base key %s from the cache", tt.env, r.Key, r.Cached, base.Key)
			}
			// A fresh cache proves the build itself ignores the settings.
			fresh := mustBuild(t, Options{Package: "example.com/hello", Dir: mod, CacheDir: t.TempDir()})
			if bin := checkEntry(t, fresh.Dir, "arm64"); !bytes.Equal(bin, baseBin) {
				t.Errorf("with %v: the binary differs from the base build", tt.env)
			}
		})
	}
}

// keyWant is what an edit must do to the key.
type keyWant int

const (
	// indexHit: the index still holds and gives the same key.
	indexHit keyWant = iota
	// sameKey: the index no longer holds (the edit could have mattered),
	// and the recomputed key is the same.
	sameKey
	// newKey: the index no longer holds and the key changes, or go refuses
	// the module (which a build would too).
	newKey
)

func (w keyWant) String() string {
	return [...]string{"an index hit", "the same key, recomputed", "a new key"}[w]
}

type keyEdit struct {
	name    string
	file    string // relative to the copied module; "" edits nothing
	content string
	want    keyWant
}

func TestKeyFollowsTheSources(t *testing.T) {
	mainGo, err := os.ReadFile("testdata/hello/main.go")
	if err != nil {
		t.Fatal(err)
	}
	testKeyEdits(t, "hello", ".", "example.com/hello", []keyEdit{
		{"nothing", "", "", indexHit},
		{"a source file", "main.go", "package main\n\nimport \"fmt\"\n\nvar version = \"v2\"\n\nfunc main() { fmt.Println(version, tagged) }\n", newKey},
		{"a source file rewritten unchanged", "main.go", string(mainGo), indexHit},
		{"a new source file", "extra.go", "package main\n\nvar extra = 1\n", newKey},
		{"go.mod", "go.mod", "module example.com/hello\n\ngo 1.25.0\n", newKey},
		{"a new go.sum", "go.sum", "golang.org/x/text v0.3.0/go.mod h1:NqM8EUOU14njkJ3fqMW+pc6Ldnwhi/IjpwHt7yyuwOQ=\n", newKey},
		{"a new go.work", "go.work", "go 1.26.0\n\nuse .\n", newKey},
		// hello has no dependencies: an empty vendor directory is consistent
		// with it and vendors nothing.
		{"a new vendor directory", "vendor/modules.txt", "", sameKey},
		{"a file excluded by build tags", "tag_on.go", "//go:build hostile\n\npackage main\n\nconst tagged = \"other\"\n", sameKey},
		{"a file excluded by build tags loses its constraint", "tag_on.go", "package main\n\nconst other = 1\n", newKey},
		{"a non-Go file", "README.md", "edited\n", indexHit},
		{"a new non-Go file", "NOTES.md", "new\n", sameKey},
		{"a test file", "main_test.go", "package main\n", sameKey},
	})
}

func TestKeyFollowsDependencies(t *testing.T) {
	testKeyEdits(t, "deps", "app", "example.com/app", []keyEdit{
		{"nothing", "", "", indexHit},
		{"a nested package's file", "app/internal/a/b/b.go", "package b\n\nconst B = \"c\"\n", newKey},
		{"a new file in a nested package", "app/internal/a/b/c.go", "package b\n\nconst C = 1\n", newKey},
		{"a go.mod between a package and its module root", "app/internal/a/go.mod", "module example.com/app/internal/a\n", newKey},
		{"a non-Go file between a package and its module root", "app/internal/a/NOTES.md", "new\n", indexHit},
		{"a replaced module's file", "lib/lib.go", "package lib\n\nconst L = \"v2\"\n\nfunc Count() int { return 0 }\n", newKey},
		{"a new file in a replaced module", "lib/more.go", "package lib\n\nconst M = 1\n", newKey},
		{"a replaced module's go.mod", "lib/go.mod", "module example.com/lib\n\ngo 1.25.0\n", newKey},
		{"an embedded file", "lib/data/one.txt", "uno\n", newKey},
		{"a new file under an embedded directory", "lib/data/two.txt", "two\n", newKey},
		{"a new file in a new directory under an embedded directory", "lib/data/sub/three.txt", "three\n", newKey},
		{"a new vendor directory", "app/vendor/modules.txt", "", newKey},
		{"the go.mod of a replaced module without packages", "other/go.mod", "module example.com/other\n\ngo 1.26.0\n\n// edited\n", sameKey},
	})
}

// testKeyEdits copies testdata/<module>, and for each edit checks that the
// index serves the unedited copy, and that after the edit the key is the
// one a computation without the index finds, reached as edit.want says.
func testKeyEdits(t *testing.T, module, dir, pkg string, edits []keyEdit) {
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			root := copyModule(t, module)
			opts := Options{Package: pkg, Dir: filepath.Join(root, dir), CacheDir: t.TempDir()}
			before, fromIndex, err := resolveKey(t, opts)
			if err != nil || fromIndex {
				t.Fatalf("first key: %v (from the index: %v), want a computed key", err, fromIndex)
			}
			if again, fromIndex, err := resolveKey(t, opts); err != nil || !fromIndex || again != before {
				t.Fatalf("second key %s (from the index: %v, err %v), want %s from the index", again, fromIndex, err, before)
			}
			if e.file != "" {
				path := filepath.Join(root, e.file)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(e.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			after, fromIndex, err := resolveKey(t, opts)
			fresh := opts
			fresh.CacheDir = t.TempDir()
			computed, _, cerr := resolveKey(t, fresh)
			if (err == nil) != (cerr == nil) || after != computed {
				t.Fatalf("after the edit the index gives %q (%v), a computation without it %q (%v)", after, err, computed, cerr)
			}
			var got keyWant
			switch {
			case err != nil:
				got = newKey // go refuses the edited module
			case fromIndex:
				got = indexHit
			case after == before:
				got = sameKey
			default:
				got = newKey
			}
			if got != e.want {
				t.Errorf("editing %s: got %v, want %v (key err: %v)", e.file, got, e.want, err)
			}
		})
	}
}

// resolveKey resolves the key as BuildResult does and, as BuildResult does
// once the entry exists, records the index; it reports whether the key
// came from the index.
func resolveKey(t testing.TB, opts Options) (key string, fromIndex bool, err error) {
	t.Helper()
	b, err := newBuilder(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	key, err = b.key(context.Background())
	if err != nil {
		return "", false, err
	}
	if err := b.recordIndex(); err != nil {
		t.Fatalf("recording the index: %v", err)
	}
	return key, b.index == indexVerified, nil
}

func TestKeyFollowsTheToolchain(t *testing.T) {
	opts := Options{Package: "example.com/hello", Dir: copyModule(t, "hello"), CacheDir: t.TempDir()}
	before, _, err := resolveKey(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The go command on PATH selecting another toolchain (a new install,
	// GOTOOLCHAIN, a toolchain line) shows in its go env.
	b, err := newBuilder(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	b.goenv["GOVERSION"] = "go1.99.0"
	after, err := b.key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b.index != indexAbsent || after == before {
		t.Errorf("with another GOVERSION: key %s (index state %d), want a new key computed without the index", after, b.index)
	}
}

func TestRecentEditsAreNotIndexed(t *testing.T) {
	// GIVEN a module with a file modified just now
	mod := copyModule(t, "hello")
	now := time.Now()
	if err := os.Chtimes(filepath.Join(mod, "main.go"), now, now); err != nil {
		t.Fatal(err)
	}
	opts := Options{Package: "example.com/hello", Dir: mod, CacheDir: t.TempDir()}

	// WHEN the key is resolved twice
	first, _, err := resolveKey(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, fromIndex, err := resolveKey(t, opts)
	if err != nil {
		t.Fatal(err)
	}

	// THEN the first computation was not recorded: the file could have
	// changed between `go list` and hashing
	if fromIndex || second != first {
		t.Errorf("second key %s from the index: %v, want %s computed again", second, fromIndex, first)
	}
	// AND once the edit is older than the cutoff, the index is recorded
	backdate(t, mod)
	if _, _, err := resolveKey(t, opts); err != nil {
		t.Fatal(err)
	}
	if k, fromIndex, err := resolveKey(t, opts); err != nil || !fromIndex || k != first {
		t.Errorf("key %s from the index: %v (%v), want %s from the index", k, fromIndex, err, first)
	}
}

func TestColdBuildIsAnnounced(t *testing.T) {
	mod := copyModule(t, "hello")
	cache := t.TempDir()
	var progress bytes.Buffer
	opts := Options{Package: "example.com/hello", GOARCH: "amd64", Dir: mod, CacheDir: cache, Progress: &progress}

	// WHEN the first build is a miss
	r := mustBuild(t, opts)

	// THEN it says so when it starts and when it is done
	lines := strings.Split(strings.TrimSuffix(progress.String(), "\n"), "\n")
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "crossaccountami: building the handler example.com/hello (linux/amd64, go") ||
		!strings.HasSuffix(lines[0], ", first synth on this machine)...") ||
		!strings.HasPrefix(lines[1], "crossaccountami: built the handler example.com/hello in ") ||
		!strings.HasSuffix(lines[1], "s (cached in "+r.Dir+")") {
		t.Errorf("a cold build printed:\n%s", progress.String())
	}

	// WHEN the next build is a hit THEN it prints nothing
	progress.Reset()
	if r := mustBuild(t, opts); !r.Cached || progress.Len() != 0 {
		t.Errorf("a cache hit (cached: %v) printed %q, want nothing", r.Cached, progress.String())
	}

	// WHEN a source changes THEN the miss says why
	if err := os.WriteFile(filepath.Join(mod, "extra.go"), []byte("package main\n\nvar extra = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mustBuild(t, opts); r.Cached || !strings.Contains(progress.String(), "(linux/amd64, go") ||
		!strings.Contains(progress.String(), ", its sources changed since the last build)...\n") {
		t.Errorf("a build after an edit (cached: %v) printed:\n%s", r.Cached, progress.String())
	}
}

func TestProgressGoesToStderrOnly(t *testing.T) {
	stdout, stderr := captureFile(t, &os.Stdout), captureFile(t, &os.Stderr)
	r, err := BuildResult(context.Background(), Options{Package: "example.com/hello", Dir: "testdata/hello", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if out := stdout(); out != "" {
		t.Errorf("the build wrote to standard output: %q", out)
	}
	if errOut := stderr(); !strings.Contains(errOut, "crossaccountami: building the handler example.com/hello") ||
		!strings.Contains(errOut, "(cached in "+r.Dir+")") {
		t.Errorf("standard error got %q, want the progress lines", errOut)
	}
}

// captureFile points *f at a temporary file until the test ends, and
// returns a function that reads what was written to it.
func captureFile(t *testing.T, f **os.File) func() string {
	t.Helper()
	tmp, err := os.Create(filepath.Join(t.TempDir(), "capture"))
	if err != nil {
		t.Fatal(err)
	}
	orig := *f
	*f = tmp
	t.Cleanup(func() { *f = orig; tmp.Close() })
	return func() string {
		b, err := os.ReadFile(tmp.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

func TestBuildFailsLoudly(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"compile error", Options{Package: "example.com/broken", Dir: "testdata/broken"},
			[]string{"go build -trimpath -buildvcs=false -tags lambda.norpc", "GOARCH=arm64", "example.com/broken", "undefined: undefinedFunction"}},
		{"unknown package", Options{Package: "example.com/broken/nothere", Dir: "testdata/broken"},
			[]string{"go list -deps", "example.com/broken/nothere"}},
		{"unsupported GOARCH", Options{Package: "example.com/broken", GOARCH: "386", Dir: "testdata/broken"},
			[]string{"Options.GOARCH", `"386"`}},
		{"no package", Options{Dir: "testdata/broken"}, []string{"Options.Package"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.CacheDir = t.TempDir()
			tt.opts.Progress = logWriter{t}
			_, err := Build(context.Background(), tt.opts)
			if err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if entries, _ := os.ReadDir(tt.opts.CacheDir); len(entries) != 0 {
				t.Errorf("failed build left %v in the cache", entries)
			}
		})
	}
}

func TestMustBuildPanicsWithTheCompilerOutput(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !strings.Contains(err.Error(), "undefined: undefinedFunction") {
			t.Errorf("MustBuild panicked with %v, want the compiler error", r)
		}
	}()
	MustBuild(Options{Package: "example.com/broken", Dir: "testdata/broken", CacheDir: t.TempDir(), Progress: logWriter{t}})
	t.Error("MustBuild returned")
}

func TestConcurrentBuildsOfOneKey(t *testing.T) {
	mod := copyModule(t, "hello")
	cache := t.TempDir()
	const n = 2
	results := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = BuildResult(context.Background(), Options{Package: "example.com/hello", Dir: mod, CacheDir: cache, Progress: logWriter{t}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
	}
	if results[0].Dir != results[1].Dir {
		t.Errorf("builds returned %s and %s", results[0].Dir, results[1].Dir)
	}
	if a, b := checkEntry(t, results[0].Dir, "arm64"), checkEntry(t, results[1].Dir, "arm64"); !bytes.Equal(a, b) {
		t.Error("builds returned different content")
	}
	// Only the entry and the index, no staging or temporary leftovers.
	if entries, _ := os.ReadDir(cache); len(entries) != 2 ||
		entries[0].Name() != results[0].Key || entries[1].Name() != "index" {
		t.Errorf("cache holds %v, want only the entry %s and index/", entries, results[0].Key)
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "index")); len(entries) != 1 || filepath.Ext(entries[0].Name()) != ".json" {
		t.Errorf("cache index holds %v, want one manifest", entries)
	}
}

func TestBuildWritesNothingIntoTheSource(t *testing.T) {
	mod := copyModule(t, "hello")
	before := treeHash(t, mod)
	mustBuild(t, Options{Package: "example.com/hello", Dir: mod, CacheDir: t.TempDir()})
	if after := treeHash(t, mod); after != before {
		t.Error("the build changed the module's directory")
	}
}

func TestCacheRootDefault(t *testing.T) {
	root := t.TempDir()
	t.Setenv(CacheDirEnv, root)
	r := mustBuild(t, Options{Package: "example.com/hello", Dir: "testdata/hello"})
	if r.Dir != filepath.Join(root, r.Key) {
		t.Errorf("Dir = %s, want %s/<key>", r.Dir, root)
	}
}

func TestCorruptEntryIsAnError(t *testing.T) {
	cache := t.TempDir()
	r := mustBuild(t, Options{Package: "example.com/hello", Dir: "testdata/hello", CacheDir: cache})
	if err := os.WriteFile(filepath.Join(r.Dir, "stray"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), Options{Package: "example.com/hello", Dir: "testdata/hello", CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), "stray") || !strings.Contains(err.Error(), r.Dir) {
		t.Errorf("Build with a stray file in the entry: %v, want an error naming it", err)
	}
}

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
)

// copyModule copies a testdata module to a fresh directory, so a test can
// edit it and so builds from different paths can be compared.
func copyModule(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatalf("copying testdata/%s: %v", name, err)
	}
	return dst
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
	r, err := BuildResult(context.Background(), opts)
	if err != nil {
		t.Fatalf("BuildResult(%+v): %v", opts, err)
	}
	return r
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

func TestKeyFollowsTheSources(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		content string
		changes bool
	}{
		{"a source file", "main.go", "package main\n\nimport \"fmt\"\n\nvar version = \"v2\"\n\nfunc main() { fmt.Println(version, tagged) }\n", true},
		{"a new source file", "extra.go", "package main\n\nvar extra = 1\n", true},
		{"go.mod", "go.mod", "module example.com/hello\n\ngo 1.25.0\n", true},
		{"a file excluded by build tags", "tag_on.go", "//go:build hostile\n\npackage main\n\nconst tagged = \"other\"\n", false},
		{"a non-Go file", "README.md", "edited\n", false},
		{"a test file", "main_test.go", "package main\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mod := copyModule(t, "hello")
			opts := Options{Package: "example.com/hello", Dir: mod, CacheDir: t.TempDir()}
			before := keyOf(t, opts)
			if err := os.WriteFile(filepath.Join(mod, tt.file), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			after := keyOf(t, opts)
			if (before != after) != tt.changes {
				t.Errorf("editing %s: key changed = %v, want %v", tt.file, before != after, tt.changes)
			}
		})
	}
}

func keyOf(t testing.TB, opts Options) string {
	t.Helper()
	b, err := newBuilder(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	k, err := b.key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k
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
	MustBuild(Options{Package: "example.com/broken", Dir: "testdata/broken", CacheDir: t.TempDir()})
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
			results[i], errs[i] = BuildResult(context.Background(), Options{Package: "example.com/hello", Dir: mod, CacheDir: cache})
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
	if entries, _ := os.ReadDir(cache); len(entries) != 1 {
		t.Errorf("cache holds %v, want only the entry (no staging leftovers)", entries)
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

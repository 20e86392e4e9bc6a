package handlerbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// # The index
//
// Computing the key needs `go list -deps`, which costs about 60 ms for a
// handler that imports the AWS SDK: more than everything else a cache hit
// does. The index spares it. cacheRoot/index/<index key>.json is the
// manifest of the last full computation of the key in one configuration:
// the key, and every input of `go list` and of the key that can change in
// place, each with the SHA-256 of its content (or of its directory's
// listing). A later synth in the same configuration reuses the key when
// every recorded hash still matches, and computes it again otherwise.
//
// The index key names the configuration, everything the manifest does not
// verify: the format, the absolute directory `go` runs in, the package, the
// whole `go env` the builder read (the toolchain's GOVERSION, GOROOT, GOMOD,
// GOWORK, GOFLAGS, GOMODCACHE, ...), the forced settings and the flags.
//
// The manifest verifies (see computeKey): GOROOT/go.env; the main module's
// go.mod and go.sum; go.work and go.work.sum; vendor/modules.txt (absent or
// not); the go.mod of every workspace module and directory replacement; and
// for every package outside the module cache, its files (including those
// build constraints exclude today), its directory's listing, the directories
// its //go:embed patterns reach, and the absence of go.mod between it and
// its module's root. Packages in the module cache need nothing: their
// path@version comes from the verified go.mod/go.sum/go.work files, and a
// module version in the cache is immutable.
//
// Contents are compared by hash, not by mtime and size: verifying the grant
// handler's manifest (18 files including go.sum, 12 directories) takes about
// 0.6 ms, and a hash cannot be fooled by an edit within the file system's
// timestamp granularity, by a tool that restores mtimes, nor defeated by a
// checkout that only touches files. mtimes serve only to refuse recording a
// manifest that might be torn (see modTimeCutoff).
//
// Why the toolchain comes from `go env` (run by newBuilder on every synth)
// and not from runtime.Version(): runtime.Version() is the compiler that
// built the synth process, while the handler is built by the `go` command on
// PATH, which may be a different installation, or switch to another
// toolchain because of GOTOOLCHAIN or the go/toolchain lines of go.mod and
// go.work. Only that go command can say which toolchain it selects. Asking
// it is one process start, 3.5 to 5 ms here (two starts when it switches
// toolchains), and the build needs that `go env` anyway for GOMOD, GOFLAGS
// and the module settings; deriving the toolchain without it would mean
// reimplementing the go command's toolchain selection.

// manifest is an index file.
type manifest struct {
	Format string    `json:"format"`
	Key    string    `json:"key"`
	Files  []watched `json:"files"`
	Dirs   []watched `json:"dirs"`
}

// watched is a file (SHA-256 of its content) or a directory (SHA-256 of its
// listing); "" records that it does not exist.
type watched struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// indexState says what the index knew when the key was resolved.
type indexState int

const (
	indexAbsent   indexState = iota // no manifest for this configuration
	indexStale                      // a manifest whose inputs changed
	indexVerified                   // the key came from the index
)

// indexPath is the manifest's path for this builder's configuration.
func (b *builder) indexPath() (string, error) {
	dir, err := filepath.Abs(b.dir)
	if err != nil {
		return "", fmt.Errorf("handlerbuild: resolving Options.Dir %s: %w", b.dir, err)
	}
	w := keyWriter{sha256.New()}
	w.field("format", keyFormat)
	w.field("dir", dir)
	w.field("package", b.pkg)
	names := make([]string, 0, len(b.goenv))
	for name := range b.goenv {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w.field("goenv", name, b.goenv[name])
	}
	for _, kv := range b.forced {
		w.field("env", kv)
	}
	w.field("flags", strings.Join(buildFlags, "\x00"))
	if p := b.prebuilt; p != nil {
		w.field("prebuilt", p.SourceHash, p.Toolchain, p.SHA256)
	}
	return filepath.Join(b.cacheRoot, "index", hex.EncodeToString(w.h.Sum(nil))+".json"), nil
}

// key returns the cache key: from the index when its manifest still holds,
// else computed with `go list` (the manifest is then kept in b.pending, for
// recordIndex once the entry exists).
func (b *builder) key(ctx context.Context) (string, error) {
	path, err := b.indexPath()
	if err != nil {
		return "", err
	}
	b.index = indexAbsent
	if m, err := readManifest(path); err == nil {
		b.index = indexStale
		if m.holds() {
			b.index = indexVerified
			return m.Key, nil
		}
	}
	// An unreadable or corrupt manifest is only a slower synth: the key is
	// computed again and the manifest rewritten.
	key, s, err := b.computeKey(ctx)
	if err != nil {
		return "", err
	}
	b.source = s.source
	if !s.racy {
		b.pending = &s.m
	}
	return key, nil
}

func readManifest(path string) (*manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m.Format != keyFormat || m.Key == "" {
		return nil, errors.New("not a manifest of this format")
	}
	return &m, nil
}

// holds reports whether every watched file and directory still hashes as
// recorded. Any error (a file that became unreadable, say) is a mismatch:
// the full computation will report it properly.
func (m *manifest) holds() bool {
	for _, d := range m.Dirs {
		sum, _, _, err := hashDir(d.Path)
		if err != nil || sum != d.SHA256 {
			return false
		}
	}
	for _, f := range m.Files {
		sum, _, err := hashFile(f.Path)
		if err != nil || sum != f.SHA256 {
			return false
		}
	}
	return true
}

// recordIndex writes the manifest of a full key computation, once the
// cache entry it leads to exists. It writes a temporary file and renames
// it, so a concurrent synth reads either manifest whole; both are valid.
// Nothing is written after an index hit, or when the computation saw an
// input change under it.
func (b *builder) recordIndex() error {
	if b.pending == nil {
		return nil
	}
	path, err := b.indexPath()
	if err != nil {
		return err
	}
	data, err := json.Marshal(b.pending)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	b.pending = nil
	return nil
}

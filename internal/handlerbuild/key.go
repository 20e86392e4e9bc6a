package handlerbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// keyFormat changes whenever the build recipe or the cache's layout
// changes, so old entries are never reused for a different recipe. It is
// hashed into both the key and the index key.
//
// v2: the cache root holds index/, which maps the state of a build's inputs
// to its key (see index.go).
// v3: an entry may hold a prebuilt binary (see prebuilt.go); the key names
// the prebuilt offered.
const keyFormat = "crossaccountami/handlerbuild/v3"

// listFields are the `go list -json` fields the key and the index read.
var listFields = []string{
	"ImportPath", "Dir", "Standard", "Module",
	"GoFiles", "CgoFiles", "CFiles", "CXXFiles", "MFiles", "HFiles", "FFiles",
	"SFiles", "SwigFiles", "SwigCXXFiles", "SysoFiles", "EmbedFiles",
	"IgnoredGoFiles", "IgnoredOtherFiles", "EmbedPatterns",
}

type listModule struct {
	Path      string
	Version   string
	Main      bool
	Dir       string
	GoMod     string
	GoVersion string
	Replace   *listModule
}

type listPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	Module     *listModule

	GoFiles, CgoFiles, CFiles, CXXFiles, MFiles, HFiles, FFiles,
	SFiles, SwigFiles, SwigCXXFiles, SysoFiles, EmbedFiles []string

	// Files that build constraints exclude today: an edit can bring them
	// in, so the index watches them although the key does not hash them.
	IgnoredGoFiles, IgnoredOtherFiles []string
	EmbedPatterns                     []string
}

// files are the package's files that go into the build.
func (p *listPackage) files() []string {
	var all []string
	for _, l := range [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.CXXFiles, p.MFiles, p.HFiles,
		p.FFiles, p.SFiles, p.SwigFiles, p.SwigCXXFiles, p.SysoFiles, p.EmbedFiles} {
		all = append(all, l...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// keyWriter writes length-prefixed fields, so no two different sequences of
// fields hash alike.
type keyWriter struct{ h hash.Hash }

func (w keyWriter) field(parts ...string) {
	for _, p := range parts {
		io.WriteString(w.h, strconv.Itoa(len(p)))
		io.WriteString(w.h, ":")
		io.WriteString(w.h, p)
	}
	io.WriteString(w.h, "\n")
}

// modTimeCutoff is how recently an input may have changed before a full key
// computation for its manifest to be distrusted. The key is computed from
// `go list` output and from file reads made after it; a file created, edited
// or removed between the two would leave a manifest that agrees with the
// disk but not with the key. (A file read before `go list`, like go.mod,
// that changes before `go list` reads it leaves a manifest that disagrees
// with the disk: the next synth recomputes, which is safe.) Any such change sets the file's (or its
// directory's) mtime to after the computation started, minus the file
// system's timestamp granularity (up to 2 s on FAT; cmd/go's module index
// uses the same cutoff). The key itself is still returned; only the index is
// not written, so the next synth computes the key again.
const modTimeCutoff = 2 * time.Second

// keyState is one full computation of the key: the hash, and the manifest
// of every input it read, which the index verifies on later synths.
type keyState struct {
	w      keyWriter
	m      manifest
	seen   map[string]bool // paths already in the manifest
	cutoff time.Time       // inputs modified after it make the manifest racy
	racy   bool

	src    *sourceWriter // the source hash's writer, when asked for
	source string        // the source hash, once computed
}

func newKeyState(start time.Time) *keyState {
	return &keyState{w: keyWriter{sha256.New()}, seen: map[string]bool{}, cutoff: start.Add(-modTimeCutoff)}
}

// watchFile records path's content hash in the manifest and returns it; ""
// means the file does not exist.
func (s *keyState) watchFile(path string) (string, error) {
	sum, mtime, err := hashFile(path)
	if err != nil {
		return "", err
	}
	if !mtime.IsZero() && mtime.After(s.cutoff) {
		s.racy = true
	}
	if !s.seen[path] {
		s.seen[path] = true
		s.m.Files = append(s.m.Files, watched{Path: path, SHA256: sum})
	}
	return sum, nil
}

// file hashes a file's content into the key under name (a missing file
// hashes as absent) and watches it.
func (s *keyState) file(name, path string) error {
	sum, err := s.watchFile(path)
	if err != nil {
		return err
	}
	if sum == "" {
		s.w.field("absent", name)
	} else {
		s.w.field("file", name, sum)
	}
	return nil
}

// watchDir records the hash of dir's listing in the manifest, so a file
// added to or removed from it invalidates the index, and returns the
// listing. A missing directory is recorded as "".
func (s *keyState) watchDir(dir string) ([]os.DirEntry, error) {
	sum, entries, mtime, err := hashDir(dir)
	if err != nil {
		return nil, err
	}
	if !mtime.IsZero() && mtime.After(s.cutoff) {
		s.racy = true
	}
	key := dir + string(filepath.Separator)
	if !s.seen[key] {
		s.seen[key] = true
		s.m.Dirs = append(s.m.Dirs, watched{Path: dir, SHA256: sum})
	}
	return entries, nil
}

// hashFile returns the SHA-256 of path's content and its mtime, or "" and
// a zero time when it does not exist.
func hashFile(path string) (string, time.Time, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", time.Time{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", time.Time{}, err
	}
	return hex.EncodeToString(h.Sum(nil)), fi.ModTime(), nil
}

// hashDir returns the SHA-256 of dir's listing (names, with a trailing
// slash for directories), the listing, and dir's mtime; "" and a zero time
// when dir does not exist.
func hashDir(dir string) (string, []os.DirEntry, time.Time, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, time.Time{}, nil
	}
	if err != nil {
		return "", nil, time.Time{}, err
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return "", nil, time.Time{}, err
	}
	w := keyWriter{sha256.New()}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		w.field(name)
	}
	return hex.EncodeToString(w.h.Sum(nil)), entries, fi.ModTime(), nil
}

// computeKey computes the cache key, everything that determines the binary,
// with `go list`, and the manifest of the inputs it depends on.
func (b *builder) computeKey(ctx context.Context) (string, *keyState, error) {
	s := newKeyState(time.Now())
	if b.wantSource || b.prebuilt != nil {
		src := newSourceWriter(b)
		s.src = &src
	}
	w := s.w
	w.field("format", keyFormat)
	w.field("goversion", b.goenv["GOVERSION"])
	w.field("package", b.pkg)
	if p := b.prebuilt; p != nil {
		// The entry may hold this binary instead of a local build: which
		// one is decided from the sources hashed below and these fields.
		w.field("prebuilt", p.SourceHash, p.Toolchain, p.SHA256)
	}
	for _, kv := range b.forced {
		// GOFLAGS holds only -mod and -modcacherw: they choose how go.mod is
		// read, and what it resolves to is hashed below.
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			w.field("env", kv)
		}
	}
	w.field("flags", strings.Join(buildFlags, "\x00"))
	if root := b.goenv["GOROOT"]; root != "" {
		if err := s.file("GOROOT/go.env", filepath.Join(root, "go.env")); err != nil {
			return "", nil, fmt.Errorf("handlerbuild: hashing the toolchain's go.env: %w", err)
		}
	}
	gomod := b.goenv["GOMOD"]
	if gomod == os.DevNull {
		gomod = ""
	}
	if gomod != "" {
		for _, f := range []string{gomod, strings.TrimSuffix(gomod, ".mod") + ".sum"} {
			if err := s.file("main/"+filepath.Base(f), f); err != nil {
				return "", nil, fmt.Errorf("handlerbuild: hashing the main module's %s: %w", f, err)
			}
		}
	}
	gowork := b.goenv["GOWORK"]
	if gowork == "off" {
		gowork = ""
	}
	if gowork != "" {
		for _, f := range []string{gowork, gowork + ".sum"} {
			if err := s.file("work/"+filepath.Base(f), f); err != nil {
				return "", nil, fmt.Errorf("handlerbuild: hashing the workspace's %s: %w", f, err)
			}
		}
	}

	args := []string{"list", "-deps", "-json=" + strings.Join(listFields, ","), b.pkg}
	out, err := b.run(ctx, args...)
	if err != nil {
		return "", nil, err
	}
	modcache := b.goenv["GOMODCACHE"]
	hashedGoMod := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return "", nil, fmt.Errorf("handlerbuild: decoding `go list` output: %w", err)
		}
		if err := b.hashPackage(s, &p, modcache, hashedGoMod); err != nil {
			return "", nil, err
		}
		if s.src != nil {
			if err := s.src.pkg(&p); err != nil {
				return "", nil, err
			}
		}
	}
	if err := b.watchModuleGraph(ctx, s, gomod, gowork); err != nil {
		return "", nil, err
	}
	key := hex.EncodeToString(w.h.Sum(nil))
	s.m.Format, s.m.Key = keyFormat, key
	if s.src != nil {
		s.source = s.src.sum()
	}
	return key, s, nil
}

func (b *builder) hashPackage(s *keyState, p *listPackage, modcache string, hashedGoMod map[string]bool) error {
	w := s.w
	if p.Standard {
		w.field("std", p.ImportPath) // content fixed by GOVERSION
		return nil
	}
	if m := p.Module; m != nil && !m.Main && inModCache(p.Dir, modcache) {
		eff := m
		if m.Replace != nil {
			eff = m.Replace
		}
		if eff.Version != "" {
			// A module version in the module cache is immutable and
			// verified against go.sum.
			w.field("modpkg", p.ImportPath, m.Path+"@"+m.Version, eff.Path+"@"+eff.Version)
			return nil
		}
	}
	// Source that can change in place: hash every file of the build.
	w.field("srcpkg", p.ImportPath)
	for _, name := range p.files() {
		if err := s.file(name, filepath.Join(p.Dir, name)); err != nil {
			return fmt.Errorf("handlerbuild: hashing package %s: %w", p.ImportPath, err)
		}
	}
	if err := b.watchPackage(s, p); err != nil {
		return fmt.Errorf("handlerbuild: watching package %s: %w", p.ImportPath, err)
	}
	if m := p.Module; m != nil {
		gomod := m.GoMod
		if m.Replace != nil && m.Replace.GoMod != "" {
			gomod = m.Replace.GoMod
		}
		if gomod != "" && !hashedGoMod[gomod] {
			hashedGoMod[gomod] = true
			if err := s.file(m.Path+"/go.mod", gomod); err != nil {
				return fmt.Errorf("handlerbuild: hashing module %s's go.mod: %w", m.Path, err)
			}
		}
	}
	return nil
}

// watchPackage adds to the manifest what could change a source package
// without changing a file the key hashed: a file that build constraints
// exclude today, a file added to its directory, a file added under one of
// its //go:embed patterns, and a go.mod created between the package and its
// module's root (which would move the package into another module).
func (b *builder) watchPackage(s *keyState, p *listPackage) error {
	for _, name := range slices.Concat(p.IgnoredGoFiles, p.IgnoredOtherFiles) {
		if _, err := s.watchFile(filepath.Join(p.Dir, name)); err != nil {
			return err
		}
	}
	if _, err := s.watchDir(p.Dir); err != nil {
		return err
	}
	for _, pattern := range p.EmbedPatterns {
		if err := watchEmbed(s, p.Dir, pattern); err != nil {
			return err
		}
	}
	if m := p.Module; m != nil {
		root := m.Dir
		if m.Replace != nil && m.Replace.Dir != "" {
			root = m.Replace.Dir
		}
		if root != "" && root != p.Dir {
			if rel, err := filepath.Rel(root, p.Dir); err == nil && filepath.IsLocal(rel) {
				for d := filepath.Dir(p.Dir); d != root && len(d) > len(root); d = filepath.Dir(d) {
					if _, err := s.watchFile(filepath.Join(d, "go.mod")); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// watchEmbed watches every directory a //go:embed pattern could reach: the
// whole tree under the pattern's leading literal path, since a glob may
// match a directory and embed it recursively. It does not descend into
// another module (a directory holding go.mod), which embedding cannot
// cross; that directory's own listing is watched, so removing its go.mod
// is seen.
func watchEmbed(s *keyState, pkgDir, pattern string) error {
	pattern = strings.TrimPrefix(pattern, "all:")
	var lit []string
	for _, elem := range strings.Split(pattern, "/") {
		if strings.ContainsAny(elem, `*?[\`) {
			break
		}
		lit = append(lit, elem)
	}
	start := filepath.Join(append([]string{pkgDir}, lit...)...)
	if fi, err := os.Stat(start); err != nil || !fi.IsDir() {
		// A literal file is in EmbedFiles, whose content the key hashes;
		// a missing path fails the build.
		return nil
	}
	var walk func(dir string, top bool) error
	walk = func(dir string, top bool) error {
		entries, err := s.watchDir(dir)
		if err != nil {
			return err
		}
		if !top && slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "go.mod" }) {
			return nil
		}
		for _, e := range entries {
			if e.IsDir() {
				if err := walk(filepath.Join(dir, e.Name()), false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(start, true)
}

// watchModuleGraph watches the files that choose module versions without
// being hashed: the go.mod files of directory replacements and workspace
// modules (the minimal version selection reads their requirements even when
// they provide no package of the build), and vendor/modules.txt (whose
// appearance switches the build to the vendor directory). The key does not
// need them: `go list` already reports what they resolve to.
func (b *builder) watchModuleGraph(ctx context.Context, s *keyState, gomod, gowork string) error {
	var modFiles []string
	if gomod != "" {
		modFiles = append(modFiles, gomod)
		if _, err := s.watchFile(filepath.Join(filepath.Dir(gomod), "vendor", "modules.txt")); err != nil {
			return err
		}
	}
	if gowork != "" {
		if _, err := s.watchFile(filepath.Join(filepath.Dir(gowork), "vendor", "modules.txt")); err != nil {
			return err
		}
		var work struct {
			Use     []struct{ DiskPath string }
			Replace []modReplace
		}
		if err := b.editJSON(ctx, &work, "work", gowork); err != nil {
			return err
		}
		for _, u := range work.Use {
			mod := filepath.Join(resolveFrom(gowork, u.DiskPath), "go.mod")
			if _, err := s.watchFile(mod); err != nil {
				return err
			}
			modFiles = append(modFiles, mod)
		}
		if err := watchReplacements(s, gowork, work.Replace); err != nil {
			return err
		}
	}
	for _, mod := range modFiles {
		var m struct{ Replace []modReplace }
		if err := b.editJSON(ctx, &m, "mod", mod); err != nil {
			return err
		}
		if err := watchReplacements(s, mod, m.Replace); err != nil {
			return err
		}
	}
	return nil
}

type modReplace struct {
	New struct{ Path, Version string }
}

// watchReplacements watches the go.mod of every directory replacement (one
// without a version) that the file from declares.
func watchReplacements(s *keyState, from string, rs []modReplace) error {
	for _, r := range rs {
		if r.New.Version == "" {
			if _, err := s.watchFile(filepath.Join(resolveFrom(from, r.New.Path), "go.mod")); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolveFrom resolves a path written in file from (go.mod or go.work),
// which is relative to that file's directory.
func resolveFrom(from, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(from), path)
}

// editJSON decodes `go mod edit -json file` or `go work edit -json file`,
// which parse a go.mod or go.work without loading any module.
func (b *builder) editJSON(ctx context.Context, v any, cmd, file string) error {
	out, err := b.run(ctx, cmd, "edit", "-json", file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("handlerbuild: decoding `go %s edit -json %s` output: %w", cmd, file, err)
	}
	return nil
}

func inModCache(dir, modcache string) bool {
	if modcache == "" {
		return false
	}
	rel, err := filepath.Rel(modcache, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

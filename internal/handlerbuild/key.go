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
)

// keyFormat changes whenever the build recipe or the key's layout changes,
// so old entries are never reused for a different recipe.
const keyFormat = "crossaccountami/handlerbuild/v1"

// listFields are the `go list -json` fields the key reads.
var listFields = []string{
	"ImportPath", "Dir", "Standard", "Module",
	"GoFiles", "CgoFiles", "CFiles", "CXXFiles", "MFiles", "HFiles", "FFiles",
	"SFiles", "SwigFiles", "SwigCXXFiles", "SysoFiles", "EmbedFiles",
}

type listModule struct {
	Path    string
	Version string
	Main    bool
	Dir     string
	GoMod   string
	Replace *listModule
}

type listPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	Module     *listModule

	GoFiles, CgoFiles, CFiles, CXXFiles, MFiles, HFiles, FFiles,
	SFiles, SwigFiles, SwigCXXFiles, SysoFiles, EmbedFiles []string
}

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

// file hashes a file's content under name; a missing file hashes as absent.
func (w keyWriter) file(name, path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		w.field("absent", name)
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fh := sha256.New()
	if _, err := io.Copy(fh, f); err != nil {
		return err
	}
	w.field("file", name, hex.EncodeToString(fh.Sum(nil)))
	return nil
}

// key computes the cache key: everything that determines the binary.
func (b *builder) key(ctx context.Context) (string, error) {
	w := keyWriter{sha256.New()}
	w.field("format", keyFormat)
	w.field("goversion", b.goenv["GOVERSION"])
	w.field("package", b.pkg)
	for _, kv := range b.forced {
		// GOFLAGS holds only -mod and -modcacherw: they choose how go.mod is
		// read, and what it resolves to is hashed below.
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			w.field("env", kv)
		}
	}
	w.field("flags", strings.Join(buildFlags, "\x00"))
	if root := b.goenv["GOROOT"]; root != "" {
		if err := w.file("GOROOT/go.env", filepath.Join(root, "go.env")); err != nil {
			return "", fmt.Errorf("handlerbuild: hashing the toolchain's go.env: %w", err)
		}
	}
	if gomod := b.goenv["GOMOD"]; gomod != "" && gomod != os.DevNull {
		for _, f := range []string{gomod, strings.TrimSuffix(gomod, ".mod") + ".sum"} {
			if err := w.file("main/"+filepath.Base(f), f); err != nil {
				return "", fmt.Errorf("handlerbuild: hashing the main module's %s: %w", f, err)
			}
		}
	}
	if gowork := b.goenv["GOWORK"]; gowork != "" && gowork != "off" {
		for _, f := range []string{gowork, gowork + ".sum"} {
			if err := w.file("work/"+filepath.Base(f), f); err != nil {
				return "", fmt.Errorf("handlerbuild: hashing the workspace's %s: %w", f, err)
			}
		}
	}

	args := []string{"list", "-deps", "-json=" + strings.Join(listFields, ","), b.pkg}
	out, err := b.run(ctx, args...)
	if err != nil {
		return "", err
	}
	modcache := b.goenv["GOMODCACHE"]
	hashedGoMod := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("handlerbuild: decoding `go list` output: %w", err)
		}
		if err := b.hashPackage(w, &p, modcache, hashedGoMod); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(w.h.Sum(nil)), nil
}

func (b *builder) hashPackage(w keyWriter, p *listPackage, modcache string, hashedGoMod map[string]bool) error {
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
		if err := w.file(name, filepath.Join(p.Dir, name)); err != nil {
			return fmt.Errorf("handlerbuild: hashing package %s: %w", p.ImportPath, err)
		}
	}
	if m := p.Module; m != nil {
		gomod := m.GoMod
		if m.Replace != nil && m.Replace.GoMod != "" {
			gomod = m.Replace.GoMod
		}
		if gomod != "" && !hashedGoMod[gomod] {
			hashedGoMod[gomod] = true
			if err := w.file(m.Path+"/go.mod", gomod); err != nil {
				return fmt.Errorf("handlerbuild: hashing module %s's go.mod: %w", m.Path, err)
			}
		}
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

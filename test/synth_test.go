// Package test holds the tests that span packages: the example apps
// synthesized as users synthesize them, golden templates, cfn-lint over every
// template, and a consumer module that depends on this library.
package test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden templates in testdata/")

// scratch holds what outlives one test: example binaries and assemblies
// shared by several tests. TestMain removes it.
var scratch string

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	if scratch, err = os.MkdirTemp("", "crossaccountami-test"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// repoRoot is the module root (this package lives in <root>/test).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Assembly is a synthesized cloud assembly, read as plain JSON.
type Assembly struct {
	Dir       string
	Manifest  map[string]interface{}
	Templates map[string]map[string]interface{} // by stack: "<stack id>", or "<nested assembly dir>/<stack id>"
	// StackSets are the templates of the assembly's
	// AWS::CloudFormation::StackSet resources (their TemplateBody), by
	// "<stack>.<logical id>"; each is also written to
	// Dir/<stack>.<logical id>.template.json, for cfn-lint and nag.js.
	StackSets map[string]map[string]interface{}
}

// TemplateFiles returns the path of every template of the assembly, stacks
// and StackSets, by key (as in Templates and StackSets): each is
// Dir/<key>.template.json.
func (a *Assembly) TemplateFiles() map[string]string {
	files := map[string]string{}
	for _, m := range []map[string]map[string]interface{}{a.Templates, a.StackSets} {
		for key := range m {
			files[key] = filepath.Join(a.Dir, filepath.FromSlash(key)+".template.json")
		}
	}
	return files
}

// readAssembly reads the cloud assembly an app wrote to dir.
func readAssembly(t testing.TB, dir string) *Assembly {
	t.Helper()
	a, err := loadAssembly(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// loadAssembly reads the cloud assembly in dir: its manifest, the templates
// of its stacks and of its nested assemblies' stacks, and the StackSets'
// templates, which it writes next to them.
func loadAssembly(dir string) (*Assembly, error) {
	a := &Assembly{Dir: dir, Templates: map[string]map[string]interface{}{}, StackSets: map[string]map[string]interface{}{}}
	if err := loadJSON(filepath.Join(dir, "manifest.json"), &a.Manifest); err != nil {
		return nil, err
	}
	if err := a.readStacks("", a.Manifest); err != nil {
		return nil, err
	}
	for key, tmpl := range a.Templates {
		for id, r := range Resources(tmpl, "AWS::CloudFormation::StackSet") {
			body, ok := r["Properties"].(map[string]interface{})["TemplateBody"].(string)
			if !ok {
				return nil, fmt.Errorf("%s: StackSet %s has no literal TemplateBody", key, id)
			}
			var inner map[string]interface{}
			if err := json.Unmarshal([]byte(body), &inner); err != nil {
				return nil, fmt.Errorf("%s: the TemplateBody of StackSet %s: %v", key, id, err)
			}
			a.StackSets[key+"."+id] = inner
			if err := os.WriteFile(a.TemplateFiles()[key+"."+id], []byte(body), 0o644); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// missing lists the context lookups the app asked for (the manifest's
// "missing" entries), in it and its nested assemblies.
func (a *Assembly) missing(dir string, manifest map[string]interface{}) ([]string, error) {
	var keys []string
	if m, ok := manifest["missing"].([]interface{}); ok {
		for _, e := range m {
			keys = append(keys, e.(map[string]interface{})["key"].(string))
		}
	}
	for _, art := range manifest["artifacts"].(map[string]interface{}) {
		art := art.(map[string]interface{})
		if art["type"] == "cdk:cloud-assembly" {
			nested := filepath.Join(dir, art["properties"].(map[string]interface{})["directoryName"].(string))
			var m map[string]interface{}
			if err := loadJSON(filepath.Join(a.Dir, nested, "manifest.json"), &m); err != nil {
				return nil, err
			}
			more, err := a.missing(nested, m)
			if err != nil {
				return nil, err
			}
			keys = append(keys, more...)
		}
	}
	return keys, nil
}

// readStacks loads the templates of a manifest and, recursively, of the
// nested assemblies of its CDK Stages (keyed "<assembly dir>/<stack id>").
func (a *Assembly) readStacks(dir string, manifest map[string]interface{}) error {
	for id, art := range manifest["artifacts"].(map[string]interface{}) {
		art := art.(map[string]interface{})
		props, _ := art["properties"].(map[string]interface{})
		switch art["type"] {
		case "aws:cloudformation:stack":
			if file := props["templateFile"]; file != id+".template.json" {
				return fmt.Errorf("stack %s has template %v, want %s.template.json", id, file, id)
			}
			var tmpl map[string]interface{}
			if err := loadJSON(filepath.Join(a.Dir, dir, id+".template.json"), &tmpl); err != nil {
				return err
			}
			a.Templates[filepath.ToSlash(filepath.Join(dir, id))] = tmpl
		case "cdk:cloud-assembly":
			nested := filepath.Join(dir, props["directoryName"].(string))
			var m map[string]interface{}
			if err := loadJSON(filepath.Join(a.Dir, nested, "manifest.json"), &m); err != nil {
				return err
			}
			if err := a.readStacks(nested, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func readJSON(t testing.TB, path string, v interface{}) {
	t.Helper()
	if err := loadJSON(path, v); err != nil {
		t.Fatal(err)
	}
}

func loadJSON(path string, v interface{}) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// Resources returns the resources of one type in a template, by logical id.
func Resources(tmpl map[string]interface{}, typ string) map[string]map[string]interface{} {
	out := map[string]map[string]interface{}{}
	for id, r := range tmpl["Resources"].(map[string]interface{}) {
		r := r.(map[string]interface{})
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// only returns the single resource of a type, failing otherwise.
func only(t testing.TB, tmpl map[string]interface{}, typ string) (string, map[string]interface{}) {
	t.Helper()
	rs := Resources(tmpl, typ)
	if len(rs) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(rs))
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

var assetHash = regexp.MustCompile(`[0-9a-f]{64}`)

// golden compares a template with testdata/<name>, asset hashes blanked.
// -update rewrites the file.
func golden(t *testing.T, name string, tmpl map[string]interface{}) {
	t.Helper()
	got, err := json.MarshalIndent(tmpl, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = assetHash.ReplaceAll(got, []byte("<asset-hash>"))
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the synthesized template; review the change, then run go test ./test -run %s -update\n%s", path, t.Name(), firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return ""
}

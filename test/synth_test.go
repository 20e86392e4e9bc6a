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
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
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

var (
	binsMu sync.Mutex
	bins   = map[string]string{}
)

// exampleBinary builds ./examples/<name> once per test process.
func exampleBinary(t testing.TB, name string) string {
	t.Helper()
	binsMu.Lock()
	defer binsMu.Unlock()
	if bin, ok := bins[name]; ok {
		return bin
	}
	bin := filepath.Join(scratch, "bin", name)
	cmd := exec.Command("go", "build", "-o", bin, "./examples/"+name)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building examples/%s: %v\n%s", name, err, out)
	}
	bins[name] = bin
	return bin
}

// Assembly is a synthesized cloud assembly, read as plain JSON.
type Assembly struct {
	Dir       string
	Manifest  map[string]interface{}
	Templates map[string]map[string]interface{} // by stack name
}

// synthExample runs an example app the way the CDK CLI does (CDK_OUTDIR,
// CDK_CONTEXT_JSON) and reads the assembly it writes. extraEnv is added to
// the environment (e.g. a cache dir).
func synthExample(t testing.TB, name string, context map[string]string, extraEnv ...string) (*Assembly, error) {
	t.Helper()
	out, err := os.MkdirTemp(scratch, "cdk.out-"+name)
	if err != nil {
		t.Fatal(err)
	}
	ctxJSON, _ := json.Marshal(context)
	cmd := exec.Command(exampleBinary(t, name))
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CDK_OUTDIR="+out, "CDK_CONTEXT_JSON="+string(ctxJSON),
		"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20")
	cmd.Env = append(cmd.Env, extraEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return &Assembly{Dir: out}, &synthError{err: err, output: stderr.String()}
	}
	// jsii prints a [WARNING] for every deprecated API the library calls;
	// users would see it on every synth.
	if strings.Contains(stderr.String(), "is deprecated") {
		return nil, fmt.Errorf("examples/%s: synth used a deprecated API:\n%s", name, stderr.String())
	}
	a := readAssembly(t, out)
	// A context lookup would make `cdk synth` call AWS (and fail without
	// credentials): every example must synthesize offline.
	if missing := a.missing(t, "", a.Manifest); len(missing) > 0 {
		return a, fmt.Errorf("examples/%s needs context lookups, so cdk synth would call AWS: %v", name, missing)
	}
	return a, nil
}

// readAssembly reads the cloud assembly an app wrote to dir.
func readAssembly(t testing.TB, dir string) *Assembly {
	t.Helper()
	a := &Assembly{Dir: dir, Templates: map[string]map[string]interface{}{}}
	readJSON(t, filepath.Join(dir, "manifest.json"), &a.Manifest)
	a.readStacks(t, "", a.Manifest)
	return a
}

// missing lists the context lookups the app asked for (the manifest's
// "missing" entries), in it and its nested assemblies.
func (a *Assembly) missing(t testing.TB, dir string, manifest map[string]interface{}) []string {
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
			readJSON(t, filepath.Join(a.Dir, nested, "manifest.json"), &m)
			keys = append(keys, a.missing(t, nested, m)...)
		}
	}
	return keys
}

// readStacks loads the templates of a manifest and, recursively, of the
// nested assemblies of its CDK Stages (keyed "<assembly dir>/<stack id>").
func (a *Assembly) readStacks(t testing.TB, dir string, manifest map[string]interface{}) {
	for id, art := range manifest["artifacts"].(map[string]interface{}) {
		art := art.(map[string]interface{})
		props, _ := art["properties"].(map[string]interface{})
		switch art["type"] {
		case "aws:cloudformation:stack":
			var tmpl map[string]interface{}
			readJSON(t, filepath.Join(a.Dir, dir, props["templateFile"].(string)), &tmpl)
			a.Templates[filepath.Join(dir, id)] = tmpl
		case "cdk:cloud-assembly":
			nested := filepath.Join(dir, props["directoryName"].(string))
			var m map[string]interface{}
			readJSON(t, filepath.Join(a.Dir, nested, "manifest.json"), &m)
			a.readStacks(t, nested, m)
		}
	}
}

type synthError struct {
	err    error
	output string
}

func (e *synthError) Error() string { return e.err.Error() + "\n" + e.output }

func readJSON(t testing.TB, path string, v interface{}) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
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

package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The examples are tested as users run them: each example's files are
// copied into a module of its own outside this repository
// (example.com/<name>, which requires this module through a replace
// directive), built there after `go mod tidy`, and run the way the CDK CLI
// runs an app (CDK_OUTDIR, CDK_CONTEXT_JSON), from that module's directory.
// So an example that needs anything but this module's public API does not
// build, and the tests read the cloud assembly it writes (without the path
// metadata that the CDK CLI asks for).
//
// Each example is built once per test binary, and run once per context;
// every test that asks for the same example and context shares its
// assembly (and must not change it). The tests that synthesize run in
// parallel (t.Parallel, up to -parallel at once): each waits only for the
// build and the run it needs.

const modulePath = "github.com/crossaccountami/crossaccountami"

// exampleModule is an example's consumer module and its binary.
type exampleModule struct {
	once     sync.Once
	dir, bin string
	err      error
}

// exampleRun is one synth of an example with one context.
type exampleRun struct {
	once sync.Once
	a    *Assembly
	err  error
}

var (
	exampleModules sync.Map // example name -> *exampleModule
	exampleRuns    sync.Map // example name + "\x00" + context JSON -> *exampleRun
)

// exampleBinary builds examples/<name> in a consumer module of its own, once
// per test process, and returns the module's directory and the binary.
func exampleBinary(t testing.TB, name string) (dir, bin string) {
	t.Helper()
	v, _ := exampleModules.LoadOrStore(name, &exampleModule{})
	m := v.(*exampleModule)
	m.once.Do(func() { m.dir, m.bin, m.err = buildExample(name) })
	if m.err != nil {
		t.Fatal(m.err)
	}
	return m.dir, m.bin
}

// buildExample copies the non-test .go files of examples/<name> into a
// consumer module of its own (buildConsumer) and builds it.
func buildExample(name string) (dir, bin string, err error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return "", "", err
	}
	src := filepath.Join(root, "examples", name)
	entries, err := os.ReadDir(src)
	if err != nil {
		return "", "", err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		body, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return "", "", err
		}
		if err := checkExampleImports(filepath.Join(src, e.Name()), body); err != nil {
			return "", "", err
		}
		files[e.Name()] = body
	}
	if len(files) == 0 {
		return "", "", fmt.Errorf("examples/%s has no .go file", name)
	}
	dir, bin, err = buildConsumer("examples", name, files)
	if err != nil {
		return "", "", fmt.Errorf("examples/%s in a module of its own: %v", name, err)
	}
	return dir, bin, nil
}

// buildConsumer writes files into scratch/<kind>/<name>, outside this
// repository, with a go.mod of module example.com/<name> that requires this
// module (replaced by this checkout), runs go mod tidy and go build there,
// and returns the directory and the binary: a module of a user's own, as
// after `go get` and `go mod tidy`.
func buildConsumer(kind, name string, files map[string][]byte) (dir, bin string, err error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return "", "", err
	}
	if rel, err := filepath.Rel(root, scratch); err != nil || !strings.HasPrefix(rel, "..") {
		return "", "", fmt.Errorf("the scratch directory %s is inside the repository %s: set TMPDIR elsewhere", scratch, root)
	}
	dir = filepath.Join(scratch, kind, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	for file, body := range files {
		if err := os.WriteFile(filepath.Join(dir, file), body, 0o644); err != nil {
			return "", "", err
		}
	}
	// The go line of this module: the consumer needs at least that Go.
	ourMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", "", err
	}
	goLine := regexp.MustCompile(`(?m)^go \S+$`).Find(ourMod)
	mod := fmt.Sprintf("module example.com/%s\n\n%s\n\nrequire %s v0.0.0\n\nreplace %s => %s\n", name, goLine, modulePath, modulePath, strconv.Quote(root))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", "", err
	}
	env := append(os.Environ(),
		"GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"),
		"GOWORK=off", // a go.work of the user's would put this module back in
	)
	// A first build of an awscdk app with an empty Go build cache takes
	// minutes; later ones reuse the compiled packages and only link.
	if _, _, err := runCommand(10*time.Minute, dir, env, "go", "mod", "tidy"); err != nil {
		return "", "", err
	}
	bin = filepath.Join(scratch, "bin", kind+"-"+name)
	if _, _, err := runCommand(10*time.Minute, dir, env, "go", "build", "-o", bin, "."); err != nil {
		return "", "", err
	}
	return dir, bin, nil
}

// checkExampleImports fails on an import that a copy of the example in
// another module could not use, or should not: this module's internal
// packages (the Go toolchain refuses them in another module anyway) and
// its examples/ packages (another example's code: each example is pasted
// on its own).
func checkExampleImports(path string, src []byte) error {
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
	if err != nil {
		return err
	}
	if f.Name.Name != "main" {
		return fmt.Errorf("%s is package %s: an example is one main package", path, f.Name.Name)
	}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if p == modulePath+"/examples" || strings.HasPrefix(p, modulePath+"/examples/") ||
			strings.HasPrefix(p, modulePath+"/") && (strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal")) {
			return fmt.Errorf("%s imports %s: an example may use only this module's public packages", path, p)
		}
	}
	return nil
}

// synthExample runs examples/<name> (built by exampleBinary) with context
// as CDK_CONTEXT_JSON and CDK_OUTDIR a new directory, once per example and
// context, and reads the assembly it writes. It fails the test when the
// binary cannot be built; a failed synth returns the error with its output
// (and the assembly directory, to check that nothing was written).
func synthExample(t testing.TB, name string, context map[string]string) (*Assembly, error) {
	t.Helper()
	dir, bin := exampleBinary(t, name)
	if context == nil {
		context = map[string]string{}
	}
	ctxJSON, err := json.Marshal(context) // map keys sorted: one key per context
	if err != nil {
		t.Fatal(err)
	}
	v, _ := exampleRuns.LoadOrStore(name+"\x00"+string(ctxJSON), &exampleRun{})
	r := v.(*exampleRun)
	r.once.Do(func() { r.a, r.err = runExample(name, dir, bin, string(ctxJSON)) })
	return r.a, r.err
}

// exampleAssembly is synthExample for a synth that must succeed.
func exampleAssembly(t testing.TB, name string, context map[string]string) *Assembly {
	t.Helper()
	a, err := synthExample(t, name, context)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// runExample runs an example binary in its module's directory, as the CDK
// CLI runs an app, and reads its assembly.
func runExample(name, dir, bin, ctxJSON string) (*Assembly, error) {
	if err := os.MkdirAll(filepath.Join(scratch, "cdk.out"), 0o755); err != nil {
		return nil, err
	}
	out, err := os.MkdirTemp(filepath.Join(scratch, "cdk.out"), name+"-")
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "CDK_OUTDIR="+out, "CDK_CONTEXT_JSON="+ctxJSON,
		"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20")
	_, stderr, err := runCommand(5*time.Minute, dir, env, bin)
	if err != nil {
		return &Assembly{Dir: out}, fmt.Errorf("examples/%s with context %s: %w", name, ctxJSON, err)
	}
	// jsii prints a [WARNING] for every deprecated API the library calls;
	// users would see it on every synth.
	if bytes.Contains(stderr, []byte("is deprecated")) {
		return nil, fmt.Errorf("examples/%s: synth used a deprecated API:\n%s", name, stderr)
	}
	a, err := loadAssembly(out)
	if err != nil {
		return nil, fmt.Errorf("examples/%s with context %s: %v", name, ctxJSON, err)
	}
	// A context lookup would make `cdk synth` call AWS (and fail without
	// credentials): every example must synthesize offline.
	missing, err := a.missing("", a.Manifest)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return a, fmt.Errorf("examples/%s needs context lookups, so cdk synth would call AWS: %v", name, missing)
	}
	return a, nil
}

// goldenAssembly compares every template of an assembly (StackSets'
// included) with testdata/<dir>/<key>.template.json, and fails on a file
// there that no template matches (-update removes it).
func goldenAssembly(t *testing.T, dir string, a *Assembly) {
	t.Helper()
	want := map[string]bool{}
	for _, m := range []map[string]map[string]interface{}{a.Templates, a.StackSets} {
		for _, key := range keys(m) {
			want[filepath.FromSlash(key)+".template.json"] = true
			t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) { golden(t, dir+"/"+key+".template.json", m[key]) })
		}
	}
	root := filepath.Join("testdata", dir)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if want[rel] {
			return nil
		}
		if *update {
			return os.Remove(path)
		}
		t.Errorf("%s is the golden file of no template of the assembly: run go test ./test -run %s -update to remove it", path, t.Name())
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// TestExampleImportsChecked: the harness refuses an example that a user
// could not paste on its own (this module's internal packages, another
// example's package, a package other than main) before it builds it, and
// accepts one that uses only public packages.
func TestExampleImportsChecked(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string // what the error says; "": accepted
	}{
		{src: `package main; import (_ "fmt"; _ "github.com/aws/jsii-runtime-go"; _ "` + modulePath + `/constructs/encryptedami")`},
		{src: `package main; import _ "` + modulePath + `/internal/awsid"`, want: "internal/awsid"},
		{src: `package main; import _ "` + modulePath + `/constructs/internal/provider"`, want: "constructs/internal/provider"},
		{src: `package main; import _ "` + modulePath + `/examples/basic/app"`, want: "examples/basic/app"},
		{src: `package app`, want: "package app"},
	} {
		err := checkExampleImports("main.go", []byte(tc.src))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.src, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error naming %s", tc.src, err, tc.want)
		}
	}
}

// TestExampleFleetCopiesMatch: basic, importedkey and pipeline each carry
// the same fleet.go (VPC, launch template, Auto Scaling group), so that each
// example can be pasted alone; a fix made to one copy must be made to all.
func TestExampleFleetCopiesMatch(t *testing.T) {
	copies, err := filepath.Glob("../examples/*/fleet.go")
	if err != nil || len(copies) < 2 {
		t.Fatalf("fleet.go copies: %v, %v", copies, err)
	}
	first, err := os.ReadFile(copies[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range copies[1:] {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, b) {
			t.Errorf("%s differs from %s: keep the examples' fleet.go copies identical", c, copies[0])
		}
	}
}

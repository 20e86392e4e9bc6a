package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
)

// readmeSection is the README section a new user follows.
const readmeSection = "## Use it in your own app"

// TestReadmeOwnApp: README.md's "Use it in your own app" main.go, copied
// exactly, builds in a module of its own outside this repository (as after
// go get and go mod tidy) and synthesizes, with its cdk.json's context and
// no AWS credentials: two stacks, the grant that the Auto Scaling group
// waits for, no warning (no "Strong references requested" either) and no
// context lookup. One deliberate synth.
func TestReadmeOwnApp(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section, err := readmeSectionText(string(readme), readmeSection)
	if err != nil {
		t.Fatal(err)
	}
	mainGo, err := fencedBlock(section, "go", "package main")
	if err != nil {
		t.Fatal(err)
	}
	cdkJSON, err := fencedBlock(section, "json", `"app"`)
	if err != nil {
		t.Fatal(err)
	}
	var cdk struct {
		App     string
		Context map[string]interface{}
	}
	if err := json.Unmarshal([]byte(cdkJSON), &cdk); err != nil {
		t.Fatalf("README.md's cdk.json: %v\n%s", err, cdkJSON)
	}
	if cdk.App != "go run ." {
		t.Errorf(`README.md's cdk.json has app %q, want "go run ." (the module's main package)`, cdk.App)
	}

	// GIVEN the main.go, and only it, in a consumer module of its own
	if err := checkExampleImports("README.md", []byte(mainGo)); err != nil {
		t.Fatal(err)
	}
	dir, bin, err := buildConsumer("readme", "myapp", map[string][]byte{"main.go": []byte(mainGo), "cdk.json": []byte(cdkJSON)})
	if err != nil {
		t.Fatalf("README.md's main.go does not build in a module of its own: %v\nthe program:\n%s", err, numbered(mainGo))
	}

	// WHEN it runs as the CDK CLI runs it (CDK_OUTDIR, cdk.json's context
	// as CDK_CONTEXT_JSON), with no AWS credentials anywhere
	ctxJSON, err := json.Marshal(cdk.Context)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "cdk.out")
	env := append(withoutAWSCredentials(t), "CDK_OUTDIR="+out, "CDK_CONTEXT_JSON="+string(ctxJSON),
		"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20")
	_, stderr, err := runCommand(5*time.Minute, dir, env, bin)
	if err != nil {
		t.Fatalf("README.md's main.go does not synthesize: %v", err)
	}
	for _, bad := range []string{"is deprecated", "Strong references requested", "[Warning"} {
		if strings.Contains(string(stderr), bad) {
			t.Errorf("synth printed %q:\n%s", bad, stderr)
		}
	}

	// THEN the assembly has the two stacks and no context lookup
	a := readAssembly(t, out)
	if missing, err := a.missing("", a.Manifest); err != nil {
		t.Fatal(err)
	} else if len(missing) > 0 {
		t.Errorf("the README's app needs context lookups, so cdk synth would call AWS: %v", missing)
	}
	if got := keys(a.Templates); !slices.Equal(got, []string{"AmiDestination", "AmiSource"}) {
		t.Errorf("stacks %v, want AmiDestination and AmiSource", got)
	}
	// AND no annotation warns
	warnings, err := a.annotations("aws:cdk:warning")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("the README's app synthesizes with warnings:\n%s", strings.Join(warnings, "\n"))
	}
	// AND the destination holds the grant, which its Auto Scaling group waits for
	dest := a.Templates["AmiDestination"]
	grantID, _ := only(t, dest, grantspec.ResourceType)
	asgID, asg := only(t, dest, "AWS::AutoScaling::AutoScalingGroup")
	if deps := strs(asg["DependsOn"]); !slices.Contains(deps, grantID) {
		t.Errorf("Auto Scaling group %s DependsOn = %v, want the grant %s", asgID, deps, grantID)
	}
}

// withoutAWSCredentials is this process's environment without AWS_*
// variables, with a HOME and AWS config files that hold nothing and the
// instance metadata service off: no credential source is left. The Go
// caches and the built handlers stay where they were (a new HOME would
// otherwise mean a cold build of each).
func withoutAWSCredentials(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || name == "HOME" || name == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	if os.Getenv(handlerbuild.CacheDirEnv) == "" {
		// The built handlers stay too (their default place is under HOME).
		if cache, err := os.UserCacheDir(); err == nil {
			env = append(env, handlerbuild.CacheDirEnv+"="+filepath.Join(cache, "crossaccountami", "handlers"))
		}
	}
	return append(env, "HOME="+home,
		"AWS_CONFIG_FILE="+filepath.Join(home, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true")
}

// annotations are the messages of the given type (aws:cdk:warning,
// aws:cdk:error) in the assembly's stack metadata, "<path>: <message>".
func (a *Assembly) annotations(typ string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(a.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".metadata.json") {
			return err
		}
		var byPath map[string][]struct {
			Type string
			Data interface{}
		}
		if err := loadJSON(path, &byPath); err != nil {
			return err
		}
		for p, entries := range byPath {
			for _, e := range entries {
				if e.Type == typ {
					out = append(out, fmt.Sprintf("%s: %v", p, e.Data))
				}
			}
		}
		return nil
	})
	return out, err
}

// readmeSectionText is the text of README.md's section under heading (up to
// the next "## ").
func readmeSectionText(readme, heading string) (string, error) {
	_, section, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		return "", fmt.Errorf("README.md has no %q section", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section, nil
}

// fencedBlock is the first ```lang block of section whose text contains
// marker.
func fencedBlock(section, lang, marker string) (string, error) {
	rest := section
	for {
		_, after, ok := strings.Cut(rest, "\n```"+lang+"\n")
		if !ok {
			return "", fmt.Errorf("no ```%s block with %q", lang, marker)
		}
		block, tail, ok := strings.Cut(after, "\n```")
		if !ok {
			return "", fmt.Errorf("a ```%s block is not closed", lang)
		}
		if strings.Contains(block, marker) {
			return block + "\n", nil
		}
		rest = tail
	}
}

// numbered prefixes each line of src with its number, as compiler errors
// count them.
func numbered(src string) string {
	var b strings.Builder
	for i, line := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%3d  %s\n", i+1, line)
	}
	return b.String()
}

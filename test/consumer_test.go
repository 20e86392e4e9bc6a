package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild/prebuilt"
)

// TestConsumerModule builds and synthesizes test/consumer, a CDK app in a
// module of its own that depends on this module through a replace directive,
// after `go mod tidy`: the handler's dependencies must reach the consumer's
// go.sum, the handler must build by import path in the consumer's
// directory, and none of this module's test and development tools may reach
// the consumer's module graph. It is one deliberate cold build of an awscdk
// app (15-36 s).
func TestConsumerModule(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	tmp := t.TempDir()
	consumer := filepath.Join(tmp, "consumer")
	if err := os.CopyFS(consumer, os.DirFS("consumer")); err != nil {
		t.Fatal(err)
	}
	gomod := filepath.Join(consumer, "go.mod")
	mod, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	mod = regexp.MustCompile(`(?m)^replace (\S+) => \S+$`).ReplaceAll(mod, []byte("replace $1 => "+root))
	if err := os.WriteFile(gomod, mod, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"GOFLAGS=-mod=mod",
		"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20",
	)

	// GIVEN a consumer that ran go mod tidy
	runConsumer(t, consumer, env, "go", "mod", "tidy")
	sum, err := os.ReadFile(filepath.Join(consumer, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"github.com/aws/aws-lambda-go ", "github.com/aws/aws-sdk-go-v2/service/kms "} {
		if !bytes.Contains(sum, []byte(m)) {
			t.Errorf("the consumer's go.sum lacks %s after go mod tidy", m)
		}
	}
	// AND no test or development tool is in its module graph
	checkConsumerGraph(t, root, consumer, env)

	app := filepath.Join(tmp, "app")
	runConsumer(t, consumer, env, "go", "build", "-o", app, ".")

	// WHEN it synthesizes three times, each time with an empty handler
	// cache: first as a user's first synth, then twice building the
	// handler from source (handlerbuild.PrebuiltEnv=off)
	var hashes, bins []string
	for i, name := range []string{"prebuilt", "source1", "source2"} {
		out := filepath.Join(tmp, "cdk.out."+name)
		synthEnv := append(env[:len(env):len(env)],
			"CDK_OUTDIR="+out,
			"CROSSACCOUNTAMI_CACHE_DIR="+filepath.Join(tmp, "cache."+name),
		)
		if name != "prebuilt" {
			synthEnv = append(synthEnv, handlerbuild.PrebuiltEnv+"=off")
		}
		runConsumer(t, consumer, synthEnv, app)

		// THEN the assembly holds one asset with an executable linux/arm64 bootstrap
		hash, bin := bootstrapAsset(t, out)
		hashes, bins = append(hashes, hash), append(bins, bin)
		t.Logf("synth %d (%s): bootstrap asset %s, bootstrap SHA-256 %s", i+1, name, hash, bin)
	}
	// AND the first synth installed the prebuilt binary: its source hash,
	// computed in the consumer's module, is the one of this checkout
	if want := prebuilt.For(handlerbuild.DestinationHandler, prebuilt.GOARCH).SHA256; bins[0] != want {
		t.Errorf("the consumer's first synth shipped a bootstrap with SHA-256 %s, want the prebuilt one's %s", bins[0], want)
	}
	// AND rebuilding the handler from scratch gives the same asset hash
	if hashes[1] != hashes[2] {
		t.Errorf("asset hashes differ between two clean synths that built from source: %s vs %s", hashes[1], hashes[2])
	}
}

// pinnedTools are the Go modules of the tools pinned in the tools module
// .ci/tools: staticcheck and the Lambda Runtime Interface Emulator.
var pinnedTools = []string{
	"honnef.co/go/tools",
	"github.com/aws/aws-lambda-runtime-interface-emulator",
}

// devTools are this module's test and development tools: pinnedTools, and
// cdk-nag's Go bindings (a dependency once; cdk-nag now runs from npm, in
// scripts/nag.js). None may be in this module's module graph, nor so in a
// consumer's.
var devTools = append(slices.Clip(pinnedTools), "github.com/cdklabs/cdk-nag-go/cdknag/v2")

// checkConsumerGraph compares the module graphs (go mod graph) of the
// consumer, of this module and of the tools module .ci/tools: the tools and
// every module that only the tools module's graph has (what they bring
// along) must be absent from the consumer's graph, and the tools from this
// module's too. It logs the graphs' sizes side by side.
func checkConsumerGraph(t *testing.T, root, consumer string, env []string) {
	t.Helper()
	consumerGraph := parseModGraph(runConsumer(t, consumer, env, "go", "mod", "graph"))
	rootGraph := parseModGraph(runConsumer(t, root, os.Environ(), "go", "mod", "graph"))
	toolsGraph := parseModGraph(runConsumer(t, filepath.Join(root, ".ci", "tools"), os.Environ(), "go", "mod", "graph"))
	t.Logf("module graphs (go mod graph): consumer %d edges, %d modules; crossaccountami %d edges, %d modules; .ci/tools %d edges, %d modules",
		consumerGraph.edges, len(consumerGraph.modules), rootGraph.edges, len(rootGraph.modules), toolsGraph.edges, len(toolsGraph.modules))

	for _, m := range pinnedTools {
		if !toolsGraph.modules[m] {
			t.Errorf("the tools module's graph lacks %s: is .ci/tools still where the tools are pinned?", m)
		}
	}
	for _, m := range devTools {
		if rootGraph.modules[m] {
			t.Errorf("crossaccountami's module graph has the development tool %s", m)
		}
	}
	var toolsOnly []string
	for m := range toolsGraph.modules {
		if !rootGraph.modules[m] {
			toolsOnly = append(toolsOnly, m)
		}
	}
	slices.Sort(toolsOnly)
	var leaked []string
	for _, m := range slices.Concat(devTools, toolsOnly) {
		if consumerGraph.modules[m] && !slices.Contains(leaked, m) {
			leaked = append(leaked, m)
		}
	}
	if len(leaked) > 0 {
		t.Errorf("test or development tools (or what only they require) reached the consumer's module graph: %v", leaked)
	}
	t.Logf("%d modules of the tools' graph, absent from the consumer's: %v", len(toolsOnly), toolsOnly)
}

// modGraph is go mod graph's output: how many requirement edges, and the
// module paths (versions dropped) that appear in it.
type modGraph struct {
	edges   int
	modules map[string]bool
}

func parseModGraph(out []byte) modGraph {
	g := modGraph{modules: map[string]bool{}}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			continue
		}
		g.edges++
		for _, f := range fields {
			path, _, _ := strings.Cut(f, "@")
			g.modules[path] = true
		}
	}
	return g
}

// bootstrapAsset checks the assembly's file assets and returns the hash of
// the only one that holds a bootstrap, and the bootstrap's SHA-256, after
// checking that a Lambda function of the template uses it.
func bootstrapAsset(t *testing.T, out string) (hash, binSHA256 string) {
	t.Helper()
	var manifest struct {
		Files map[string]struct {
			Source struct{ Path, Packaging string }
		}
	}
	readConsumerJSON(t, filepath.Join(out, "Consumer.assets.json"), &manifest)
	var found []string
	for hash, a := range manifest.Files {
		bin := filepath.Join(out, a.Source.Path, "bootstrap")
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		found = append(found, hash)
		content, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		binSHA256 = hex.EncodeToString(sum[:])
		if a.Source.Packaging != "zip" {
			t.Errorf("asset %s has packaging %q, want zip", hash, a.Source.Packaging)
		}
		entries, _ := os.ReadDir(filepath.Join(out, a.Source.Path))
		if len(entries) != 1 {
			t.Errorf("asset %s holds %v, want only bootstrap", hash, entries)
		}
		fi, err := os.Stat(bin)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o555 != 0o555 {
			t.Errorf("%s has mode %v, want readable and executable by all", bin, fi.Mode())
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("%s is for %v, want arm64", bin, f.Machine)
		}
		f.Close()
	}
	if len(found) != 1 {
		t.Fatalf("assembly %s has %d assets with a bootstrap (%v), want 1", out, len(found), found)
	}

	var template struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				Code struct{ S3Key any }
			}
		}
	}
	readConsumerJSON(t, filepath.Join(out, "Consumer.template.json"), &template)
	uses := 0
	for _, r := range template.Resources {
		if r.Type == "AWS::Lambda::Function" && r.Properties.Code.S3Key == found[0]+".zip" {
			uses++
		}
	}
	if uses != 1 {
		t.Errorf("%d Lambda functions use the bootstrap asset %s, want 1", uses, found[0])
	}
	return found[0], binSHA256
}

func readConsumerJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// runConsumer runs a command of the consumer test and returns what it
// printed on stdout. A command that hangs (a deadlocked synth) fails the
// test after three minutes with its output, instead of the whole test
// binary panicking at go test's timeout.
func runConsumer(t testing.TB, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	stdout, _, err := runCommand(3*time.Minute, dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout
}

// runCommand runs a command in dir with env and returns what it printed on
// stdout and stderr. A command that fails, or still runs after timeout (it
// is then killed), returns an error that names it and holds its output.
func runCommand(timeout time.Duration, dir string, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = dir
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v after %v)", err, ctx.Err(), timeout)
	}
	if err != nil {
		err = fmt.Errorf("%s %s in %s: %v\n%s%s", name, strings.Join(args, " "), dir, err, out.Bytes(), errOut.Bytes())
	}
	return out.Bytes(), errOut.Bytes(), err
}

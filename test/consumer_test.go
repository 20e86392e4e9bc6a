package test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestConsumerModule builds and synthesizes test/consumer, a CDK app in a
// module of its own that depends on this module through a replace directive,
// after `go mod tidy`: the handler's dependencies must reach the consumer's
// go.sum, and the handler must build by import path in the consumer's
// directory. It is one deliberate cold build of an awscdk app (15-36 s).
func TestConsumerModule(t *testing.T) {
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
	app := filepath.Join(tmp, "app")
	runConsumer(t, consumer, env, "go", "build", "-o", app, ".")

	// WHEN it synthesizes twice, each time with an empty handler cache
	var hashes []string
	for i, name := range []string{"first", "second"} {
		out := filepath.Join(tmp, "cdk.out."+name)
		synthEnv := append(env[:len(env):len(env)],
			"CDK_OUTDIR="+out,
			"CROSSACCOUNTAMI_CACHE_DIR="+filepath.Join(tmp, "cache."+name),
		)
		runConsumer(t, consumer, synthEnv, app)

		// THEN the assembly holds one asset with an executable linux/arm64 bootstrap
		hash := bootstrapAsset(t, out)
		hashes = append(hashes, hash)
		t.Logf("synth %d: bootstrap asset %s", i+1, hash)
	}
	// AND rebuilding the handler from scratch gives the same asset hash
	if hashes[0] != hashes[1] {
		t.Errorf("asset hashes differ between two clean synths: %s vs %s", hashes[0], hashes[1])
	}
}

// bootstrapAsset checks the assembly's file assets and returns the hash of
// the only one that holds a bootstrap, after checking that a Lambda function
// of the template uses it.
func bootstrapAsset(t *testing.T, out string) string {
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
	return found[0]
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

// runConsumer runs a command of the consumer test. A command that hangs
// (a deadlocked synth) fails the test after three minutes with its output,
// instead of the whole test binary panicking at go test's timeout.
func runConsumer(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
}

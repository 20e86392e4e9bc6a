package test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
)

// TestNag runs cdk-nag's AwsSolutionsChecks (scripts/nag.js, the npm
// package pinned in package.json: no Go dependency on cdk-nag) over every
// template of every example, stages' nested assemblies and StackSets'
// templates included, and fails on any unsuppressed error or warning.
// Suppressions sit next to the resources they cover
// (constructs/internal/provider for the library's own handler, the
// examples for theirs), written by constructs/nagsuppress into the
// resources' Metadata; no rule is disabled on the aspect and no stack
// carries a blanket suppression. The examples run as users run them (see
// synthExample), without path metadata: findings name logical ids.
func TestNag(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, example string
		context       map[string]string
	}{
		{"basic", "basic", nil},
		{"basic-organization", "basic", map[string]string{"organizationId": "o-abcdefghij"}},
		{"basic-accounts", "basic", basicAccountsContext},
		{"pipeline", "pipeline", pipelineContext},
		// The source stack holds the source-side handler: key policy
		// statements on an imported key and the AMI's launch permission.
		{"importedkey", "importedkey", nil},
		// The key policy stacks, the code stacks, the StackSet's stack and
		// the StackSet's own template.
		{"organization", "organization", nil},
		// Issue 19's launchers: an EKS managed node group, a Karpenter
		// controller role.
		{"eks", "eks", nil},
		{"karpenter", "karpenter", nil},
		// Issue 21's copy: the copy's own handler policy, the destination
		// key, the source's launch permission.
		{"copy", "copy", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := exampleAssembly(t, tc.example, tc.context)
			var templates []string
			for _, file := range a.TemplateFiles() {
				templates = append(templates, file)
			}
			slices.Sort(templates)
			if len(templates) < 2 {
				t.Fatalf("found %d templates (%v), want the example's source and destination stacks at least", len(templates), templates)
			}
			// The evidence behind the examples' EC26 suppression: every launch
			// template encrypts its root volume with a KMS key.
			for _, path := range templates {
				var tmpl struct {
					Resources map[string]struct {
						Type       string
						Properties json.RawMessage
					}
				}
				readJSON(t, path, &tmpl)
				for id, r := range tmpl.Resources {
					if r.Type != "AWS::EC2::LaunchTemplate" {
						continue
					}
					var compact bytes.Buffer
					if err := json.Compact(&compact, r.Properties); err != nil {
						t.Fatal(err)
					}
					body := compact.String()
					if !strings.Contains(body, `"Encrypted":true`) || !strings.Contains(body, `"KmsKeyId":`) {
						t.Errorf("%s: launch template %s does not encrypt its volumes with a KMS key: %s", path, id, body)
					}
				}
			}
			findings, summary, err := runNag(t, templates...)
			t.Logf("cdk-nag:\n%s", summary)
			if err != nil {
				t.Errorf("unsuppressed cdk-nag findings (%v):\n  %s", err, strings.Join(findings, "\n  "))
			}
		})
	}
}

// TestNagReportsAndHonoursSuppressions keeps TestNag able to fail: a bucket
// that does not enforce SSL is reported (AwsSolutions-S10), and the same
// bucket with cdk_nag suppressions in its Metadata (constructs/nagsuppress)
// is not.
func TestNagReportsAndHonoursSuppressions(t *testing.T) {
	t.Parallel()
	build := func(suppress bool) func(app awscdk.App) {
		return func(app awscdk.App) {
			stack := awscdk.NewStack(app, jsii.String("NagProbe"), nil)
			bucket := awss3.NewBucket(stack, jsii.String("Insecure"), &awss3.BucketProps{EnforceSSL: jsii.Bool(false)})
			if suppress {
				cfn := bucket.Node().DefaultChild().(awscdk.CfnResource)
				nagsuppress.Add(cfn, "AwsSolutions-S1", "probe: no access logs")
				nagsuppress.Add(cfn, "AwsSolutions-S10", "probe: SSL not enforced")
			}
		}
	}

	// GIVEN a bucket without SSL enforcement
	templates := synthInProcess(t, "nag-probe", build(false))
	// WHEN nag.js checks it
	findings, summary, err := runNag(t, templates...)
	t.Logf("cdk-nag:\n%s\n  %s", summary, strings.Join(findings, "\n  "))
	// THEN it fails and names the bucket and the rule
	if err == nil {
		t.Fatal("nag.js passed a bucket that does not enforce SSL")
	}
	s10 := regexp.MustCompile(`\.template\.json: NagProbe/Insecure/Resource: AwsSolutions-S10: `)
	if !slices.ContainsFunc(findings, s10.MatchString) {
		t.Errorf("no AwsSolutions-S10 finding on NagProbe/Insecure/Resource in:\n  %s", strings.Join(findings, "\n  "))
	}

	// GIVEN the same bucket with its findings suppressed in its Metadata
	templates = synthInProcess(t, "nag-probe-suppressed", build(true))
	// THEN nag.js passes it
	findings, summary, err = runNag(t, templates...)
	t.Logf("cdk-nag:\n%s", summary)
	if err != nil {
		t.Errorf("nag.js did not honour the cdk_nag suppressions (%v):\n  %s", err, strings.Join(findings, "\n  "))
	}
}

// synthInProcess builds an app with build in this test process,
// synthesizes it into a new directory of scratch, and returns the paths of
// every template in it, stages' nested assemblies included. (The examples
// run as users run them: see synthExample.)
func synthInProcess(t *testing.T, name string, build func(app awscdk.App)) []string {
	t.Helper()
	out, err := os.MkdirTemp(scratch, name)
	if err != nil {
		t.Fatal(err)
	}
	// Path metadata (as the CDK CLI asks for it) names each finding's
	// construct in nag.js's report.
	app := awscdk.NewApp(&awscdk.AppProps{
		Outdir:  jsii.String(out),
		Context: &map[string]interface{}{"aws:cdk:enable-path-metadata": true},
	})
	build(app)
	app.Synth(nil)
	var templates []string
	err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".template.json") {
			templates = append(templates, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(templates)
	return templates
}

// runNag runs scripts/nag.js over templates. It returns the unsuppressed
// findings (one line each: template: path: rule: message), nag.js's
// summary (stderr) and an error when nag.js exited non-zero. nag.js failing
// to check a template (exit 2) fails the test.
func runNag(t *testing.T, templates ...string) (findings []string, summary string, err error) {
	t.Helper()
	root := repoRoot(t)
	cmd := exec.Command("node", append([]string{filepath.Join(root, "scripts", "nag.js")}, templates...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if exit, ok := err.(*exec.ExitError); err != nil && (!ok || exit.ExitCode() != 1) {
		t.Fatalf("node scripts/nag.js: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line != "" {
			findings = append(findings, line)
		}
	}
	if err == nil && len(findings) > 0 {
		t.Fatalf("nag.js exited 0 but reported:\n%s", stdout.String())
	}
	if err != nil && len(findings) == 0 {
		t.Fatalf("nag.js exited %v but reported no finding:\n%s", err, stderr.String())
	}
	return findings, strings.TrimSpace(stderr.String()), err
}

// TestBadContextWritesNoAssembly: a value the constructs reject stops the
// example before synthesis, so no cloud assembly (not even a partial one)
// is written.
func TestBadContextWritesNoAssembly(t *testing.T) {
	t.Parallel()
	a, err := synthExample(t, "basic", map[string]string{"imageId": "ami-XYZ"})
	if err == nil {
		t.Fatal("synth succeeded with imageId ami-XYZ")
	}
	for _, want := range []string{"synth failed:", "AmiDestination/SharedAmi", "ImageId", `"ami-XYZ"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("synth error does not contain %q:\n%v", want, err)
		}
	}
	if a == nil {
		t.Fatal("no assembly directory to check")
	}
	entries, _ := os.ReadDir(a.Dir)
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the failed synth wrote %v to %s", names, a.Dir)
	}
}

//lint:file-ignore SA1019 assertions.Annotations answers with cxapi.SynthesisMessage, deprecated in favour of a type aws-cdk-go does not export

package test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	basicapp "github.com/crossaccountami/crossaccountami/examples/basic/app"
	importedkeyapp "github.com/crossaccountami/crossaccountami/examples/importedkey/app"
	pipelineapp "github.com/crossaccountami/crossaccountami/examples/pipeline/app"
)

// TestNag applies cdk-nag's AwsSolutionsChecks to every stack of every
// example and fails on any unsuppressed error or warning. Suppressions sit
// next to the resources they cover (constructs/internal/provider for the
// library's own handler, the examples for theirs); no rule is disabled on
// the aspect and no stack carries a blanket suppression.
func TestNag(t *testing.T) {
	nag := func() awscdk.IAspect {
		return cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Reports: jsii.Bool(false)})
	}
	cases := []struct {
		name  string
		build func(app awscdk.App)
	}{
		{"basic", func(app awscdk.App) {
			awscdk.Aspects_Of(app).Add(nag(), nil)
			basicapp.New(app, basicapp.ConfigFromContext(app))
		}},
		{"basic-organization", func(app awscdk.App) {
			awscdk.Aspects_Of(app).Add(nag(), nil)
			cfg := basicapp.ConfigFromContext(app)
			cfg.OrganizationId = "o-abcdefghij"
			basicapp.New(app, cfg)
		}},
		{"pipeline", func(app awscdk.App) { pipelineapp.New(app, nag()) }},
		// The source stack holds the source-side handler: key policy
		// statements on an imported key and the AMI's launch permission.
		{"importedkey", func(app awscdk.App) {
			awscdk.Aspects_Of(app).Add(nag(), nil)
			importedkeyapp.New(app, importedkeyapp.ConfigFromContext(app))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := os.MkdirTemp(scratch, "nag-"+tc.name)
			if err != nil {
				t.Fatal(err)
			}
			app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
			tc.build(app)

			var stacks []awscdk.Stack
			for _, c := range *app.Node().FindAll(constructs.ConstructOrder_PREORDER) {
				if *awscdk.Stack_IsStack(c) {
					stacks = append(stacks, c.(awscdk.Stack))
				}
			}
			if len(stacks) < 2 {
				t.Fatalf("found %d stacks, want the example's source and destination stacks at least", len(stacks))
			}
			for _, stack := range stacks {
				path := *stack.Node().Path()
				a := assertions.Annotations_FromStack(stack)
				var findings []string
				match := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
				for _, m := range append(*a.FindError(jsii.String("*"), match), *a.FindWarning(jsii.String("*"), match)...) {
					findings = append(findings, fmt.Sprintf("%s %s: %v", m.Level, *m.Id, firstLine(m.Entry.Data)))
				}
				// The evidence behind the examples' EC26 suppression: every launch
				// template encrypts its root volume with a KMS key.
				for id, lt := range *assertions.Template_FromStack(stack, nil).FindResources(jsii.String("AWS::EC2::LaunchTemplate"), nil) {
					body := fmt.Sprint((*lt)["Properties"])
					if !strings.Contains(body, "Encrypted:true") || !strings.Contains(body, "KmsKeyId:") {
						t.Errorf("%s: launch template %s does not encrypt its volumes with a KMS key: %s", path, id, body)
					}
				}
				slices.Sort(findings)
				t.Logf("%s: %d unsuppressed cdk-nag findings", path, len(findings))
				if len(findings) > 0 {
					t.Errorf("%s: unsuppressed cdk-nag findings:\n  %s", path, strings.Join(findings, "\n  "))
				}
			}
		})
	}
}

func firstLine(v interface{}) string {
	s := fmt.Sprint(v)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// TestBadContextWritesNoAssembly: a value the constructs reject stops the
// example before synthesis, so no cloud assembly (not even a partial one)
// is written.
func TestBadContextWritesNoAssembly(t *testing.T) {
	a, err := synthExample(t, "basic", map[string]string{"imageId": "ami-XYZ"})
	if err == nil {
		t.Fatal("synth succeeded with imageId ami-XYZ")
	}
	for _, want := range []string{"synth failed:", "AmiDestination/SharedAmi", "ImageId", `"ami-XYZ"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("synth error does not contain %q:\n%v", want, err)
		}
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

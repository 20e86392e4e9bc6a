package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// quickStartMain wraps README.md's "Quick start" block in a program that
// declares what the block uses but does not define: the two stacks on the
// README's accounts and a VPC whose availability zones are declared, not
// looked up (as the examples' newDestinationStack does), so synth needs no
// AWS call.
const quickStartMain = `package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
)

func main() {
	app := awscdk.NewApp(nil)
	sourceStack := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("us-east-1")},
	})
	destinationStack := awscdk.NewStack(app, jsii.String("AmiDestination"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("222222222222"), Region: jsii.String("us-east-1")},
	})
	destinationStack.Node().SetContext(jsii.String("availability-zones:account=222222222222:region=us-east-1"),
		[]string{"us-east-1a", "us-east-1b"})
	vpc := awsec2.NewVpc(destinationStack, jsii.String("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: jsii.Strings("us-east-1a", "us-east-1b"),
		NatGateways:       jsii.Number(0),
	})

	// README.md, Quick start:
%s
	app.Synth(nil)
}
`

// TestReadmeQuickStart: the README's "Quick start" code compiles as written
// and synthesizes a grant that the Auto Scaling group waits for. One
// deliberate synth (go run of the generated program).
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippet, err := quickStartSnippet(string(readme))
	if err != nil {
		t.Fatal(err)
	}

	// GIVEN the snippet in a main package inside this module (so that it
	// builds against this checkout with go.mod's versions). The directory's
	// leading underscore keeps it out of ./... (go vet, go test, staticcheck)
	// while it exists; .gitignore lists it in case a killed run leaves it.
	dir, err := os.MkdirTemp(".", "_readme-quickstart-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := fmt.Sprintf(quickStartMain, "\t"+strings.ReplaceAll(snippet, "\n", "\n\t"))
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	// WHEN it runs the way the CDK CLI runs an app
	out := filepath.Join(t.TempDir(), "cdk.out")
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CDK_OUTDIR="+out, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		t.Fatalf("README.md's Quick start does not compile or synthesize: %v\n%s\nthe program (README.md's block follows \"// README.md, Quick start:\"):\n%s",
			err, output.String(), numbered(src))
	}
	if strings.Contains(output.String(), "is deprecated") {
		t.Errorf("README.md's Quick start uses a deprecated API:\n%s", output.String())
	}

	// THEN the app needs no context lookup
	a := readAssembly(t, out)
	if missing, err := a.missing("", a.Manifest); err != nil {
		t.Fatal(err)
	} else if len(missing) > 0 {
		t.Errorf("the Quick start app needs context lookups, so cdk synth would call AWS: %v", missing)
	}
	// AND the destination stack holds the grant, and its Auto Scaling group
	// depends on it
	dest, ok := a.Templates["AmiDestination"]
	if !ok {
		t.Fatalf("no AmiDestination stack in %v", keys(a.Templates))
	}
	grantID, _ := only(t, dest, grantspec.ResourceType)
	asgID, asg := only(t, dest, "AWS::AutoScaling::AutoScalingGroup")
	if deps := strs(asg["DependsOn"]); !slices.Contains(deps, grantID) {
		t.Errorf("Auto Scaling group %s DependsOn = %v, want the grant %s", asgID, deps, grantID)
	}
}

// quickStartSnippet returns the first ```go block of README.md's
// "## Quick start" section.
func quickStartSnippet(readme string) (string, error) {
	_, section, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		return "", fmt.Errorf(`README.md has no "## Quick start" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```go\n")
	if !ok {
		return "", fmt.Errorf(`README.md's "Quick start" has no ` + "```go block")
	}
	block, _, ok = strings.Cut(block, "\n```")
	if !ok {
		return "", fmt.Errorf(`README.md's "Quick start" go block is not closed`)
	}
	return block, nil
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

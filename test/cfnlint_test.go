package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// cfnLintAccepted holds the only cfn-lint findings the tests accept: a
// warning (never an error) of one rule, in the templates and at the template
// paths named here, for the reason given. Any other finding fails the test,
// and so does an entry that no longer occurs in an assembly that has its
// template. README.md ("Tests") lists the same warnings: change both
// together (TestCfnLintAcceptedInReadme compares the rule ids).
var cfnLintAccepted = []cfnLintAllowance{
	{
		Rule: "W3010",
		// examples/basic (and TestTenDestinations' AmiDestination-<account>),
		// examples/importedkey, each destination stage of examples/pipeline,
		// and examples/copy's AmiCopy.
		Template: `^(AmiDestination(-\d{12})?|AmiCopy|assembly-Destination-\d{12}/Destination\d{12}AmiDestination[0-9A-F]{8})$`,
		Path:     `^Resources/VpcPublicSubnet\d+Subnet[0-9A-F]{8}/Properties/AvailabilityZone$`,
		Reason: "the example VPC's subnets (newFleet in each example's fleet.go): the example names its availability zones " +
			"so that synth needs no context lookup",
	},
	{
		Rule:     "W1020",
		Template: `^assembly-KeyOwner/KeyOwnerAmiSource[0-9A-F]{8}$`,
		Path:     `^Resources/PublishGetStackOutputRole[0-9A-F]{8}/Properties/AssumeRolePolicyDocument/Statement/\d+/Principal/AWS/\d+/Fn::Sub$`,
		Reason: "the pipeline's KeyOwner source template: CDK writes the destination accounts' deploy roles in the trust " +
			"policy of the key ARN output's GetStackOutput role as an Fn::Sub without variables; harmless",
	},
	{
		Rule:     "W3005",
		Template: `^AmiPipeline$`,
		Path:     `^Resources/Pipeline[0-9A-F]{8}/DependsOn/\d+$`,
		Message:  `^'PipelineRole[0-9A-F]{8}' dependency already enforced by a 'GetAtt'`,
		Reason: "the pipeline's role: CDK adds an explicit DependsOn on the role that the pipeline's GetAtt of it " +
			"already implies; harmless (the handler functions no longer get it: their role is a literal ARN)",
	},
	{
		Rule:     "W3005",
		Template: `^AmiGrants-HandlerCode-[a-z]{2}(-[a-z]+)+-\d+$`,
		Path:     `^Resources/CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C[0-9A-F]{8}/DependsOn/\d+$`,
		Message:  `^'CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756CServiceRole[0-9A-F]{8}' dependency already enforced by a 'GetAtt'`,
		Reason: "examples/organization's code stacks (organization.NewDeployment): aws-cdk-lib's own BucketDeployment function " +
			"has an explicit DependsOn on its service role, which its GetAtt of the role already implies; harmless",
	},
}

// cfnLintAllowance accepts one cfn-lint warning where it may occur.
type cfnLintAllowance struct {
	Rule     string // the rule id, e.g. W3010
	Template string // regexp over the template's key in the assembly (Assembly.TemplateFiles): "AmiDestination", "assembly-KeyOwner/KeyOwnerAmiSource22BD689E", "AmiGrants.AmiGrantsStackSetD7DA3C7F"
	Path     string // regexp over the finding's path in the template, "/"-joined: "Resources/<logical id>/..."
	Message  string // regexp over cfn-lint's message; empty accepts any
	Reason   string
}

func (a cfnLintAllowance) accepts(f cfnLintFinding) bool {
	return f.Level == "Warning" && f.Rule == a.Rule &&
		regexp.MustCompile(a.Template).MatchString(f.Template) &&
		regexp.MustCompile(a.Path).MatchString(f.Path) &&
		(a.Message == "" || regexp.MustCompile(a.Message).MatchString(f.Message))
}

// cfnLintFinding is one finding of cfn-lint --format json.
type cfnLintFinding struct {
	Rule, Level, Message string
	File                 string // relative to the assembly directory
	Template             string // File without .template.json: the template's key in Assembly.TemplateFiles
	Line, Column         int
	Path                 string
}

func (f cfnLintFinding) String() string {
	return fmt.Sprintf("%s (%s) at %s:%d:%d, %s: %s", f.Rule, f.Level, f.File, f.Line, f.Column, f.Path, f.Message)
}

// parseCfnLint reads cfn-lint's --format json output for the templates of
// the assembly in dir.
func parseCfnLint(dir string, out []byte) ([]cfnLintFinding, error) {
	var matches []struct {
		Filename string
		Level    string
		Message  string
		Location struct {
			Start struct{ LineNumber, ColumnNumber int }
			Path  []interface{}
		}
		Rule struct{ Id string }
	}
	if err := json.Unmarshal(out, &matches); err != nil {
		return nil, fmt.Errorf("reading cfn-lint's JSON output: %v\n%s", err, out)
	}
	var findings []cfnLintFinding
	for _, m := range matches {
		file, err := filepath.Rel(dir, m.Filename)
		if err != nil || strings.HasPrefix(file, "..") {
			return nil, fmt.Errorf("cfn-lint reported %s, which is not in the assembly %s", m.Filename, dir)
		}
		file = filepath.ToSlash(file)
		path := make([]string, len(m.Location.Path))
		for i, p := range m.Location.Path {
			path[i] = fmt.Sprint(p)
		}
		findings = append(findings, cfnLintFinding{
			Rule: m.Rule.Id, Level: m.Level, Message: m.Message,
			File: file, Template: strings.TrimSuffix(file, ".template.json"),
			Line: m.Location.Start.LineNumber, Column: m.Location.Start.ColumnNumber,
			Path: strings.Join(path, "/"),
		})
	}
	return findings, nil
}

// judgeCfnLint returns the findings cfnLintAccepted accepts, and a message for
// every other finding and for every entry whose template is among templates
// (the assembly's stacks) but that matched nothing: the README would then
// list a warning that no longer occurs.
func judgeCfnLint(findings []cfnLintFinding, templates []string) (accepted []cfnLintFinding, failures []string) {
	used := make([]bool, len(cfnLintAccepted))
	for _, f := range findings {
		i := slices.IndexFunc(cfnLintAccepted, func(a cfnLintAllowance) bool { return a.accepts(f) })
		if i < 0 {
			failures = append(failures, "cfn-lint "+f.String()+
				"\n  not accepted: fix the template, or, if it is harmless, add the rule, where it occurs and why to cfnLintAccepted (test/cfnlint_test.go) and to README.md \"Tests\"")
			continue
		}
		used[i] = true
		accepted = append(accepted, f)
	}
	for i, a := range cfnLintAccepted {
		re := regexp.MustCompile(a.Template)
		if !used[i] && slices.ContainsFunc(templates, re.MatchString) {
			failures = append(failures, fmt.Sprintf("cfnLintAccepted accepts %s in %s at %s, but cfn-lint no longer reports it in %v: remove it from cfnLintAccepted and from README.md \"Tests\"",
				a.Rule, a.Template, a.Path, slices.DeleteFunc(slices.Clone(templates), func(s string) bool { return !re.MatchString(s) })))
		}
	}
	return accepted, failures
}

// cfnLint runs cfn-lint over every template of an assembly (its stacks,
// its nested assemblies' and its StackSets') and fails on
// every finding cfnLintAccepted does not accept. A missing cfn-lint is a
// failure, not a skip.
func cfnLint(t *testing.T, a *Assembly) {
	t.Helper()
	if _, err := exec.LookPath("cfn-lint"); err != nil {
		t.Fatal("cfn-lint is required (pip install cfn-lint==1.51.0): ", err)
	}
	var files, templates []string
	for key, file := range a.TemplateFiles() {
		templates = append(templates, key)
		files = append(files, file)
	}
	if len(files) == 0 {
		t.Fatalf("no templates in %s", a.Dir)
	}
	slices.Sort(templates)
	args := append([]string{"--format", "json", "--"}, files...)
	cmd := exec.Command("cfn-lint", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// cfn-lint exits 2 for errors, 4 for warnings, 8 for informational
	// findings (bit flags); any other code means it did not lint.
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || exit.ExitCode()&^(2|4|8) != 0) {
		t.Fatalf("cfn-lint: %v\n%s%s", err, out, stderr.Bytes())
	}
	findings, perr := parseCfnLint(a.Dir, out)
	if perr != nil {
		t.Fatal(perr)
	}
	if err != nil && len(findings) == 0 {
		t.Fatalf("cfn-lint: %v, but it reported no finding\n%s%s", err, out, stderr.Bytes())
	}
	accepted, failures := judgeCfnLint(findings, templates)
	for _, f := range accepted {
		t.Logf("cfn-lint (accepted) %s", f)
	}
	for _, msg := range failures {
		t.Error(msg)
	}
}

// TestCfnLintFailsOnWarningsNotAccepted: the check fails on a warning that
// cfnLintAccepted does not name, or names elsewhere, and on any error, with
// the rule, file and line; and it fails when an accepted warning no longer
// occurs. No synth: the input is cfn-lint's JSON output.
func TestCfnLintFailsOnWarningsNotAccepted(t *testing.T) {
	const dir = "/tmp/cdk.out"
	// One finding as cfn-lint 1.51 prints it (examples/pipeline).
	const pipelineW3005 = `[{"Filename": "/tmp/cdk.out/AmiPipeline.template.json", "Id": "acf31b79-5af8-8e19-541c-c458dec9d022", "Level": "Warning",
	  "Location": {"End": {"ColumnNumber": 27, "LineNumber": 1027}, "Path": ["Resources", "Pipeline9850B417", "DependsOn", 1], "Start": {"ColumnNumber": 5, "LineNumber": 1027}},
	  "Message": "'PipelineRoleB27FAA37' dependency already enforced by a 'GetAtt' at 'Resources/Pipeline9850B417/Properties/RoleArn'", "ParentId": null,
	  "Rule": {"Description": "Check if DependsOn is specified if not needed. A Ref or a Fn::GetAtt already is an implicit dependency.", "Id": "W3005",
	    "ShortDescription": "Check obsolete DependsOn configuration for Resources", "Source": "https://aws.amazon.com/blogs/devops/optimize-aws-cloudformation-templates/"}}]`
	finding := func(rule, level, file string, line int, message string, path ...interface{}) string {
		b, err := json.Marshal([]interface{}{map[string]interface{}{
			"Filename": dir + "/" + file, "Level": level, "Message": message, "Rule": map[string]string{"Id": rule},
			"Location": map[string]interface{}{"Start": map[string]int{"LineNumber": line, "ColumnNumber": 5}, "Path": path},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const subnetAZ = "Avoid hardcoding availability zones 'us-east-1a'"
	const bucketDeploymentW3005 = "'CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756CServiceRole89A01265' dependency already enforced by a 'GetAtt' " +
		"at 'Resources/CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C81C01536/Properties/Role'"
	for _, tc := range []struct {
		name      string
		output    string
		templates []string
		want      []string // what one failure says; none: accepted
	}{{
		name:      "the pipeline's W3005 as cfn-lint prints it",
		output:    pipelineW3005,
		templates: []string{"AmiPipeline"},
	}, {
		name: "W3005 on aws-cdk-lib's BucketDeployment function in an organization code stack",
		output: finding("W3005", "Warning", "AmiGrants-HandlerCode-eu-west-1.template.json", 338, bucketDeploymentW3005,
			"Resources", "CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C81C01536", "DependsOn", 0),
		templates: []string{"AmiGrants-HandlerCode-eu-west-1"},
	}, {
		name: "W3005 on a BucketDeployment function elsewhere",
		output: finding("W3005", "Warning", "AmiGrants.template.json", 338, bucketDeploymentW3005,
			"Resources", "CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C81C01536", "DependsOn", 0),
		templates: []string{"AmiGrants"},
		want:      []string{"W3005", "AmiGrants.template.json:338"},
	}, {
		name:      "W3010 on the example VPC's subnet",
		output:    finding("W3010", "Warning", "AmiDestination.template.json", 287, subnetAZ, "Resources", "VpcPublicSubnet1Subnet5C2D37C4", "Properties", "AvailabilityZone"),
		templates: []string{"AmiDestination"},
	}, {
		name:      "W3010 on the VpcPublicSubnet of a pipeline destination stage",
		output:    finding("W3010", "Warning", "assembly-Destination-222222222223/Destination222222222223AmiDestination686E9360.template.json", 352, subnetAZ, "Resources", "VpcPublicSubnet2Subnet691E08A3", "Properties", "AvailabilityZone"),
		templates: []string{"assembly-Destination-222222222223/Destination222222222223AmiDestination686E9360"},
	}, {
		name:      "W3010 on another resource",
		output:    finding("W3010", "Warning", "AmiDestination.template.json", 412, subnetAZ, "Resources", "DatabaseSubnet1A2B3C4D", "Properties", "AvailabilityZone"),
		templates: []string{"AmiDestination"},
		want:      []string{"W3010", "AmiDestination.template.json:412", "Resources/DatabaseSubnet1A2B3C4D/Properties/AvailabilityZone"},
	}, {
		name: "W3005 on a handler function (no longer accepted)",
		output: finding("W3005", "Warning", "AmiDestination.template.json", 251, "'CrossAccountAmiGrantHandlerRole5BEDD970' dependency already enforced by a 'GetAtt'",
			"Resources", "CrossAccountAmiGrantHandlerFunction1A0BE40A", "DependsOn", 0),
		templates: []string{"AmiDestination"},
		want:      []string{"W3005", "AmiDestination.template.json:251"},
	}, {
		name: "W1020 outside the pipeline's KeyOwner template",
		output: finding("W1020", "Warning", "AmiSource.template.json", 144, "'Fn::Sub' isn't needed because there are no variables",
			"Resources", "PublishGetStackOutputRoleF953C5C7", "Properties", "AssumeRolePolicyDocument", "Statement", 0, "Principal", "AWS", 0, "Fn::Sub"),
		templates: []string{"AmiSource"},
		want:      []string{"W1020", "AmiSource.template.json:144"},
	}, {
		name:      "a rule nobody accepted",
		output:    finding("W2001", "Warning", "AmiSource.template.json", 17, "Parameter Unused not used.", "Parameters", "Unused"),
		templates: []string{"AmiSource"},
		want:      []string{"W2001", "AmiSource.template.json:17"},
	}, {
		name:      "an error where a warning is accepted",
		output:    finding("E3031", "Error", "AmiDestination.template.json", 287, "'us-east-1z' does not match", "Resources", "VpcPublicSubnet1Subnet5C2D37C4", "Properties", "AvailabilityZone"),
		templates: []string{"AmiDestination"},
		want:      []string{"E3031 (Error)", "AmiDestination.template.json:287"},
	}, {
		name:      "an accepted warning that no longer occurs",
		output:    `[]`,
		templates: []string{"AmiPipeline"},
		want:      []string{"W3005", "no longer reports it", "[AmiPipeline]"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			findings, err := parseCfnLint(dir, []byte(tc.output))
			if err != nil {
				t.Fatal(err)
			}
			_, failures := judgeCfnLint(findings, tc.templates)
			if len(tc.want) == 0 {
				if len(failures) > 0 {
					t.Errorf("want accepted, got %q", failures)
				}
				return
			}
			if !slices.ContainsFunc(failures, func(f string) bool {
				return !slices.ContainsFunc(tc.want, func(w string) bool { return !strings.Contains(f, w) })
			}) {
				t.Errorf("want a failure that says %q, got %q", tc.want, failures)
			}
		})
	}
}

// TestCfnLintAcceptedInReadme: README.md "Tests" lists the warnings that
// cfnLintAccepted accepts, no more, no fewer.
func TestCfnLintAcceptedInReadme(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, tests, ok := strings.Cut(string(readme), "\n## Tests\n")
	if !ok {
		t.Fatal(`README.md has no "## Tests" section`)
	}
	tests, _, _ = strings.Cut(tests, "\n## ")
	var listed, want []string
	for _, m := range regexp.MustCompile(`(?m)^- ([EWI]\d{4}) `).FindAllStringSubmatch(tests, -1) {
		listed = append(listed, m[1])
	}
	for _, a := range cfnLintAccepted {
		want = append(want, a.Rule)
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("README.md \"Tests\" lists the cfn-lint warnings %v, cfnLintAccepted (test/cfnlint_test.go) accepts %v", listed, want)
	}
}

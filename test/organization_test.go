package test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/organization"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

// TestOrganizationExample synthesizes examples/organization on its
// defaults (two OUs, keys in us-east-1 and eu-west-1): a key policy stack
// per region, a code stack per region, and the StackSet, which deploys
// after all of them. Its templates, the StackSet's own included, are
// golden files and pass cfn-lint (TestNag runs cdk-nag over them).
func TestOrganizationExample(t *testing.T) {
	t.Parallel()
	// GIVEN the example app on its defaults
	a := exampleAssembly(t, "organization", nil)
	regions := []string{"us-east-1", "eu-west-1"}
	want := []string{"AmiGrants"}
	for _, r := range regions {
		want = append(want, "AmiKeyAccess-"+r, "AmiGrants-HandlerCode-"+r)
	}
	slices.Sort(want)
	if got := keys(a.Templates); !slices.Equal(got, want) {
		t.Fatalf("stacks %v, want %v", got, want)
	}

	// THEN the StackSet's stack deploys after every key policy and code stack
	deps := strs(a.Manifest["artifacts"].(map[string]interface{})["AmiGrants"].(map[string]interface{})["dependencies"])
	for _, stack := range want {
		if stack != "AmiGrants" && !slices.Contains(deps, stack) {
			t.Errorf("AmiGrants dependencies %v, want %s", deps, stack)
		}
	}
	// AND each key policy stack keeps the organization's statements in its
	// region's key
	for _, r := range regions {
		_, kp := only(t, a.Templates["AmiKeyAccess-"+r], "Custom::KmsKeyPolicyStatements")
		if arn, _ := kp["Properties"].(map[string]interface{})["KeyArn"].(string); !strings.HasPrefix(arn, "arn:aws:kms:"+r+":111111111111:key/") {
			t.Errorf("AmiKeyAccess-%s manages the policy of %v", r, arn)
		}
	}
	// AND both statements let in exactly the accounts the StackSet reaches:
	// those of the two OUs and of every OU below them, at any depth
	// (aws:PrincipalOrgPaths as StringLike evaluates it)
	for _, r := range regions {
		_, kp := only(t, a.Templates["AmiKeyAccess-"+r], "Custom::KmsKeyPolicyStatements")
		var stmts []map[string]interface{}
		if err := json.Unmarshal([]byte(kp["Properties"].(map[string]interface{})["Statements"].(string)), &stmts); err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			checkOrgPaths(t, "AmiKeyAccess-"+r+": "+s["Sid"].(string), s, map[string]bool{
				"o-abcdefghij/r-ab12/ou-ab12-11111111/":                                   true,
				"o-abcdefghij/r-ab12/ou-ab12-22222222/":                                   true,
				"o-abcdefghij/r-ab12/ou-ab12-11111111/ou-ab12-33333333/":                  true,  // a child OU
				"o-abcdefghij/r-ab12/ou-ab12-22222222/ou-ab12-33333333/ou-ab12-44444444/": true,  // a grandchild OU
				"o-abcdefghij/r-ab12/":                                                    false, // the root itself
				"o-abcdefghij/r-ab12/ou-ab12-55555555/":                                   false, // a sibling OU
				"o-abcdefghij/r-ab12/ou-ab12-111111112/":                                  false, // an OU id that starts like ou-ab12-11111111
				"o-abcdefghij/r-ab12/ou-ab12-511111111/":                                  false, // one that ends like it
				"o-bbcdefghij/r-ab12/ou-ab12-11111111/":                                   false, // another organization
			})
		}
	}
	// AND one service-managed StackSet, for the two OUs in both regions,
	// whose template grants on the key of each account's region
	id, set := only(t, a.Templates["AmiGrants"], "AWS::CloudFormation::StackSet")
	props := set["Properties"].(map[string]interface{})
	if props["PermissionModel"] != "SERVICE_MANAGED" {
		t.Errorf("PermissionModel %v", props["PermissionModel"])
	}
	group, _ := json.Marshal(props["StackInstancesGroup"])
	if string(group) != `[{"DeploymentTargets":{"OrganizationalUnitIds":["ou-ab12-11111111","ou-ab12-22222222"]},"Regions":["us-east-1","eu-west-1"]}]` {
		t.Errorf("StackInstancesGroup %s", group)
	}
	inner := a.StackSets["AmiGrants."+id]
	if inner == nil {
		t.Fatalf("no StackSet template AmiGrants.%s in %v", id, keys(a.StackSets))
	}
	_, grant := only(t, inner, grantspec.ResourceType)
	keyArn, _ := json.Marshal(grant["Properties"].(map[string]interface{})[grantspec.PropKeyArn])
	if string(keyArn) != `{"Fn::FindInMap":["SourceKeys",{"Ref":"AWS::Region"},"Arn"]}` {
		t.Errorf("the StackSet's grant is on %s, want its region's key", keyArn)
	}
	if body, _ := json.Marshal(inner); strings.Contains(string(body), "BootstrapVersion") {
		t.Error("the StackSet's template refers to the CDK bootstrap: target accounts are not bootstrapped")
	}

	goldenAssembly(t, "organization", a)
	cfnLint(t, a)
}

// checkOrgPaths evaluates a key policy statement's ForAnyValue:StringLike
// aws:PrincipalOrgPaths condition for accounts of the given paths, each with
// the answer wanted (an account has one path, so ForAnyValue is a match of
// that one value).
func checkOrgPaths(t *testing.T, what string, statement map[string]interface{}, want map[string]bool) {
	t.Helper()
	cond, _ := statement["Condition"].(map[string]interface{})["ForAnyValue:StringLike"].(map[string]interface{})
	patterns := strs(cond["aws:PrincipalOrgPaths"])
	if len(patterns) == 0 {
		t.Errorf("%s: no aws:PrincipalOrgPaths condition", what)
		return
	}
	for path, w := range want {
		got := slices.ContainsFunc(patterns, func(p string) bool { return orgtarget.StringLike(p, path) })
		if got != w {
			t.Errorf("%s: an account with aws:PrincipalOrgPaths %s is let in: %v, want %v (patterns %q)", what, path, got, w, patterns)
		}
	}
}

// TestOrganizationKeysOfTheApp: keys made in this app (their ARNs known
// only at deploy time) feed the StackSet in one deploy: each key's stack
// holds the key and the organization's statements, the StackSet passes each
// key's ARN to its template as a stack set parameter (a cross-account
// reference: Fn::GetStackOutput, which CDK does not order), and its stack
// deploys after the key stacks. One synth; the templates pass cfn-lint.
func TestOrganizationKeysOfTheApp(t *testing.T) {
	t.Parallel()
	// GIVEN a key per region made in the source account's stacks, with the
	// organization's statements, and a deployment given their key access
	out, err := os.MkdirTemp(scratch, "orgkeys")
	if err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
	target := &encryptedami.OrganizationTarget{
		OrganizationId:        jsii.String("o-abcdefghij"),
		OrganizationalUnitIds: jsii.Strings("ou-ab12-11111111"),
	}
	regions := []string{"us-east-1", "eu-west-1"}
	var access []encryptedami.OrganizationKeyAccess
	for _, r := range regions {
		source := awscdk.NewStack(app, jsii.String("AmiKey-"+r), &awscdk.StackProps{
			Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String(r)},
		})
		key := awskms.NewKey(source, jsii.String("AmiKey"), &awskms.KeyProps{EnableKeyRotation: jsii.Bool(true)})
		access = append(access, encryptedami.NewOrganizationKeyAccess(source, jsii.String("OrganizationAccess"), &encryptedami.OrganizationKeyAccessProps{
			Key: key, Target: target,
		}))
	}
	management := awscdk.NewStack(app, jsii.String("AmiGrants"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("999999999999"), Region: jsii.String("us-east-1")},
	})
	organization.NewDeployment(management, jsii.String("AmiGrants"), &organization.DeploymentProps{
		Target: target, Regions: jsii.Strings(regions...), KeyAccess: &access,
	})
	// WHEN the app synthesizes
	app.Synth(nil)
	a := readAssembly(t, out)

	// THEN the StackSet's stack deploys after both key stacks
	deps := strs(a.Manifest["artifacts"].(map[string]interface{})["AmiGrants"].(map[string]interface{})["dependencies"])
	for _, r := range regions {
		if !slices.Contains(deps, "AmiKey-"+r) {
			t.Errorf("AmiGrants dependencies %v, want AmiKey-%s", deps, r)
		}
	}
	// AND the StackSet passes each key's ARN, read from its stack's output
	// across accounts, as a parameter
	id, set := only(t, a.Templates["AmiGrants"], "AWS::CloudFormation::StackSet")
	params, _ := json.Marshal(set["Properties"].(map[string]interface{})["Parameters"])
	for _, w := range []string{
		`{"ParameterKey":"SourceKeyArnEuWest1","ParameterValue":{"Fn::GetStackOutput":{"OutputName":"PublishOutputFnGetAttAmiKey`,
		`"Region":"eu-west-1","RoleArn":`, `:iam::111111111111:role/AmiKeyeuwest1PublishGetStackOutputRole`, `"StackName":"AmiKey-eu-west-1"`,
		`{"ParameterKey":"SourceKeyArnUsEast1","ParameterValue":{"Fn::GetStackOutput":{`, `"StackName":"AmiKey-us-east-1"`,
	} {
		if !strings.Contains(string(params), w) {
			t.Errorf("the StackSet's Parameters %s lack %s", params, w)
		}
	}
	// AND each stack instance puts its grant on the key of its region
	inner := a.StackSets["AmiGrants."+id]
	_, grant := only(t, inner, grantspec.ResourceType)
	keyArn, _ := json.Marshal(grant["Properties"].(map[string]interface{})[grantspec.PropKeyArn])
	if want := `{"Fn::If":["InEuWest1",{"Ref":"SourceKeyArnEuWest1"},{"Ref":"SourceKeyArnUsEast1"}]}`; string(keyArn) != want {
		t.Errorf("the StackSet's grant is on %s, want %s", keyArn, want)
	}
	cond, _ := json.Marshal(inner["Conditions"])
	if want := `{"InEuWest1":{"Fn::Equals":[{"Ref":"AWS::Region"},"eu-west-1"]}}`; string(cond) != want {
		t.Errorf("Conditions %s, want %s", cond, want)
	}
	// AND each key's policy holds the organization's statements for the OU and below
	for _, r := range regions {
		n := 0
		for _, s := range keyPolicyStatements(t, a.Templates["AmiKey-"+r]) {
			if sid, _ := s["Sid"].(string); strings.Contains(sid, "of the organization") {
				n++
				checkOrgPaths(t, "AmiKey-"+r+": "+sid, s, map[string]bool{
					"o-abcdefghij/r-ab12/ou-ab12-11111111/ou-ab12-33333333/": true,
					"o-abcdefghij/r-ab12/ou-ab12-22222222/":                  false,
				})
			}
		}
		if n != 2 {
			t.Errorf("AmiKey-%s: %d organization statements in the key policy, want 2", r, n)
		}
	}
	cfnLint(t, a)
}

package test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
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

package test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

const importedKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// TestImportedKeyExample synthesizes examples/importedkey on its defaults:
// the source stack manages the destination's statements in the imported
// key's policy and shares the AMI; the destination deploys after it.
func TestImportedKeyExample(t *testing.T) {
	// GIVEN the example app on its default accounts
	a, err := synthExample(t, "importedkey", nil)
	if err != nil {
		t.Fatal(err)
	}
	source, dest := a.Templates["AmiSource"], a.Templates["AmiDestination"]
	if source == nil || dest == nil {
		t.Fatalf("stacks %v", a.Templates)
	}

	// THEN the source stack keeps exactly the destination's three statements in the key's policy
	_, kp := only(t, source, "Custom::KmsKeyPolicyStatements")
	props := kp["Properties"].(map[string]interface{})
	if props["KeyArn"] != importedKeyArn {
		t.Errorf("KeyArn %v", props["KeyArn"])
	}
	stmts, err := keypolicyspec.ParseStatements(props["Statements"].(string))
	if err != nil {
		t.Fatal(err)
	}
	sids := strings.Join(keypolicyspec.Sids(stmts), "\n")
	for _, want := range []string{
		"Allow use of the key by AWSServiceRoleForAutoScaling of 222222222222",
		"Allow attachment of persistent resources by arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-AmiDestination-",
		"Allow grant management by arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-AmiDestination-",
	} {
		if !strings.Contains(sids, want) {
			t.Errorf("Sids\n%s\ndo not include %q", sids, want)
		}
	}
	// AND shares the AMI with the destination account
	_, share := only(t, source, "Custom::AmiLaunchPermission")
	sp := share["Properties"].(map[string]interface{})
	if sp["ImageId"] != "ami-0123456789abcdef0" || strs(sp["AccountIds"])[0] != "222222222222" {
		t.Errorf("sharing %v", sp)
	}
	// AND the source handler is the only Lambda function there, with a role that may edit only that key's policy
	only(t, source, "AWS::Lambda::Function")
	policy, _ := json.Marshal(Resources(source, "AWS::IAM::Policy"))
	if !strings.Contains(string(policy), `"Action":["kms:GetKeyPolicy","kms:PutKeyPolicy"],"Effect":"Allow","Resource":"`+importedKeyArn+`"`) {
		t.Errorf("source handler policy %s", policy)
	}
	// AND the destination grants on the imported key, without a reference to the source stack
	_, grant := only(t, dest, "Custom::KmsGrant")
	if grant["Properties"].(map[string]interface{})["KeyArn"] != importedKeyArn {
		t.Errorf("grant %v", grant)
	}
	if body, _ := json.Marshal(dest); strings.Contains(string(body), "Fn::GetStackOutput") {
		t.Error("the destination references the source stack's outputs")
	}
	// AND deploys after the source stack
	deps := a.Manifest["artifacts"].(map[string]interface{})["AmiDestination"].(map[string]interface{})["dependencies"]
	if !strings.Contains(strings.Join(strs(deps), ","), "AmiSource") {
		t.Errorf("AmiDestination dependencies %v", deps)
	}

	golden(t, "importedkey/AmiSource.template.json", source)
	golden(t, "importedkey/AmiDestination.template.json", dest)
	cfnLint(t, a)
}

package test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

const importedKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// TestImportedKeyExample synthesizes examples/importedkey on its defaults:
// the source stack manages the destination's statements in the imported
// key's policy and shares the AMI; the destination deploys after it.
func TestImportedKeyExample(t *testing.T) {
	t.Parallel()
	// GIVEN the example app on its default accounts
	a := exampleAssembly(t, "importedkey", nil)
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
	if len(stmts) != 2 {
		t.Errorf("%d managed statements, want 2 (use of the key, CreateGrant)", len(stmts))
	}
	for _, want := range []string{
		"Allow use of the key by AWSServiceRoleForAutoScaling of 222222222222",
		"Allow attachment of persistent resources by arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-AmiDestination-3874c726df",
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
	sourceHandlerTrust(t, source)
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

	goldenAssembly(t, "importedkey", a)
	cfnLint(t, a)
}

// sourceHandlerTrust checks what SECURITY.md ("The source side") claims of
// the source handler in a synthesized source stack: every permission of its
// role, who may assume the role and invoke the function, and that the
// custom resources are deleted before the permissions they need.
func sourceHandlerTrust(t *testing.T, source map[string]interface{}) {
	t.Helper()
	fnID, _ := only(t, source, "AWS::Lambda::Function")
	roleID, role := only(t, source, "AWS::IAM::Role")

	// Every action and resource of the role's policies (its default policy
	// and one per custom resource), and nothing else (the log group's ARN is
	// a GetAtt of its own log group).
	var got []string
	permissions := map[string][]string{} // by policy id
	for policyID, policy := range Resources(source, "AWS::IAM::Policy") {
		for _, st := range policy["Properties"].(map[string]interface{})["PolicyDocument"].(map[string]interface{})["Statement"].([]interface{}) {
			st := st.(map[string]interface{})
			if st["Effect"] != "Allow" || st["Condition"] != nil || st["NotAction"] != nil || st["NotResource"] != nil {
				t.Errorf("statement %v: want a plain Allow", st)
			}
			var resources []string
			if r, ok := st["Resource"].(map[string]interface{}); ok {
				resources = []string{fmt.Sprint(r)}
			} else {
				resources = strs(st["Resource"])
			}
			for _, a := range strs(st["Action"]) {
				permissions[policyID] = append(permissions[policyID], a)
				for _, r := range resources {
					got = append(got, a+" "+r)
				}
			}
		}
		if roles := strs(policy["Properties"].(map[string]interface{})["Roles"].([]interface{})[0].(map[string]interface{})["Ref"]); len(roles) != 1 || roles[0] != roleID {
			t.Errorf("policy %s is attached to %v, want the handler role %s", policyID, roles, roleID)
		}
	}
	slices.Sort(got)
	logs := "map[Fn::GetAtt:[CrossAccountAmiSourceHandlerLogsC243C059 Arn]]"
	want := []string{
		"ec2:DescribeImages *",
		"ec2:DescribeSnapshots *",
		"ec2:ModifyImageAttribute arn:aws:ec2:us-east-1::image/*",
		"ec2:ModifyImageAttribute arn:aws:ec2:us-east-1::snapshot/*",
		"ec2:ModifySnapshotAttribute arn:aws:ec2:us-east-1::image/*",
		"ec2:ModifySnapshotAttribute arn:aws:ec2:us-east-1::snapshot/*",
		"kms:DescribeKey arn:aws:kms:us-east-1:111111111111:key/*",
		"kms:GetKeyPolicy " + importedKeyArn,
		"kms:PutKeyPolicy " + importedKeyArn,
		"logs:CreateLogStream " + logs,
		"logs:PutLogEvents " + logs,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("source handler permissions\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// Only Lambda may assume the role; the role has no managed policies.
	trust, _ := json.Marshal(role["Properties"].(map[string]interface{})["AssumeRolePolicyDocument"])
	if string(trust) != `{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"}}],"Version":"2012-10-17"}` {
		t.Errorf("source handler role trust policy %s", trust)
	}
	if mp := role["Properties"].(map[string]interface{})["ManagedPolicyArns"]; mp != nil {
		t.Errorf("source handler role has managed policies %v", mp)
	}
	// No resource policy on the function and no function URL: only principals
	// of the account whose IAM policies allow lambda:InvokeFunction (CloudFormation
	// acting for the deployer) can invoke it.
	for _, typ := range []string{"AWS::Lambda::Permission", "AWS::Lambda::Url"} {
		if n := len(Resources(source, typ)); n != 0 {
			t.Errorf("the source stack has %d %s", n, typ)
		}
	}
	// Deletion order: each custom resource depends on the policy that holds
	// what its Delete needs (kms:PutKeyPolicy to remove the statements,
	// ec2:ModifyImageAttribute to remove launch permissions), so
	// CloudFormation deletes the resource first, also when a change removes
	// only that resource.
	for typ, needs := range map[string]string{"Custom::KmsKeyPolicyStatements": "kms:PutKeyPolicy", "Custom::AmiLaunchPermission": "ec2:ModifyImageAttribute"} {
		for id, r := range Resources(source, typ) {
			token, _ := json.Marshal(r["Properties"].(map[string]interface{})["ServiceToken"])
			if string(token) != `{"Fn::GetAtt":["`+fnID+`","Arn"]}` {
				t.Errorf("%s %s ServiceToken %s, want the source handler", typ, id, token)
			}
			ok := false
			for _, dep := range strs(r["DependsOn"]) {
				ok = ok || slices.Contains(permissions[dep], needs)
			}
			if !ok {
				t.Errorf("%s %s DependsOn %v: none holds %s", typ, id, r["DependsOn"], needs)
			}
		}
	}
}

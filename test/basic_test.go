package test

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// basicAssembly is examples/basic on its defaults, synthesized once for
// every test that asks for it.
func basicAssembly(t *testing.T) *Assembly {
	t.Helper()
	return exampleAssembly(t, "basic", nil)
}

const (
	slrArn = "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	// handlerRoleArn is the grant handler's role of the AmiDestination stack
	// in us-east-1 (the suffix hashes both).
	handlerRoleArn = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-AmiDestination-3874c726df"
)

func keyPolicyStatements(t *testing.T, tmpl map[string]interface{}) []map[string]interface{} {
	t.Helper()
	_, key := only(t, tmpl, "AWS::KMS::Key")
	var out []map[string]interface{}
	for _, s := range key["Properties"].(map[string]interface{})["KeyPolicy"].(map[string]interface{})["Statement"].([]interface{}) {
		out = append(out, s.(map[string]interface{}))
	}
	return out
}

func statementBySid(t *testing.T, stmts []map[string]interface{}, prefix string) map[string]interface{} {
	t.Helper()
	for _, s := range stmts {
		if sid, _ := s["Sid"].(string); strings.HasPrefix(sid, prefix) {
			return s
		}
	}
	t.Fatalf("no statement with Sid %q... in %v", prefix, stmts)
	return nil
}

func strs(v interface{}) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []interface{}:
		out := []string{}
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func TestBasicSourceKeyPolicy(t *testing.T) {
	t.Parallel()
	// GIVEN the example app on its default accounts
	a := basicAssembly(t)
	// WHEN we read the source key's policy
	stmts := keyPolicyStatements(t, a.Templates["AmiSource"])

	// THEN the destination's service-linked role may use the key, named
	// through the account principal and aws:PrincipalArn
	use := statementBySid(t, stmts, "Allow use of the key by AWSServiceRoleForAutoScaling of 222222222222")
	// (the actions of the AWS article's "Allow use of the key", spelled out:
	// amipolicy.UseActions wrote the template, so it cannot check it)
	if got, want := strs(use["Action"]), []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"}; !slices.Equal(got, want) {
		t.Errorf("use actions = %v, want %v", got, want)
	}
	if got := use["Principal"].(map[string]interface{})["AWS"]; got != "arn:aws:iam::222222222222:root" {
		t.Errorf("use principal = %v", got)
	}
	if got := use["Condition"].(map[string]interface{})["StringEquals"].(map[string]interface{})["aws:PrincipalArn"]; got != slrArn {
		t.Errorf("use aws:PrincipalArn = %v, want %s", got, slrArn)
	}

	// AND the grant creator may create grants only for that role, with the
	// Auto Scaling operations, retired by itself
	attach := statementBySid(t, stmts, "Allow attachment of persistent resources by "+handlerRoleArn)
	if got := strs(attach["Action"]); !slices.Equal(got, []string{"kms:CreateGrant"}) {
		t.Errorf("attach actions = %v", got)
	}
	cond := attach["Condition"].(map[string]interface{})
	if got := cond["StringEquals"].(map[string]interface{})["kms:GranteePrincipal"]; got != slrArn {
		t.Errorf("kms:GranteePrincipal = %v", got)
	}
	if got := strs(cond["ForAllValues:StringEquals"].(map[string]interface{})["kms:GrantOperations"]); !slices.Equal(got, []string{
		"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant", "DescribeKey"}) {
		t.Errorf("kms:GrantOperations = %v", got)
	}
	if got := cond["StringEquals"].(map[string]interface{})["kms:RetiringPrincipal"]; got != handlerRoleArn {
		t.Errorf("kms:RetiringPrincipal = %v, want %s", got, handlerRoleArn)
	}

	// AND nothing carries kms:GrantIsForAWSResource, which would forbid a
	// grant to the role, and the destination may not list, revoke or retire
	// grants through the key policy (KMS cannot narrow those to its own)
	body, _ := json.Marshal(a.Templates["AmiSource"])
	for _, banned := range []string{"GrantIsForAWSResource", `"kms:ListGrants"`, `"kms:RevokeGrant"`, `"kms:RetireGrant"`} {
		if strings.Contains(string(body), banned) {
			t.Errorf("the source template contains %s", banned)
		}
	}
	if len(stmts) != 3 {
		t.Errorf("%d key policy statements, want 3: CDK's default, use, CreateGrant", len(stmts))
	}
}

func TestBasicDestinationGrant(t *testing.T) {
	// GIVEN the example app
	a := basicAssembly(t)
	tmpl := a.Templates["AmiDestination"]

	// THEN one grant custom resource for the service-linked role with the Auto Scaling operations
	grantID, grant := only(t, tmpl, grantspec.ResourceType)
	props := grant["Properties"].(map[string]interface{})
	if props[grantspec.PropGranteePrincipal] != slrArn {
		t.Errorf("grantee = %v", props[grantspec.PropGranteePrincipal])
	}
	// (spelled out: grantspec.AutoScalingOperations wrote the template, so it
	// cannot check it)
	if got, want := strs(props[grantspec.PropOperations]), []string{
		"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"ReEncryptFrom", "ReEncryptTo", "CreateGrant", "DescribeKey",
	}; !slices.Equal(got, want) {
		t.Errorf("operations = %v, want %v", got, want)
	}
	// AND the key ARN crosses the account boundary as a stack output lookup
	if _, ok := props[grantspec.PropKeyArn].(map[string]interface{}); !ok {
		t.Errorf("KeyArn = %v, want a cross-stack reference", props[grantspec.PropKeyArn])
	}

	// AND it is ordered after the service-linked role resource
	slrID, _ := only(t, tmpl, "Custom::AutoScalingServiceLinkedRole")
	if deps := strs(grant["DependsOn"]); !slices.Contains(deps, slrID) {
		t.Errorf("grant %s DependsOn = %v, want %s", grantID, deps, slrID)
	}

	// AND one Go handler on provided.al2023 / arm64
	_, fn := only(t, tmpl, "AWS::Lambda::Function")
	fp := fn["Properties"].(map[string]interface{})
	if fp["Runtime"] != "provided.al2023" || !reflect.DeepEqual(fp["Architectures"], []interface{}{"arm64"}) || fp["Handler"] != "bootstrap" {
		t.Errorf("function runtime/arch/handler = %v %v %v", fp["Runtime"], fp["Architectures"], fp["Handler"])
	}

	// AND the grant names the handler's role as its retiring principal, and
	// the function knows its role
	if props[grantspec.PropRetiringPrincipal] != handlerRoleArn {
		t.Errorf("RetiringPrincipal = %v, want %s", props[grantspec.PropRetiringPrincipal], handlerRoleArn)
	}
	if got := fp["Environment"].(map[string]interface{})["Variables"].(map[string]interface{})["CROSSACCOUNTAMI_HANDLER_ROLE_ARN"]; got != handlerRoleArn {
		t.Errorf("CROSSACCOUNTAMI_HANDLER_ROLE_ARN = %v", got)
	}

	// AND its role may create that grant on that key's ARN only, and list
	// the grants it may retire (an IAM-only action that takes no resource)
	kms := map[string]interface{}{}
	for _, p := range Resources(tmpl, "AWS::IAM::Policy") {
		for _, s := range p["Properties"].(map[string]interface{})["PolicyDocument"].(map[string]interface{})["Statement"].([]interface{}) {
			s := s.(map[string]interface{})
			for _, act := range strs(s["Action"]) {
				if strings.HasPrefix(act, "kms:") {
					if _, dup := kms[act]; dup {
						t.Errorf("%s is allowed twice", act)
					}
					kms[act] = s
				}
			}
		}
	}
	if got := slices.Sorted(maps.Keys(kms)); !slices.Equal(got, []string{"kms:CreateGrant", "kms:ListRetirableGrants"}) {
		t.Fatalf("kms actions of the handler role %v, want CreateGrant and ListRetirableGrants only", got)
	}
	create := kms["kms:CreateGrant"].(map[string]interface{})
	if !reflect.DeepEqual(create["Resource"], props[grantspec.PropKeyArn]) {
		t.Errorf("CreateGrant resource = %v, want the key ARN %v", create["Resource"], props[grantspec.PropKeyArn])
	}
	wantCond := map[string]interface{}{
		"StringEquals": map[string]interface{}{"kms:GranteePrincipal": slrArn, "kms:RetiringPrincipal": handlerRoleArn},
		"ForAllValues:StringEquals": map[string]interface{}{"kms:GrantOperations": []interface{}{
			"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant", "DescribeKey"}},
	}
	if !reflect.DeepEqual(create["Condition"], wantCond) {
		t.Errorf("CreateGrant conditions %v, want %v", create["Condition"], wantCond)
	}
	if r := kms["kms:ListRetirableGrants"].(map[string]interface{})["Resource"]; r != "*" {
		t.Errorf("ListRetirableGrants resource %v", r)
	}

	// AND, all in all, the role may do exactly this (SECURITY.md "What the
	// handler role can do"): write its own log group, create the SLR, create
	// the grant, list its retirable grants
	var all []string
	for _, p := range Resources(tmpl, "AWS::IAM::Policy") {
		for _, s := range p["Properties"].(map[string]interface{})["PolicyDocument"].(map[string]interface{})["Statement"].([]interface{}) {
			s := s.(map[string]interface{})
			acts := strs(s["Action"])
			all = append(all, acts...)
			if slices.Contains(acts, "logs:PutLogEvents") {
				logsID, _ := only(t, tmpl, "AWS::Logs::LogGroup")
				if want := map[string]interface{}{"Fn::GetAtt": []interface{}{logsID, "Arn"}}; !reflect.DeepEqual(s["Resource"], want) {
					t.Errorf("logs resource %v, want its own log group %v", s["Resource"], want)
				}
			}
		}
	}
	// AND each policy keeps the name CDK's L2 Policy gave it: its logical id
	// (a renamed policy of a named role would be replaced on upgrade)
	for id, p := range Resources(tmpl, "AWS::IAM::Policy") {
		if name := p["Properties"].(map[string]interface{})["PolicyName"]; name != id {
			t.Errorf("policy %s is named %v, want its logical id", id, name)
		}
	}
	slices.Sort(all)
	if want := []string{"iam:CreateServiceLinkedRole", "kms:CreateGrant", "kms:ListRetirableGrants", "logs:CreateLogStream", "logs:PutLogEvents"}; !slices.Equal(all, want) {
		t.Errorf("the handler role's actions %v, want %v", all, want)
	}
}

func TestBasicDeployOrder(t *testing.T) {
	// GIVEN the example app
	a := basicAssembly(t)
	// THEN the destination stack depends on the source stack, so cdk deploy --all deploys the key policy first
	dest := a.Manifest["artifacts"].(map[string]interface{})["AmiDestination"].(map[string]interface{})
	if deps := strs(dest["dependencies"]); !slices.Contains(deps, "AmiSource") {
		t.Errorf("AmiDestination dependencies = %v, want AmiSource", deps)
	}
}

func TestBasicGolden(t *testing.T) {
	goldenAssembly(t, "basic", basicAssembly(t))
}

func TestBasicCfnLint(t *testing.T) {
	t.Parallel()
	cfnLint(t, basicAssembly(t))
}

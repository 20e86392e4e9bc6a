package test

import (
	"fmt"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/testenv/policyeval"
)

// TestCopyPolicyEvaluation asks, of examples/copy as deployed, whether AWS
// would let the copier role (the destination's handler role, with its
// identity policies from the template) do on the source key what a copy
// needs, and nothing else; CreateGrant only for an AWS resource (EBS's
// grant); and nothing for any other role of the destination, its Auto
// Scaling service-linked role, or a role of the same name in another account.
func TestCopyPolicyEvaluation(t *testing.T) {
	t.Parallel()
	a := exampleAssembly(t, "copy", nil)
	d := newDeployment(t, "copy", a)
	var sourceEnv, destEnv deployEnv
	for _, s := range d.stacks {
		switch s.key {
		case "AmiSource":
			sourceEnv = s.env
		case "AmiCopy":
			destEnv = s.env
		}
	}
	keyID, _ := only(t, a.Templates["AmiSource"], "AWS::KMS::Key")
	keyArn := keyArnFor(sourceEnv, "AmiSource", keyID)
	kp, err := d.keyPolicyOf(keyArn)
	if err != nil {
		t.Fatal(err)
	}
	dest := a.Templates["AmiCopy"]
	r := d.resolver("AmiCopy", destEnv, dest)
	roleID, role := only(t, dest, "AWS::IAM::Role")
	props := role["Properties"].(map[string]interface{})
	copierArn := fmt.Sprintf("arn:aws:iam::%s:role%s%s", destEnv.account, props["Path"], props["RoleName"])
	identity := d.roleIdentityPolicies(t, "AmiCopy/"+roleID, r, roleID)
	copier := policyeval.Principal{RoleArn: copierArn}

	req := func(p policyeval.Principal, action string, ctx ...interface{}) policyeval.Request {
		c := map[string]interface{}{"kms:CallerAccount": p.Account()}
		for i := 0; i+1 < len(ctx); i += 2 {
			c[ctx[i].(string)] = ctx[i+1]
		}
		return policyeval.Request{Principal: p, Action: action, Resource: keyArn, Context: c}
	}
	forAWS := func(v string) []interface{} { return []interface{}{"kms:GrantIsForAWSResource", v} }
	var cases []policyeval.Case
	for _, action := range []string{"kms:DescribeKey", "kms:Decrypt", "kms:ReEncryptFrom"} {
		cases = append(cases, policyeval.Case{Name: "the copier: " + action, Request: req(copier, action), IdentityPolicies: identity, KeyPolicy: kp,
			Want: policyeval.Allowed, WantKeyPolicy: policyeval.KeyPolicyAllows, Why: "EBS's list for a shared snapshot, the reads of a copy (amipolicy.CopySourceReadActions)"})
	}
	cases = append(cases,
		policyeval.Case{Name: "the copier: CreateGrant for an AWS resource (EBS's grant)", Request: req(copier, "kms:CreateGrant", forAWS("true")...), IdentityPolicies: identity, KeyPolicy: kp,
			Want: policyeval.Allowed, WantKeyPolicy: policyeval.KeyPolicyAllows, Why: "EBS, the grantee, makes a grant for the copy"},
		policyeval.Case{Name: "the copier: CreateGrant not for an AWS resource", Request: req(copier, "kms:CreateGrant", forAWS("false")...), IdentityPolicies: identity, KeyPolicy: kp,
			Want: policyeval.Denied, WantKeyPolicy: policyeval.KeyPolicyDoesNotAllow, Why: "kms:GrantIsForAWSResource: no grant for itself or another principal"},
	)
	for _, action := range []string{"kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptTo", "kms:ListGrants", "kms:RevokeGrant", "kms:PutKeyPolicy"} {
		cases = append(cases, policyeval.Case{Name: "the copier: " + action, Request: req(copier, action), IdentityPolicies: anyKMS, KeyPolicy: kp,
			Want: policyeval.Denied, WantKeyPolicy: policyeval.KeyPolicyDoesNotAllow, Why: "a copy only reads under the source key"})
	}
	others := map[string]string{
		"another role of the destination":                   adminOf(destEnv.account),
		"the destination's Auto Scaling role":               slrOf(destEnv.account),
		"a role of the copier's name in a stranger account": fmt.Sprintf("arn:aws:iam::%s:role%s%s", strangerAccount, props["Path"], props["RoleName"]),
	}
	for _, label := range keys(others) {
		p := policyeval.Principal{RoleArn: others[label]}
		for _, action := range []string{"kms:DescribeKey", "kms:Decrypt", "kms:ReEncryptFrom"} {
			cases = append(cases, policyeval.Case{Name: label + ": " + action, Request: req(p, action), IdentityPolicies: anyKMS, KeyPolicy: kp,
				Want: policyeval.Denied, WantKeyPolicy: policyeval.KeyPolicyDoesNotAllow, Why: "the statements pin the copier role"})
		}
		cases = append(cases, policyeval.Case{Name: label + ": CreateGrant for an AWS resource", Request: req(p, "kms:CreateGrant", forAWS("true")...), IdentityPolicies: anyKMS, KeyPolicy: kp,
			Want: policyeval.Denied, WantKeyPolicy: policyeval.KeyPolicyDoesNotAllow, Why: "the statements pin the copier role"})
	}
	policyeval.Check(t, cases)
}

// TestCopyPatternPolicyEvaluation: the statements of a CopySourceKeyAccess
// (amipolicy.CopySourcePatternStatements, as NewCopySourceKeyAccess places
// them; TestSourceKeyAccess checks the placing), asked of the key policy
// alone: the copier role of a listed account, or of an account of the
// organization, may read and create EBS's grant; without
// kms:GrantIsForAWSResource it may not; another role of that account, and
// the copier role of an account outside, get nothing.
func TestCopyPatternPolicyEvaluation(t *testing.T) {
	t.Parallel()
	pattern := "arn:aws:iam::*:role/crossaccountami/*"
	copierOf := func(account string) string {
		return "arn:aws:iam::" + account + ":role/crossaccountami/GrantHandler-AmiCopy-0123456789"
	}
	scopes := map[string]struct {
		kp      map[string]interface{}
		in, out member
	}{
		"accounts": {
			kp: launcherKeyPolicy(amipolicy.CopySourcePatternStatements(amipolicy.CopierScope{Name: "Copiers", Partition: "aws", Accounts: []string{"222222222222", "333333333333"}, CopierPattern: pattern})),
			in: member{account: "333333333333"}, out: member{account: strangerAccount},
		},
		"organization": {
			kp: launcherKeyPolicy(amipolicy.CopySourcePatternStatements(amipolicy.CopierScope{Name: "Org", Partition: "aws", OrganizationID: exampleOrgID, CopierPattern: pattern})),
			in: member{"333333333333", exampleOrgID, exampleOU1}, out: member{"888888888888", "o-zzzzzzzzzz", "o-zzzzzzzzzz/r-zz99/"},
		},
	}
	var cases []policyeval.Case
	for _, name := range keys(scopes) {
		sc := scopes[name]
		ask := func(label string, p policyeval.Principal, action string, ctx map[string]interface{}, want policyeval.KeyPolicyWant, why string) {
			cases = append(cases, policyeval.Case{Name: name + ": " + label + ": " + action, Request: keyRequest(p, action, ctx), KeyPolicy: sc.kp, WantKeyPolicy: want, Why: why})
		}
		forAWS := map[string]interface{}{"kms:GrantIsForAWSResource": "true"}
		notForAWS := map[string]interface{}{"kms:GrantIsForAWSResource": "false"}
		copier := sc.in.principal(copierOf(sc.in.account))
		for _, action := range []string{"kms:DescribeKey", "kms:Decrypt", "kms:ReEncryptFrom"} {
			ask("a covered copier", copier, action, nil, policyeval.KeyPolicyAllows, "a copy's reads")
			ask("another role of a covered account", sc.in.principal(adminOf(sc.in.account)), action, nil, policyeval.KeyPolicyDoesNotAllow, "copier roles only")
			ask("the copier of an account not covered", sc.out.principal(copierOf(sc.out.account)), action, nil, policyeval.KeyPolicyDoesNotAllow, "not covered")
		}
		ask("a covered copier, for an AWS resource", copier, "kms:CreateGrant", forAWS, policyeval.KeyPolicyAllows, "EBS's grant for the copy")
		ask("a covered copier, not for an AWS resource", copier, "kms:CreateGrant", notForAWS, policyeval.KeyPolicyDoesNotAllow, "kms:GrantIsForAWSResource")
		ask("the copier of an account not covered", sc.out.principal(copierOf(sc.out.account)), "kms:CreateGrant", forAWS, policyeval.KeyPolicyDoesNotAllow, "not covered")
		for _, action := range []string{"kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptTo"} {
			ask("a covered copier", copier, action, nil, policyeval.KeyPolicyDoesNotAllow, "a copy only reads under the source key")
		}
	}
	policyeval.Check(t, cases)
}

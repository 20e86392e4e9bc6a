package test

import (
	"fmt"
	"testing"

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

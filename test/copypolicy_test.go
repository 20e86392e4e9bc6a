package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
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
	cases = append(cases, copierIdentityCases(t, d, a, destEnv, copier, identity)...)
	policyeval.Check(t, cases)
}

// copierIdentityCases ask of the copier role's identity policies (the
// shared copier policy, the copy's own and the role's own, as deployed)
// what the copy's handler does in the destination account
// (amipolicy.CopierSharedStatements, CopierKeyStatements):
//   - ec2:DeregisterImage and ec2:DeleteSnapshot on a resource tagged with
//     this stack's id, and on no other (untagged, another stack's id);
//   - ec2:CreateTags while CopyImage creates the resource
//     (ec2:CreateAction = CopyImage), never on an existing image;
//   - ec2:CopyImage on the source image (and the new one's ARN);
//   - lambda:InvokeFunction on its own function, no other;
//   - on the destination key, the copy's writes and EBS's grant only.
//
// The engine drops a context key that does not apply to the action
// (policyeval.Mismatch fails the case then), so the cases also check that
// aws:ResourceTag applies to DeregisterImage and DeleteSnapshot, and
// ec2:CreateAction to CreateTags, in the Service Authorization Reference
// data the engine carries.
func copierIdentityCases(t *testing.T, d *deployment, a *Assembly, destEnv deployEnv, copier policyeval.Principal, identity []policyeval.Policy) []policyeval.Case {
	t.Helper()
	dest := a.Templates["AmiCopy"]
	stackID := fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/00000000-0000-0000-0000-000000000000", destEnv.region, destEnv.account, destEnv.stackName)
	otherStackID := fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/OtherStack/11111111-1111-1111-1111-111111111111", destEnv.region, destEnv.account)
	image := fmt.Sprintf("arn:aws:ec2:%s::image/ami-0123456789abcdef0", destEnv.region)
	copyImage := fmt.Sprintf("arn:aws:ec2:%s::image/ami-0aaaaaaaaaaaaaaaa", destEnv.region)
	snapshot := fmt.Sprintf("arn:aws:ec2:%s::snapshot/snap-0123456789abcdef0", destEnv.region)
	fnID, _ := only(t, dest, "AWS::Lambda::Function")
	// The resolver names a function of generated name by its logical id.
	function := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", destEnv.region, destEnv.account, fnID)
	other := fmt.Sprintf("arn:aws:lambda:%s:%s:function:SomeoneElse", destEnv.region, destEnv.account)
	ask := func(name, action, resource string, want policyeval.Want, why string, ctx ...string) policyeval.Case {
		c := map[string]interface{}{}
		for i := 0; i+1 < len(ctx); i += 2 {
			c[ctx[i]] = ctx[i+1]
		}
		// EC2 images and snapshots have no resource-based policy: IAM
		// decides by the identity policies alone (EC2 checks a shared
		// image's launch and create-volume permissions apart), so the
		// resource counts as the caller's account, where the engine asks
		// for no resource policy.
		return policyeval.Case{Name: "the copier: " + name, Request: policyeval.Request{Principal: copier, Action: action, Resource: resource, ResourceAccount: destEnv.account, Context: c},
			IdentityPolicies: identity, Want: want, Why: why}
	}
	tag := "aws:ResourceTag/" + copyspec.TagStackId
	var cases []policyeval.Case
	for _, r := range []struct{ action, resource string }{{"ec2:DeregisterImage", copyImage}, {"ec2:DeleteSnapshot", snapshot}} {
		cases = append(cases,
			ask(r.action+" of this stack's copy", r.action, r.resource, policyeval.Allowed, "removes only what it tagged with its stack id", tag, stackID),
			ask(r.action+" of an untagged resource", r.action, r.resource, policyeval.Denied, "not even a bug removes another image"),
			ask(r.action+" of another stack's copy", r.action, r.resource, policyeval.Denied, "pinned to this stack's id", tag, otherStackID),
		)
	}
	for _, r := range []string{copyImage, snapshot} {
		cases = append(cases,
			ask("CreateTags while CopyImage creates "+r, "ec2:CreateTags", r, policyeval.Allowed, "CopyImage's TagSpecifications", "ec2:CreateAction", "CopyImage"),
			ask("CreateTags on an existing "+r, "ec2:CreateTags", r, policyeval.Denied, "tags only on creation by CopyImage"),
			ask("CreateTags while another action creates "+r, "ec2:CreateTags", r, policyeval.Denied, "tags only on creation by CopyImage", "ec2:CreateAction", "CreateImage"),
		)
	}
	cases = append(cases,
		ask("CopyImage of the source image", "ec2:CopyImage", image, policyeval.Allowed, "copy-ami-permissions.html: CopyImage on the source AMI"),
		ask("CopyImage of the source's snapshot", "ec2:CopyImage", snapshot, policyeval.Allowed, "CopyImage copies the backing snapshots"),
		ask("CopyImage of an image of another region", "ec2:CopyImage", strings.Replace(image, destEnv.region, "eu-west-3", 1), policyeval.Denied, "the copy is made from the stack's region"),
		ask("InvokeFunction on itself", "lambda:InvokeFunction", function, policyeval.Allowed, "the hand-over to its next invocation"),
		ask("InvokeFunction on another function", "lambda:InvokeFunction", other, policyeval.Denied, "only itself"),
	)
	keyID, _ := only(t, dest, "AWS::KMS::Key")
	destKey := keyArnFor(destEnv, "AmiCopy", keyID)
	kp, err := d.keyPolicyOf(destKey)
	if err != nil {
		t.Fatal(err)
	}
	onKey := func(name, action string, want policyeval.Want, kpWant policyeval.KeyPolicyWant, why string, ctx ...interface{}) policyeval.Case {
		c := map[string]interface{}{"kms:CallerAccount": destEnv.account}
		for i := 0; i+1 < len(ctx); i += 2 {
			c[ctx[i].(string)] = ctx[i+1]
		}
		return policyeval.Case{Name: "the copier on the destination key: " + name, Request: policyeval.Request{Principal: copier, Action: action, Resource: destKey, Context: c},
			IdentityPolicies: identity, KeyPolicy: kp, Want: want, WantKeyPolicy: kpWant, Why: why}
	}
	for _, action := range amipolicy.CopyDestinationKeyActions {
		cases = append(cases, onKey(action, action, policyeval.Allowed, policyeval.KeyPolicyAllows, "the copy is written under the destination key (amipolicy.CopyDestinationKeyActions)"))
	}
	cases = append(cases,
		onKey("CreateGrant for an AWS resource", "kms:CreateGrant", policyeval.Allowed, policyeval.KeyPolicyAllows, "EBS's grant for the copy", "kms:GrantIsForAWSResource", "true"),
		onKey("CreateGrant not for an AWS resource", "kms:CreateGrant", policyeval.Denied, "", "kms:GrantIsForAWSResource: no grant for itself", "kms:GrantIsForAWSResource", "false"),
		onKey("Encrypt", "kms:Encrypt", policyeval.Denied, "", "not in the copy's list"),
		onKey("ReEncryptFrom", "kms:ReEncryptFrom", policyeval.Denied, "", "the copy only arrives under the destination key"),
		onKey("ScheduleKeyDeletion", "kms:ScheduleKeyDeletion", policyeval.Denied, "", "no key administration"),
	)
	return cases
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

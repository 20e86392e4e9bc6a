package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/testenv/policyeval"
)

// The policy evaluation asks, of every example's synthesized key policies
// and grant handler roles, "would AWS allow this request?", with a real IAM
// policy evaluation engine (internal/testenv/policyeval, calibrated there
// against cases AWS documents), instead of comparing statements with
// expected JSON. Each example is read as deployed (policytemplate_test.go);
// the cases below are built from what each destination's Custom::KmsGrant
// asks and from literal values of the examples' defaults.
//
// To add a case: append it to the function that builds the kind of case
// (destinationCases for what every destination may and may not do,
// crossDestinationCases for one destination against another,
// refusedAccountCases for an account that must get nothing, and
// cutOffAccounts for an account the key owner shuts out), then run
//   go test ./test -run TestPolicyEvaluation -v
// Every case runs in one Node process; the test fails with one table of the
// cases whose answer differs.

// strangerAccount is an account that no example names: it is not a
// destination, nor in the organization.
const strangerAccount = "999988887777"

func slrOf(account string) string {
	return "arn:aws:iam::" + account + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
}

// adminOf is a role of account that is not the grant handler.
func adminOf(account string) string {
	return "arn:aws:iam::" + account + ":role/Admin"
}

// anyKMS is an identity policy that allows every KMS action: a principal
// with it is stopped by the key policy alone.
var anyKMS = []policyeval.Policy{{Name: "AnyKMS", Document: map[string]interface{}{
	"Version": "2012-10-17", "Statement": []interface{}{map[string]interface{}{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}},
}}}

// member is an account as AWS Organizations sees it (no organization: an
// empty orgID).
type member struct {
	account string
	orgID   string
	path    string // the account's full path: o-…/r-…/ou-…/
}

func (m member) principal(roleArn string) policyeval.Principal {
	p := policyeval.Principal{RoleArn: roleArn, OrgID: m.orgID}
	if m.path != "" {
		p.OrgPaths = []string{m.path}
	}
	return p
}

// The organization of examples/organization's defaults (organizationId,
// organizationalUnits, organizationalUnitPaths): o-abcdefghij, root r-ab12,
// the StackSet targeting OUs ou-ab12-11111111 and ou-ab12-22222222 (and,
// being service-managed, every OU below them).
const (
	exampleOrgID = "o-abcdefghij"
	exampleRoot  = exampleOrgID + "/r-ab12/"
	exampleOU1   = exampleRoot + "ou-ab12-11111111/"
	exampleOU2   = exampleRoot + "ou-ab12-22222222/"
)

// orgAccount is an account of the organization example's cases.
type orgAccount struct {
	label string
	member
	allowed bool
	// why the answer is what it is (the claim, or the issue that fixes it)
	why string
}

// organizationAccounts are the accounts the organization cases ask about:
// the StackSet reaches the first three (AWS deploys a service-managed
// StackSet to the target OUs and their child OUs), and the key policy must
// let each create its grant; the others must get nothing.
var organizationAccounts = []orgAccount{
	{label: "account in OU ou-ab12-11111111", member: member{"333333333333", exampleOrgID, exampleOU1}, allowed: true, why: "a target OU's account"},
	{label: "account in OU ou-ab12-22222222", member: member{"444444444444", exampleOrgID, exampleOU2}, allowed: true, why: "a target OU's account"},
	{label: "account in a grandchild OU of ou-ab12-11111111", member: member{"555555555555", exampleOrgID, exampleOU1 + "ou-ab12-33333333/ou-ab12-44444444/"}, allowed: true,
		why: "the StackSet reaches child OUs at any depth, and the key policy's o-ORG/*/ou-ID/* patterns match them (issue 17 finding 1)"},
	{label: "account in an OU the StackSet does not target", member: member{"666666666666", exampleOrgID, exampleRoot + "ou-ab12-99999999/"}, allowed: false, why: "not a target"},
	{label: "account outside any organization", member: member{strangerAccount, "", ""}, allowed: false, why: "not in the organization"},
	{label: "account of another organization", member: member{"888888888888", "o-zzzzzzzzzz", "o-zzzzzzzzzz/r-zz99/ou-zz99-11111111/"}, allowed: false, why: "another organization"},
}

// cutOffAccounts are accounts of a target OU that the key owner has shut
// out: their grant creator and service-linked role must be denied
// explicitly, by a statement no scheduled check can undo (issue 17, "a
// durable cut-off"): examples/organization's cutOffAccounts context adds
// encryptedami.NewKeyAccessCutOff to each key. Each gets cutOffCases.
var cutOffAccounts = []orgAccount{
	{label: "cut-off account in OU ou-ab12-11111111", member: member{"123412341234", exampleOrgID, exampleOU1}},
	{label: "cut-off account in a grandchild OU of ou-ab12-22222222", member: member{"432143214321", exampleOrgID, exampleOU2 + "ou-ab12-55555555/ou-ab12-66666666/"}},
}

// organizationContext is the context examples/organization is evaluated
// with: its defaults, and the cut-off accounts.
var organizationContext = map[string]string{"cutOffAccounts": "123412341234,432143214321"}

// destination is a deployed grant and the account it runs in.
type destination struct {
	label     string
	g         deployedGrant
	m         member
	keyPolicy interface{}
}

func (d destination) handler() policyeval.Principal { return d.m.principal(d.g.handler) }
func (d destination) slr() policyeval.Principal     { return d.m.principal(slrOf(d.m.account)) }

// kmsRequest is a KMS request on the destination's key; context holds the
// request's own keys, pairs of key and value.
func (d destination) kmsRequest(p policyeval.Principal, action string, context ...interface{}) policyeval.Request {
	ctx := map[string]interface{}{"kms:CallerAccount": p.Account()}
	for i := 0; i+1 < len(context); i += 2 {
		if context[i+1] != nil {
			ctx[context[i].(string)] = context[i+1]
		}
	}
	return policyeval.Request{Principal: p, Action: action, Resource: d.g.keyArn, Context: ctx}
}

// createGrant is a CreateGrant by p on the destination's key; an empty
// retiring principal leaves the key out of the request, as KMS does.
func (d destination) createGrant(p policyeval.Principal, grantee, retiring string, ops []string) policyeval.Request {
	var r interface{}
	if retiring != "" {
		r = retiring
	}
	return d.kmsRequest(p, "kms:CreateGrant", "kms:GranteePrincipal", grantee, "kms:RetiringPrincipal", r, "kms:GrantOperations", ops)
}

// newCase is a request and its expected decision. A request expected
// Denied must be refused by the key policy alone too: the key owner cannot
// rely on the destination's IAM policies, which the destination's
// administrators may change.
func (d destination) newCase(name string, req policyeval.Request, identity []policyeval.Policy, want policyeval.Want, why string) policyeval.Case {
	c := policyeval.Case{Name: d.label + ": " + name, Request: req, IdentityPolicies: identity, KeyPolicy: d.keyPolicy, Want: want, Why: why}
	if want == policyeval.Denied {
		c.WantKeyPolicy = policyeval.KeyPolicyDoesNotAllow
	}
	return c
}

// keyPolicyCase asks only what the key policy answers (for the
// service-linked role, whose identity policy is AWS's).
func (d destination) keyPolicyCase(name string, req policyeval.Request, want policyeval.KeyPolicyWant, why string) policyeval.Case {
	return policyeval.Case{Name: d.label + ": " + name, Request: req, KeyPolicy: d.keyPolicy, WantKeyPolicy: want, Why: why}
}

// destinationCases: what a destination's handler and service-linked role
// may do with the source key, and what they and the destination's other
// roles may not (README "What gets created", SECURITY.md "What the handler
// role can do").
func destinationCases(d destination) []policyeval.Case {
	g, account := d.g, d.m.account
	with := func(ops []string, extra ...string) []string { return append(slices.Clone(ops), extra...) }
	return []policyeval.Case{
		d.newCase("handler creates its own grant (the Custom::KmsGrant's request)", d.createGrant(d.handler(), g.grantee, g.retiring, g.operations), g.identity, policyeval.Allowed, "the grant the handler exists to create"),
		d.newCase("handler creates its grant with a subset of the operations", d.createGrant(d.handler(), g.grantee, g.retiring, []string{"Decrypt", "DescribeKey"}), g.identity, policyeval.Allowed, "ForAllValues: a subset is within the set"),
		d.newCase("handler creates a grant for another role of its account", d.createGrant(d.handler(), adminOf(account), g.retiring, g.operations), g.identity, policyeval.Denied, "kms:GranteePrincipal is the SLR only"),
		d.newCase("handler creates a grant for a third account's SLR", d.createGrant(d.handler(), slrOf(strangerAccount), g.retiring, g.operations), g.identity, policyeval.Denied, "kms:GranteePrincipal is its own account's SLR only"),
		d.newCase("handler creates a grant retired by another principal", d.createGrant(d.handler(), g.grantee, adminOf(account), g.operations), g.identity, policyeval.Denied, "kms:RetiringPrincipal is the handler only"),
		d.newCase("handler creates a grant without a retiring principal", d.createGrant(d.handler(), g.grantee, "", g.operations), g.identity, policyeval.Denied, "an absent kms:RetiringPrincipal matches no StringEquals"),
		d.newCase("handler creates a grant with the extra operation RetireGrant", d.createGrant(d.handler(), g.grantee, g.retiring, with(g.operations, "RetireGrant")), g.identity, policyeval.Denied, "ForAllValues: RetireGrant is outside the 8 operations"),
		d.newCase("handler creates a grant with the extra operation Sign", d.createGrant(d.handler(), g.grantee, g.retiring, with(g.operations, "Sign")), g.identity, policyeval.Denied, "ForAllValues: Sign is outside the 8 operations"),
		d.newCase("handler lists the key's grants", d.kmsRequest(d.handler(), "kms:ListGrants"), g.identity, policyeval.Denied, "no kms:ListGrants: it would list every grant of the key"),
		d.newCase("handler revokes a grant", d.kmsRequest(d.handler(), "kms:RevokeGrant"), g.identity, policyeval.Denied, "no kms:RevokeGrant: KMS cannot narrow it to one grant"),
		d.newCase("handler retires a grant by policy", d.kmsRequest(d.handler(), "kms:RetireGrant"), g.identity, policyeval.Denied, "no kms:RetireGrant by policy: the grant's retiring principal retires it, authorized by the grant"),
		d.newCase("handler decrypts with the key", d.kmsRequest(d.handler(), "kms:Decrypt"), g.identity, policyeval.Denied, "the handler creates the grant, it does not use the key"),
		d.newCase("another role of the account, allowed kms:* by IAM, creates the handler's grant", d.createGrant(d.m.principal(adminOf(account)), g.grantee, g.retiring, g.operations), anyKMS, policyeval.Denied, "aws:PrincipalArn is the handler role only"),
		d.keyPolicyCase("SLR decrypts", d.kmsRequest(d.slr(), "kms:Decrypt"), policyeval.KeyPolicyAllows, "Allow use of the key (SLR)"),
		d.keyPolicyCase("SLR generates a data key without plaintext", d.kmsRequest(d.slr(), "kms:GenerateDataKeyWithoutPlaintext"), policyeval.KeyPolicyAllows, "Allow use of the key (SLR): kms:GenerateDataKey*"),
		d.keyPolicyCase("SLR re-encrypts to the key", d.kmsRequest(d.slr(), "kms:ReEncryptTo"), policyeval.KeyPolicyAllows, "Allow use of the key (SLR): kms:ReEncrypt*"),
		d.keyPolicyCase("SLR describes the key", d.kmsRequest(d.slr(), "kms:DescribeKey"), policyeval.KeyPolicyAllows, "Allow use of the key (SLR)"),
		d.keyPolicyCase("SLR changes the key policy", d.kmsRequest(d.slr(), "kms:PutKeyPolicy"), policyeval.KeyPolicyDoesNotAllow, "use only, no administration"),
		d.keyPolicyCase("SLR creates a grant by policy", d.createGrant(d.slr(), slrOf(account), "", g.operations), policyeval.KeyPolicyDoesNotAllow, "the SLR's CreateGrant comes from its grant, not the key policy"),
		d.keyPolicyCase("another role of the account decrypts", d.kmsRequest(d.m.principal(adminOf(account)), "kms:Decrypt"), policyeval.KeyPolicyDoesNotAllow, "aws:PrincipalArn is the SLR only"),
	}
}

// crossDestinationCases: a destination's handler cannot create grants
// for another destination's SLR, nor name another destination's handler as
// the retiring principal (README: a grant creator creates grants only for
// its own account's SLR, retired by itself).
func crossDestinationCases(d, other destination) []policyeval.Case {
	g := d.g
	return []policyeval.Case{
		d.newCase("handler creates a grant for the SLR of "+other.label, d.createGrant(d.handler(), other.g.grantee, g.retiring, g.operations), g.identity, policyeval.Denied, "kms:GranteePrincipal is its own SLR only"),
		d.newCase("handler creates a grant retired by the handler of "+other.label, d.createGrant(d.handler(), g.grantee, other.g.retiring, g.operations), g.identity, policyeval.Denied, "kms:RetiringPrincipal is itself only"),
		// The other destination's handler, making exactly the other's
		// request with this handler's role: stopped by the key policy (or
		// by the role's own identity policy).
		d.newCase("handler makes the request of "+other.label, d.createGrant(d.handler(), other.g.grantee, other.g.retiring, other.g.operations), g.identity, policyeval.Denied, "another destination's grant is not this handler's"),
	}
}

// copyCases: a copy of the handler role (same path and name) in an
// account the key policy does not name, allowed everything by IAM, is
// refused its own grant; its SLR may not use the key.
func copyCases(d destination, m member, label string) []policyeval.Case {
	name := d.g.handler[strings.LastIndex(d.g.handler, ":role/")+len(":role/"):]
	copyRole := m.principal("arn:aws:iam::" + m.account + ":role/" + name)
	return []policyeval.Case{
		d.newCase("a copy of the handler role in "+label+" creates its own grant", d.createGrant(copyRole, slrOf(m.account), copyRole.RoleArn, d.g.operations), anyKMS, policyeval.Denied, "the key policy names the destinations only"),
		d.keyPolicyCase("the SLR of "+label+" decrypts", d.kmsRequest(m.principal(slrOf(m.account)), "kms:Decrypt"), policyeval.KeyPolicyDoesNotAllow, "the key policy names the destinations only"),
	}
}

// refusedAccountCases: a handler deployed in an account that must get
// nothing (outside the OUs, outside the organization) is refused its own
// grant, and its SLR may not use the key.
func refusedAccountCases(d destination, why string) []policyeval.Case {
	return []policyeval.Case{
		d.newCase("handler creates its own grant", d.createGrant(d.handler(), d.g.grantee, d.g.retiring, d.g.operations), d.g.identity, policyeval.Denied, why),
		d.keyPolicyCase("SLR decrypts", d.kmsRequest(d.slr(), "kms:Decrypt"), policyeval.KeyPolicyDoesNotAllow, why),
	}
}

// cutOffCases: an account the key owner shut out is denied explicitly,
// whatever else the key policy allows it.
func cutOffCases(d destination) []policyeval.Case {
	c := []policyeval.Case{
		d.newCase("handler creates its own grant", d.createGrant(d.handler(), d.g.grantee, d.g.retiring, d.g.operations), d.g.identity, policyeval.ExplicitlyDenied, "the key owner's cut-off"),
		d.keyPolicyCase("SLR decrypts", d.kmsRequest(d.slr(), "kms:Decrypt"), policyeval.KeyPolicyDenies, "the key owner's cut-off"),
	}
	c[0].WantKeyPolicy = policyeval.KeyPolicyDenies
	return c
}

// launcherRoleCases: a destination whose launcher is a role (Karpenter's
// controller): the handler creates exactly that role's grant, the role may
// use the key (and create no grant by policy), and the account's Auto
// Scaling role and other roles may not.
func launcherRoleCases(d destination, role string) []policyeval.Case {
	g, account := d.g, d.m.account
	if g.grantee != role || g.retiring != g.handler {
		return []policyeval.Case{d.newCase("the grant is the role's", d.createGrant(d.handler(), role, g.handler, g.operations), g.identity, policyeval.Allowed,
			fmt.Sprintf("the template's grant is %+v, want %s retired by the handler", g, role))}
	}
	r := d.m.principal(role)
	return []policyeval.Case{
		d.newCase("handler creates the controller role's grant", d.createGrant(d.handler(), role, g.retiring, g.operations), g.identity, policyeval.Allowed, "the grant the handler exists to create"),
		d.newCase("handler creates a grant for the account's Auto Scaling role", d.createGrant(d.handler(), slrOf(account), g.retiring, g.operations), g.identity, policyeval.Denied, "not a launcher of this destination"),
		d.newCase("handler creates a grant for another role of its account", d.createGrant(d.handler(), adminOf(account), g.retiring, g.operations), g.identity, policyeval.Denied, "kms:GranteePrincipal is the controller role only"),
		d.newCase("handler creates a grant with the extra operation Sign", d.createGrant(d.handler(), role, g.retiring, append(slices.Clone(g.operations), "Sign")), g.identity, policyeval.Denied, "ForAllValues: Sign is outside the 8 operations"),
		d.keyPolicyCase("the controller role decrypts", d.kmsRequest(r, "kms:Decrypt"), policyeval.KeyPolicyAllows, "Allow use of the key (the role)"),
		d.keyPolicyCase("the controller role generates a data key without plaintext", d.kmsRequest(r, "kms:GenerateDataKeyWithoutPlaintext"), policyeval.KeyPolicyAllows, "Allow use of the key (the role)"),
		d.keyPolicyCase("the controller role creates a grant by policy", d.createGrant(r, role, "", g.operations), policyeval.KeyPolicyDoesNotAllow, "its CreateGrant comes from its grant"),
		d.keyPolicyCase("the account's Auto Scaling role decrypts", d.kmsRequest(d.slr(), "kms:Decrypt"), policyeval.KeyPolicyDoesNotAllow, "not a launcher of this destination"),
		d.keyPolicyCase("another role of the account decrypts", d.kmsRequest(d.m.principal(adminOf(account)), "kms:Decrypt"), policyeval.KeyPolicyDoesNotAllow, "aws:PrincipalArn is the controller role only"),
		d.keyPolicyCase("the same role name in a third account decrypts", d.kmsRequest(member{account: strangerAccount}.principal(strings.Replace(role, account, strangerAccount, 1)), "kms:Decrypt"), policyeval.KeyPolicyDoesNotAllow, "the key policy names the destination only"),
	}
}

// appDestinations reads the destinations of an assembly's stacks (not
// StackSets), each in its stack's account, a member as memberOf says.
func appDestinations(t *testing.T, example string, d *deployment, memberOf func(account string) member) []destination {
	t.Helper()
	var out []destination
	for _, s := range d.stacks {
		for _, g := range d.grantsIn(t, s.key, s.env, d.a.Templates[s.key]) {
			kp, err := d.keyPolicyOf(g.keyArn)
			if err != nil {
				t.Fatalf("%s: %s: %v", example, g.where, err)
			}
			out = append(out, destination{label: fmt.Sprintf("%s %s (%s)", example, s.stackName, s.env.account), g: g, m: memberOf(s.env.account), keyPolicy: kp})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no %s in any stack", example, "Custom::KmsGrant")
	}
	return out
}

// checkOwnGrant: the grant each destination asks for is the Auto Scaling
// grant of README "What gets created" (spelled out here: the evaluation
// takes the request from the template, so a wrong grant would be
// evaluated as the handler's own).
func checkOwnGrant(t *testing.T, d destination) {
	t.Helper()
	if d.g.grantee != slrOf(d.m.account) || d.g.retiring != d.g.handler ||
		!strings.HasPrefix(d.g.handler, "arn:aws:iam::"+d.m.account+":role/crossaccountami/GrantHandler-") ||
		strings.Join(d.g.operations, " ") != "Decrypt Encrypt GenerateDataKey GenerateDataKeyWithoutPlaintext ReEncryptFrom ReEncryptTo CreateGrant DescribeKey" {
		t.Errorf("%s: the grant is %+v, want the SLR of %s, the 8 Auto Scaling operations, retired by the handler role", d.label, d.g, d.m.account)
	}
}

// TestPolicyEvaluation evaluates every example's key policies and grant
// handler policies: basic, basic in organization mode, basic in accounts
// mode, importedkey,
// pipeline (two destinations on one key) and organization (the StackSet's
// template in each region, deployed in accounts in and out of the OUs).
func TestPolicyEvaluation(t *testing.T) {
	t.Parallel()
	// The five assemblies, synthesized side by side (other tests share
	// them: TestBasicGolden, TestNag, TestImportedKeyExample,
	// TestPipelineExample, TestOrganizationExample).
	t.Run("synth", func(t *testing.T) {
		for name, ex := range map[string]struct {
			example string
			context map[string]string
		}{
			"basic": {"basic", nil}, "basic-organization": {"basic", map[string]string{"organizationId": exampleOrgID}}, "basic-accounts": {"basic", basicAccountsContext},
			"importedkey": {"importedkey", nil}, "pipeline": {"pipeline", pipelineContext}, "organization": {"organization", organizationContext},
			"eks": {"eks", nil}, "karpenter": {"karpenter", nil},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				exampleAssembly(t, ex.example, ex.context)
			})
		}
	})
	if t.Failed() {
		return
	}
	var cases []policyeval.Case
	noOrg := func(account string) member { return member{account: account} }

	// Scoped statements: one pair per destination.
	for _, ex := range []struct {
		name    string
		context map[string]string
	}{{"basic", nil}, {"importedkey", nil}, {"pipeline", pipelineContext}, {"eks", nil}} {
		d := newDeployment(t, ex.name, exampleAssembly(t, ex.name, ex.context))
		dests := appDestinations(t, ex.name, d, noOrg)
		for _, dest := range dests {
			checkOwnGrant(t, dest)
			cases = append(cases, destinationCases(dest)...)
			cases = append(cases, copyCases(dest, member{account: strangerAccount}, "a third account")...)
			for _, other := range dests {
				if other.label != dest.label && other.g.keyArn == dest.g.keyArn {
					cases = append(cases, crossDestinationCases(dest, other)...)
				}
			}
		}
	}

	// examples/karpenter: the controller role is the grantee; the
	// account's service-linked roles and other roles get nothing.
	{
		d := newDeployment(t, "karpenter", exampleAssembly(t, "karpenter", nil))
		for _, dest := range appDestinations(t, "karpenter", d, noOrg) {
			cases = append(cases, launcherRoleCases(dest, "arn:aws:iam::222222222222:role/KarpenterController-shared")...)
		}
	}

	// examples/basic in organization mode: every account of the
	// organization (aws:PrincipalOrgID), none outside it.
	{
		d := newDeployment(t, "basic-organization", exampleAssembly(t, "basic", map[string]string{"organizationId": exampleOrgID}))
		dests := appDestinations(t, "basic-organization", d, func(account string) member { return member{account, exampleOrgID, exampleOU1} })
		for _, dest := range dests {
			checkOwnGrant(t, dest)
			cases = append(cases, destinationCases(dest)...)
			cases = append(cases, copyCases(dest, member{account: strangerAccount}, "an account outside the organization")...)
			cases = append(cases, copyCases(dest, member{"888888888888", "o-zzzzzzzzzz", "o-zzzzzzzzzz/r-zz99/"}, "an account of another organization")...)
		}
	}

	// examples/basic in accounts mode: the two listed accounts (both
	// destinations), and no other account.
	{
		d := newDeployment(t, "basic-accounts", exampleAssembly(t, "basic", basicAccountsContext))
		dests := appDestinations(t, "basic-accounts", d, noOrg)
		if len(dests) != 2 {
			t.Fatalf("basic-accounts: %d destinations, want 2", len(dests))
		}
		for _, dest := range dests {
			checkOwnGrant(t, dest)
			cases = append(cases, destinationCases(dest)...)
			cases = append(cases, copyCases(dest, member{account: strangerAccount}, "an account the list does not name")...)
			for _, other := range dests {
				if other.label != dest.label {
					cases = append(cases, crossDestinationCases(dest, other)...)
				}
			}
		}
	}

	// examples/organization: the StackSet's template as deployed in each
	// region in each account of organizationAccounts and cutOffAccounts.
	{
		d := newDeployment(t, "organization", exampleAssembly(t, "organization", organizationContext))
		sets := d.stackSets(t)
		if len(sets) == 0 {
			t.Fatal("organization: no StackSet")
		}
		for _, set := range keys(sets) {
			tmpl := d.a.StackSets[set]
			for _, region := range sets[set] {
				var targets []destination
				at := func(a orgAccount) destination {
					// A StackSet names each stack instance StackSet-<name>-<uuid>.
					grants := d.grantsIn(t, set, deployEnv{"aws", a.account, region, "StackSet-" + set + "-0c8a1e5e-7d2b-4f3a-9c61-2b5d8e9f0a14"}, tmpl)
					if len(grants) != 1 {
						t.Fatalf("organization: StackSet %s has %d grants, want 1", set, len(grants))
					}
					kp, err := d.keyPolicyOf(grants[0].keyArn)
					if err != nil {
						t.Fatalf("organization: %s: %v", grants[0].where, err)
					}
					return destination{label: fmt.Sprintf("organization %s, %s (%s)", region, a.label, a.account), g: grants[0], m: a.member, keyPolicy: kp}
				}
				for _, a := range organizationAccounts {
					dest := at(a)
					switch {
					case !a.allowed:
						cases = append(cases, refusedAccountCases(dest, a.why)...)
					case len(targets) == 0:
						// Every case for the first target account of
						// the region, the grant and the SLR's use for
						// the others.
						checkOwnGrant(t, dest)
						cases = append(cases, destinationCases(dest)...)
						targets = append(targets, dest)
					default:
						checkOwnGrant(t, dest)
						own := destinationCases(dest)[0]
						own.Why = a.why
						slr := dest.keyPolicyCase("SLR decrypts", dest.kmsRequest(dest.slr(), "kms:Decrypt"), policyeval.KeyPolicyAllows, a.why)
						cases = append(cases, own, slr)
						targets = append(targets, dest)
					}
				}
				for _, dest := range targets[1:] {
					cases = append(cases, crossDestinationCases(targets[0], dest)...)
				}
				for _, a := range cutOffAccounts {
					cases = append(cases, cutOffCases(at(a))...)
				}
			}
		}
	}

	if testing.Verbose() {
		for _, c := range cases {
			t.Logf("case: %s — want %s", c.Name, strings.TrimSpace(string(c.Want)+" "+string(c.WantKeyPolicy)))
		}
	}
	policyeval.Check(t, cases)
}

// TestPolicyCasesCatchLooserPolicies keeps the destination cases able to
// fail: examples/basic's golden templates (no synth), with a condition
// removed from the key policy and from the handler's identity policy, are
// answered otherwise than the cases expect, on exactly the cases that
// condition decides.
func TestPolicyCasesCatchLooserPolicies(t *testing.T) {
	t.Parallel()
	loosen := func(doc interface{}, drop func(cond map[string]interface{})) {
		for _, st := range doc.(map[string]interface{})["Statement"].([]interface{}) {
			if cond, ok := st.(map[string]interface{})["Condition"].(map[string]interface{}); ok {
				drop(cond)
			}
		}
	}
	dropKey := func(op, key string) func(map[string]interface{}) {
		return func(cond map[string]interface{}) {
			if m, ok := cond[op].(map[string]interface{}); ok {
				delete(m, key)
				if len(m) == 0 {
					delete(cond, op)
				}
			}
		}
	}
	for _, tc := range []struct {
		name string
		drop func(map[string]interface{})
		want []string // the cases that must now differ
	}{
		{"without ForAllValues kms:GrantOperations", dropKey("ForAllValues:StringEquals", "kms:GrantOperations"),
			[]string{"handler creates a grant with the extra operation RetireGrant", "handler creates a grant with the extra operation Sign"}},
		{"without kms:RetiringPrincipal", dropKey("StringEquals", "kms:RetiringPrincipal"),
			[]string{"handler creates a grant retired by another principal", "handler creates a grant without a retiring principal"}},
		{"without kms:GranteePrincipal", dropKey("StringEquals", "kms:GranteePrincipal"),
			[]string{"handler creates a grant for another role of its account", "handler creates a grant for a third account's SLR"}},
		{"without aws:PrincipalArn", dropKey("StringEquals", "aws:PrincipalArn"),
			[]string{"handler decrypts with the key", "another role of the account, allowed kms:* by IAM, creates the handler's grant", "another role of the account decrypts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN examples/basic as its golden templates, deployed
			a := &Assembly{Templates: map[string]map[string]interface{}{}}
			for _, stack := range []string{"AmiSource", "AmiDestination"} {
				var tmpl map[string]interface{}
				readJSON(t, "testdata/basic/"+stack+".template.json", &tmpl)
				a.Templates[stack] = tmpl
			}
			d := deploymentOf(t, "basic-golden", a, []stackArtifact{
				{key: "AmiSource", stackName: "AmiSource", env: deployEnv{"aws", "111111111111", "us-east-1", "AmiSource"}},
				{key: "AmiDestination", stackName: "AmiDestination", env: deployEnv{"aws", "222222222222", "us-east-1", "AmiDestination"}},
			})
			dests := appDestinations(t, "basic-golden", d, func(account string) member { return member{account: account} })
			if len(dests) != 1 {
				t.Fatalf("%d destinations", len(dests))
			}
			// WHEN one condition is gone from the key policy and the
			// handler's identity policies
			dest := dests[0]
			loosen(dest.keyPolicy, tc.drop)
			for _, p := range dest.g.identity {
				loosen(p.Document, tc.drop)
			}
			cases := destinationCases(dest)
			results, err := policyeval.Evaluate(cases)
			if err != nil {
				t.Fatal(err)
			}
			// THEN exactly the cases that condition decides differ
			var differ []string
			for i, c := range cases {
				if policyeval.Mismatch(c, results[i]) != "" {
					differ = append(differ, strings.TrimPrefix(c.Name, dest.label+": "))
				}
			}
			if strings.Join(differ, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("cases that differ:\n  %s\nwant\n  %s", strings.Join(differ, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestAccountsCasesCatchLooserPolicies keeps the accounts-mode cases able
// to fail: examples/basic's accounts-mode golden templates (no synth), with
// the key policy's account list replaced by "*", let in an account the list
// does not name, and the cases say so.
func TestAccountsCasesCatchLooserPolicies(t *testing.T) {
	t.Parallel()
	// GIVEN examples/basic in accounts mode as its golden templates, deployed
	a := &Assembly{Templates: map[string]map[string]interface{}{}}
	stacks := []stackArtifact{{key: "AmiSource", stackName: "AmiSource", env: deployEnv{"aws", "111111111111", "us-east-1", "AmiSource"}}}
	for _, account := range []string{"222222222222", "222222222223"} {
		name := "AmiDestination-" + account
		stacks = append(stacks, stackArtifact{key: name, stackName: name, env: deployEnv{"aws", account, "us-east-1", name}})
	}
	for _, s := range stacks {
		var tmpl map[string]interface{}
		readJSON(t, "testdata/basic-accounts/"+s.key+".template.json", &tmpl)
		a.Templates[s.key] = tmpl
	}
	d := deploymentOf(t, "basic-accounts-golden", a, stacks)
	dests := appDestinations(t, "basic-accounts-golden", d, func(account string) member { return member{account: account} })
	dest := dests[0]
	cases := copyCases(dest, member{account: strangerAccount}, "an account the list does not name")
	// (as written, the list keeps the stranger out)
	results, err := policyeval.Evaluate(cases)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if m := policyeval.Mismatch(c, results[i]); m != "" {
			t.Fatalf("as written: %s", m)
		}
	}
	// WHEN the statements name every account instead of the list
	for _, st := range dest.keyPolicy.(map[string]interface{})["Statement"].([]interface{}) {
		st := st.(map[string]interface{})
		if sid, _ := st["Sid"].(string); strings.Contains(sid, "of the accounts of") {
			st["Principal"] = map[string]interface{}{"AWS": "*"}
		}
	}
	results, err = policyeval.Evaluate(cases)
	if err != nil {
		t.Fatal(err)
	}
	// THEN both cases of the unlisted account differ
	for i, c := range cases {
		if policyeval.Mismatch(c, results[i]) == "" {
			t.Errorf("%s: still answered as expected with the account list gone", c.Name)
		}
	}
}

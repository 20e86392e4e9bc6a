package policyeval

import (
	"testing"
)

// The calibration's actors: a key of the source account, a role of that
// account, and a role of another account.
const (
	keyArn      = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	sourceRoot  = "arn:aws:iam::111111111111:root"
	sourceRole  = "arn:aws:iam::111111111111:role/KeyUser"
	foreignRoot = "arn:aws:iam::222222222222:root"
	foreignRole = "arn:aws:iam::222222222222:role/KeyUser"
)

// AWS pages that document each calibration case's answer.
const (
	docDefaultKeyPolicy = "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html (Allows access to the AWS account and enables IAM policies)"
	docKeyPolicies      = "https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html (unless the key policy explicitly allows it, IAM policies cannot allow access)"
	docControlAccess    = "https://docs.aws.amazon.com/kms/latest/developerguide/control-access.html (the key policy alone can control access in its account)"
	docExternalAccounts = "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html (cross-account use needs the key policy and an IAM policy of the external account)"
	docEvaluationLogic  = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html (an explicit deny in any policy overrides any allow)"
	docMultivalued      = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html (ForAllValues: every request value must match one policy value; true when the key is absent)"
	docGrantOperations  = "https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-operations"
	docOrgPaths         = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgpaths and https://aws.amazon.com/blogs/security/iam-share-aws-resources-groups-aws-accounts-aws-organizations/ (a path without * matches the OU's own accounts; …/ou-…/* matches the OU and every OU below it)"
	docVariables        = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html (a policy variable is replaced by the request's value of its key)"
	docAccountPrincipal = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts (the account ARN and the shortened account ID behave the same way; several accounts in an array are a logical OR)"
	docOperators        = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html (a key absent from the request makes a condition false, except ...IfExists, Null and negated operators; ArnLike wildcards)"
)

func policy(statements ...map[string]any) map[string]any {
	return map[string]any{"Version": "2012-10-17", "Statement": statements}
}

func allow(principal any, actions any, condition map[string]any) map[string]any {
	st := map[string]any{"Effect": "Allow", "Action": actions, "Resource": "*"}
	if principal != nil {
		st["Principal"] = map[string]any{"AWS": principal}
	}
	if condition != nil {
		st["Condition"] = condition
	}
	return st
}

func deny(principal any, actions any, condition map[string]any) map[string]any {
	st := allow(principal, actions, condition)
	st["Effect"] = "Deny"
	return st
}

// identity is an identity policy allowing actions on the key.
func identity(actions ...string) []Policy {
	return []Policy{{Name: "KeyUserPolicy", Document: policy(map[string]any{"Effect": "Allow", "Action": actions, "Resource": keyArn})}}
}

func decrypt(role string) Request {
	return Request{Principal: Principal{RoleArn: role}, Action: "kms:Decrypt", Resource: keyArn}
}

func createGrant(p Principal, grantee, retiring string, ops ...string) Request {
	ctx := map[string]any{"kms:GranteePrincipal": grantee}
	if retiring != "" {
		ctx["kms:RetiringPrincipal"] = retiring
	}
	if ops != nil {
		ctx["kms:GrantOperations"] = ops
	}
	return Request{Principal: p, Action: "kms:CreateGrant", Resource: keyArn, Context: ctx}
}

// calibrationCases are requests whose answer an AWS page documents (each
// case's Why). TestCalibration fails when the engine answers one of them
// otherwise: what the engine gets wrong cannot be relied on.
func calibrationCases() []Case {
	rootOnly := policy(allow(sourceRoot, "kms:*", nil))
	const (
		orgID   = "o-abcdefghij"
		ou      = "o-abcdefghij/r-ab12/ou-ab12-11111111/"
		child   = "o-abcdefghij/r-ab12/ou-ab12-11111111/ou-ab12-33333333/"
		sibling = "o-abcdefghij/r-ab12/ou-ab12-22222222/"
	)
	inOrg := func(path string) Principal {
		return Principal{RoleArn: foreignRole, OrgID: orgID, OrgPaths: []string{path}}
	}
	orgPolicy := func(pattern string) map[string]any {
		return policy(allow(sourceRoot, "kms:*", nil),
			allow("*", "kms:Decrypt", map[string]any{"ForAnyValue:StringLike": map[string]any{"aws:PrincipalOrgPaths": []string{pattern}}}))
	}
	grantOps := policy(allow(sourceRole, "kms:CreateGrant", map[string]any{
		"ForAllValues:StringEquals": map[string]any{"kms:GrantOperations": []string{"Decrypt", "Encrypt"}}}))
	variables := policy(allow(foreignRoot, "kms:CreateGrant", map[string]any{"StringEquals": map[string]any{
		"kms:GranteePrincipal":  "arn:aws:iam::${aws:PrincipalAccount}:role/Grantee",
		"kms:RetiringPrincipal": "${aws:PrincipalArn}",
	}}))
	grantIdentity := []Policy{{Name: "GrantCreator", Document: policy(map[string]any{"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": keyArn})}}
	foreign := Principal{RoleArn: foreignRole}
	source := Principal{RoleArn: sourceRole}
	return []Case{
		// KMS: the account root in the key policy delegates to IAM.
		{Name: "same account: root statement + IAM allow", Request: decrypt(sourceRole), KeyPolicy: rootOnly, IdentityPolicies: identity("kms:Decrypt"), Want: Allowed, Why: docDefaultKeyPolicy},
		{Name: "same account: root statement, no IAM allow", Request: decrypt(sourceRole), KeyPolicy: rootOnly, Want: ImplicitlyDenied, WantKeyPolicy: KeyPolicyAllows, Why: docDefaultKeyPolicy},
		{Name: "same account: IAM allow, key policy without root", Request: decrypt(sourceRole), KeyPolicy: policy(allow("arn:aws:iam::111111111111:role/Other", "kms:*", nil)), IdentityPolicies: identity("kms:Decrypt"), Want: ImplicitlyDenied, Why: docKeyPolicies},
		{Name: "same account: key policy names the role, no IAM policy", Request: decrypt(sourceRole), KeyPolicy: policy(allow(sourceRole, "kms:Decrypt", nil)), Want: Allowed, Why: docControlAccess},
		// Cross-account: both sides must allow.
		{Name: "cross-account: key policy allows the account + IAM allow", Request: decrypt(foreignRole), KeyPolicy: policy(allow(sourceRoot, "kms:*", nil), allow(foreignRoot, "kms:Decrypt", nil)), IdentityPolicies: identity("kms:Decrypt"), Want: Allowed, Why: docExternalAccounts},
		{Name: "cross-account: key policy allows the account, no IAM allow", Request: decrypt(foreignRole), KeyPolicy: policy(allow(sourceRoot, "kms:*", nil), allow(foreignRoot, "kms:Decrypt", nil)), Want: ImplicitlyDenied, WantKeyPolicy: KeyPolicyAllows, Why: docExternalAccounts},
		{Name: "cross-account: key policy names the role, no IAM allow", Request: decrypt(foreignRole), KeyPolicy: policy(allow(foreignRole, "kms:Decrypt", nil)), Want: ImplicitlyDenied, WantKeyPolicy: KeyPolicyAllows, Why: docExternalAccounts},
		// The account as a bare 12-digit id, as KeyPolicyStyle_ACCOUNTS writes it.
		{Name: "cross-account: key policy allows the account by its bare id + IAM allow", Request: decrypt(foreignRole), KeyPolicy: policy(allow(sourceRoot, "kms:*", nil), allow([]string{"333333333333", "222222222222"}, "kms:Decrypt", nil)), IdentityPolicies: identity("kms:Decrypt"), Want: Allowed, Why: docAccountPrincipal},
		{Name: "cross-account: key policy allows other accounts by their bare ids", Request: decrypt(foreignRole), KeyPolicy: policy(allow(sourceRoot, "kms:*", nil), allow([]string{"333333333333", "444444444444"}, "kms:Decrypt", nil)), IdentityPolicies: identity("kms:Decrypt"), Want: ImplicitlyDenied, WantKeyPolicy: KeyPolicyDoesNotAllow, Why: docAccountPrincipal},
		{Name: "cross-account: IAM allow, key policy silent", Request: decrypt(foreignRole), KeyPolicy: rootOnly, IdentityPolicies: identity("kms:Decrypt"), Want: ImplicitlyDenied, WantKeyPolicy: KeyPolicyDoesNotAllow, Why: docExternalAccounts},
		{Name: "cross-account: key policy Principal * in the OU, no IAM allow", Request: Request{Principal: inOrg(ou), Action: "kms:Decrypt", Resource: keyArn}, KeyPolicy: orgPolicy(ou), Want: ImplicitlyDenied, WantKeyPolicy: KeyPolicyAllows, Why: docExternalAccounts},
		// An explicit Deny wins, in either policy.
		{Name: "explicit deny in the key policy beats allows", Request: decrypt(sourceRole), IdentityPolicies: identity("kms:Decrypt"), Want: ExplicitlyDenied, WantKeyPolicy: KeyPolicyDenies,
			KeyPolicy: policy(allow(sourceRoot, "kms:*", nil), allow(sourceRole, "kms:Decrypt", nil), deny("*", "kms:Decrypt", map[string]any{"StringEquals": map[string]any{"aws:PrincipalAccount": "111111111111"}})), Why: docEvaluationLogic},
		{Name: "explicit deny in the IAM policy beats the key policy's allow", Request: decrypt(sourceRole), KeyPolicy: policy(allow(sourceRole, "kms:Decrypt", nil)), Want: ExplicitlyDenied,
			IdentityPolicies: []Policy{{Name: "DenyDecrypt", Document: policy(map[string]any{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"})}}, Why: docEvaluationLogic},
		{Name: "explicit deny of another account's role, cross-account", Request: decrypt(foreignRole), IdentityPolicies: identity("kms:Decrypt"), Want: ExplicitlyDenied,
			KeyPolicy: policy(allow(foreignRoot, "kms:Decrypt", nil), deny("*", "kms:*", map[string]any{"StringEquals": map[string]any{"aws:PrincipalAccount": []string{"222222222222"}}})), Why: docEvaluationLogic},
		// ForAllValues over kms:GrantOperations.
		{Name: "ForAllValues: operations within the set", Request: createGrant(source, "arn:aws:iam::111111111111:role/Grantee", "", "Decrypt"), KeyPolicy: grantOps, Want: Allowed, Why: docMultivalued + "; " + docGrantOperations},
		{Name: "ForAllValues: the whole set", Request: createGrant(source, "arn:aws:iam::111111111111:role/Grantee", "", "Encrypt", "Decrypt"), KeyPolicy: grantOps, Want: Allowed, Why: docMultivalued},
		{Name: "ForAllValues: one operation outside the set", Request: createGrant(source, "arn:aws:iam::111111111111:role/Grantee", "", "Decrypt", "RetireGrant"), KeyPolicy: grantOps, Want: ImplicitlyDenied, Why: docMultivalued + "; " + docGrantOperations},
		{Name: "ForAllValues: key absent is true", Request: createGrant(source, "arn:aws:iam::111111111111:role/Grantee", ""), KeyPolicy: grantOps, Want: Allowed, Why: docMultivalued},
		// aws:PrincipalOrgPaths with and without the trailing *.
		{Name: "OrgPaths: path without * matches the OU's own account", Request: Request{Principal: inOrg(ou), Action: "kms:Decrypt", Resource: keyArn}, KeyPolicy: orgPolicy(ou), IdentityPolicies: identity("kms:Decrypt"), Want: Allowed, Why: docOrgPaths},
		{Name: "OrgPaths: path without * does not match a child OU's account", Request: Request{Principal: inOrg(child), Action: "kms:Decrypt", Resource: keyArn}, KeyPolicy: orgPolicy(ou), IdentityPolicies: identity("kms:Decrypt"), Want: ImplicitlyDenied, Why: docOrgPaths},
		{Name: "OrgPaths: path/* matches a child OU's account", Request: Request{Principal: inOrg(child), Action: "kms:Decrypt", Resource: keyArn}, KeyPolicy: orgPolicy(ou + "*"), IdentityPolicies: identity("kms:Decrypt"), Want: Allowed, Why: docOrgPaths},
		{Name: "OrgPaths: path/* matches the OU's own account", Request: Request{Principal: inOrg(ou), Action: "kms:Decrypt", Resource: keyArn}, KeyPolicy: orgPolicy(ou + "*"), IdentityPolicies: identity("kms:Decrypt"), Want: Allowed, Why: docOrgPaths},
		{Name: "OrgPaths: path/* does not match a sibling OU", Request: Request{Principal: inOrg(sibling), Action: "kms:Decrypt", Resource: keyArn}, KeyPolicy: orgPolicy(ou + "*"), IdentityPolicies: identity("kms:Decrypt"), Want: ImplicitlyDenied, Why: docOrgPaths},
		{Name: "OrgPaths: an account outside any organization has no path", Request: decrypt(foreignRole), KeyPolicy: orgPolicy(ou + "*"), IdentityPolicies: identity("kms:Decrypt"), Want: ImplicitlyDenied, Why: docOrgPaths + "; " + docOperators},
		// Policy variables in conditions.
		{Name: "${aws:PrincipalAccount}: grantee of the caller's account", Request: createGrant(foreign, "arn:aws:iam::222222222222:role/Grantee", foreignRole, "Decrypt"), KeyPolicy: variables, IdentityPolicies: grantIdentity, Want: Allowed, Why: docVariables},
		{Name: "${aws:PrincipalAccount}: grantee of another account", Request: createGrant(foreign, "arn:aws:iam::333333333333:role/Grantee", foreignRole, "Decrypt"), KeyPolicy: variables, IdentityPolicies: grantIdentity, Want: ImplicitlyDenied, Why: docVariables},
		{Name: "${aws:PrincipalArn}: another retiring principal", Request: createGrant(foreign, "arn:aws:iam::222222222222:role/Grantee", "arn:aws:iam::222222222222:role/Other", "Decrypt"), KeyPolicy: variables, IdentityPolicies: grantIdentity, Want: ImplicitlyDenied, Why: docVariables},
		{Name: "StringEquals on an absent key is false", Request: createGrant(foreign, "arn:aws:iam::222222222222:role/Grantee", "", "Decrypt"), KeyPolicy: variables, IdentityPolicies: grantIdentity, Want: ImplicitlyDenied, Why: docOperators},
		// ArnLike on aws:PrincipalArn.
		{Name: "ArnLike role path wildcard matches a role under the path", Request: decrypt("arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-x"), IdentityPolicies: identity("kms:Decrypt"), Want: Allowed,
			KeyPolicy: policy(allow("*", "kms:Decrypt", map[string]any{"ArnLike": map[string]any{"aws:PrincipalArn": "arn:aws:iam::*:role/crossaccountami/*"}})), Why: docOperators},
		{Name: "ArnLike role path wildcard does not match a role outside the path", Request: decrypt("arn:aws:iam::222222222222:role/GrantHandler-x"), IdentityPolicies: identity("kms:Decrypt"), Want: ImplicitlyDenied,
			KeyPolicy: policy(allow("*", "kms:Decrypt", map[string]any{"ArnLike": map[string]any{"aws:PrincipalArn": "arn:aws:iam::*:role/crossaccountami/*"}})), Why: docOperators},
	}
}

// TestCalibration: the engine answers, on every case an AWS page settles,
// what the page says.
func TestCalibration(t *testing.T) {
	Check(t, calibrationCases())
}

// TestCheckReportsMismatch keeps Check able to fail: an answer other than
// the expected one, an engine error and an ignored context key each make a
// mismatch, and the matching answer does not.
func TestCheckReportsMismatch(t *testing.T) {
	c := Case{Name: "c", Request: decrypt(sourceRole), Want: Allowed, WantKeyPolicy: KeyPolicyAllows}
	for _, tc := range []struct {
		r    Result
		want bool
	}{
		{Result{Decision: "Allowed", KeyPolicy: "Allowed"}, false},
		{Result{Decision: "Allowed", KeyPolicy: "AllowedForAccount"}, false},
		{Result{Decision: "ImplicitlyDenied", KeyPolicy: "Allowed"}, true},
		{Result{Decision: "Allowed", KeyPolicy: "ImplicitlyDenied"}, true},
		{Result{Decision: "Allowed", KeyPolicy: "Allowed", IgnoredContextKeys: []string{"kms:granteeprincipal"}}, true},
		{Result{Error: "boom"}, true},
	} {
		if got := Mismatch(c, tc.r) != ""; got != tc.want {
			t.Errorf("Mismatch(%+v) = %q, want a mismatch: %v", tc.r, Mismatch(c, tc.r), tc.want)
		}
	}
	if Mismatch(Case{Name: "nothing"}, Result{Decision: "Allowed"}) == "" {
		t.Error("a case that expects nothing passed")
	}
	denied := Case{Want: Denied}
	if Mismatch(denied, Result{Decision: "ExplicitlyDenied"}) != "" || Mismatch(denied, Result{Decision: "ImplicitlyDenied"}) != "" || Mismatch(denied, Result{Decision: "Allowed"}) == "" {
		t.Error("Denied does not accept exactly both denials")
	}
}

// TestPrincipal: a role's session ARN drops the role's path, and the
// principal's context keys are the ones AWS sets.
func TestPrincipal(t *testing.T) {
	p := Principal{RoleArn: "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-x", OrgID: "o-abcdefghij", OrgPaths: []string{"o-abcdefghij/r-ab12/"}}
	if got := p.SessionArn(); got != "arn:aws:sts::222222222222:assumed-role/GrantHandler-x/policyeval" {
		t.Errorf("SessionArn = %s", got)
	}
	keys := p.contextKeys()
	if keys["aws:PrincipalAccount"] != "222222222222" || keys["aws:PrincipalArn"] != p.RoleArn || keys["aws:PrincipalOrgID"] != "o-abcdefghij" {
		t.Errorf("context keys %v", keys)
	}
	if _, ok := (Principal{RoleArn: foreignRole}).contextKeys()["aws:PrincipalOrgPaths"]; ok {
		t.Error("an account outside any organization has aws:PrincipalOrgPaths")
	}
}

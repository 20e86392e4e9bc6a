package test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// basicAccountsContext runs examples/basic in accounts mode with two
// destination accounts: its key policy lists both as principals of two
// statements (encryptedami.NewAccountsKeyAccess), and neither destination
// adds a statement of its own.
var basicAccountsContext = map[string]string{"keyAccess": "accounts", "destinations": "2"}

// basicAccountsAssembly is examples/basic in accounts mode, synthesized
// once for every test that asks for it.
func basicAccountsAssembly(t *testing.T) *Assembly {
	t.Helper()
	return exampleAssembly(t, "basic", basicAccountsContext)
}

func TestBasicAccountsKeyPolicy(t *testing.T) {
	t.Parallel()
	// GIVEN examples/basic with -c keyAccess=accounts -c destinations=2
	a := basicAccountsAssembly(t)
	// WHEN we read the source key's policy
	stmts := keyPolicyStatements(t, a.Templates["AmiSource"])

	// THEN CDK's default statement and the two statements of the account
	// list, whatever the number of destinations
	if len(stmts) != 3 {
		t.Fatalf("%d key policy statements, want 3: CDK's default, use, CreateGrant", len(stmts))
	}
	for _, sid := range []string{
		"Allow use of the key by Auto Scaling service-linked roles of the accounts of DestinationAccounts",
		"Allow attachment of persistent resources by grant creators of the accounts of DestinationAccounts",
	} {
		s := statementBySid(t, stmts, sid)
		// AND the accounts, as bare ids, are the principals
		if got := strs(s["Principal"].(map[string]interface{})["AWS"]); !slices.Equal(got, []string{"222222222222", "222222222223"}) {
			t.Errorf("%s: principals %v, want the two destination accounts", sid, got)
		}
	}
	attach := statementBySid(t, stmts, "Allow attachment of persistent resources")
	if got := strs(attach["Action"]); !slices.Equal(got, []string{"kms:CreateGrant"}) {
		t.Errorf("attach actions %v, want CreateGrant only", got)
	}
	cond := attach["Condition"].(map[string]interface{})
	if got := cond["ArnLike"].(map[string]interface{})["aws:PrincipalArn"]; got != "arn:aws:iam::*:role/crossaccountami/*" {
		t.Errorf("grant creators matched by %v, want their role path", got)
	}
	eq := cond["StringEquals"].(map[string]interface{})
	if got := strs(eq["kms:GranteePrincipal"]); !slices.Equal(got, []string{"arn:aws:iam::${aws:PrincipalAccount}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"}) {
		t.Errorf("kms:GranteePrincipal %v, want the creator's own account's SLR", got)
	}
	if eq["kms:RetiringPrincipal"] != "${aws:PrincipalArn}" {
		t.Errorf("kms:RetiringPrincipal %v, want the creator itself", eq["kms:RetiringPrincipal"])
	}
	body, _ := json.Marshal(a.Templates["AmiSource"])
	for _, banned := range []string{"GrantIsForAWSResource", `"kms:ListGrants"`, `"kms:RevokeGrant"`, `"kms:RetireGrant"`} {
		if strings.Contains(string(body), banned) {
			t.Errorf("the source template contains %s", banned)
		}
	}
}

func TestBasicAccountsGolden(t *testing.T) {
	goldenAssembly(t, "basic-accounts", basicAccountsAssembly(t))
}

func TestBasicAccountsCfnLint(t *testing.T) {
	t.Parallel()
	cfnLint(t, basicAccountsAssembly(t))
}

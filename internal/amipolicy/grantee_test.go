package amipolicy

import (
	"encoding/json"
	"strings"
	"testing"
)

var karpenterGrant = Grant{
	Partition:         "aws",
	HandlerAccount:    "222222222222",
	HandlerRoleArn:    "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-0123456789",
	GranteePrincipal:  "arn:aws:iam::222222222222:role/karpenter/KarpenterController",
	RetiringPrincipal: "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-0123456789",
	Operations:        []string{"Decrypt", "DescribeKey", "CreateGrant"},
}

// TestGrantStatementsOwnedGrant: a grant the handler owns gets one
// CreateGrant statement, its conditions spelled out literally.
func TestGrantStatementsOwnedGrant(t *testing.T) {
	stmts := GrantStatements(karpenterGrant)
	if len(stmts) != 1 {
		t.Fatalf("got %d statements, want 1 (CreateGrant only: the handler retires what it owns)", len(stmts))
	}
	body, _ := json.Marshal(stmts[0])
	want := `{"Sid":"Allow arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-0123456789 to create a grant for arn:aws:iam::222222222222:role/karpenter/KarpenterController (7b893830)","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":["kms:CreateGrant"],"Resource":"*",` +
		`"Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","DescribeKey","CreateGrant"]},` +
		`"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-0123456789","kms:GranteePrincipal":"arn:aws:iam::222222222222:role/karpenter/KarpenterController","kms:RetiringPrincipal":"arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-0123456789"}}}`
	if string(body) != want {
		t.Errorf("statement\n got %s\nwant %s", body, want)
	}
}

// TestGrantStatementsRetiringPrincipalOfYourOwn: the handler revokes such
// a grant and finds it with ListGrants, on the key.
func TestGrantStatementsRetiringPrincipalOfYourOwn(t *testing.T) {
	g := karpenterGrant
	g.RetiringPrincipal = "arn:aws:iam::222222222222:role/Ops"
	stmts := GrantStatements(g)
	if len(stmts) != 2 {
		t.Fatalf("got %d statements, want CreateGrant and RevokeGrant/ListGrants", len(stmts))
	}
	if got := stmts[0].Condition["StringEquals"]["kms:RetiringPrincipal"]; got != "arn:aws:iam::222222222222:role/Ops" {
		t.Errorf("CreateGrant's kms:RetiringPrincipal = %v", got)
	}
	manage := stmts[1]
	if strings.Join(manage.Action, ",") != "kms:RevokeGrant,kms:ListGrants" || manage.Principal["AWS"] != "arn:aws:iam::222222222222:root" ||
		manage.Condition["StringEquals"]["aws:PrincipalArn"] != g.HandlerRoleArn || len(manage.Condition) != 1 {
		t.Errorf("second statement = %+v, want RevokeGrant and ListGrants for the handler role only", manage)
	}
}

// TestGrantStatementsEncryptionContext: the constraint's type and pairs
// become conditions.
func TestGrantStatementsEncryptionContext(t *testing.T) {
	for _, tc := range []struct {
		name           string
		equals, subset map[string]string
		wantType       string
	}{
		{"equals", map[string]string{"app": "ami", "team": "infra"}, nil, "EncryptionContextEquals"},
		{"subset", nil, map[string]string{"app": "ami"}, "EncryptionContextSubset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := karpenterGrant
			g.EncryptionContextEquals, g.EncryptionContextSubset = tc.equals, tc.subset
			eq := GrantStatements(g)[0].Condition["StringEquals"]
			if eq["kms:GrantConstraintType"] != tc.wantType || eq["kms:EncryptionContext:app"] != "ami" {
				t.Errorf("conditions = %v, want kms:GrantConstraintType %s and kms:EncryptionContext:app ami", eq, tc.wantType)
			}
			if tc.equals != nil && eq["kms:EncryptionContext:team"] != "infra" {
				t.Errorf("conditions = %v, want kms:EncryptionContext:team infra", eq)
			}
		})
	}
	if eq := GrantStatements(karpenterGrant)[0].Condition["StringEquals"]; eq["kms:GrantConstraintType"] != nil {
		t.Errorf("a grant without a constraint has conditions %v", eq)
	}
}

// TestGrantStatementsSidsDiffer: two grants of one handler for one grantee
// (other operations) get distinct Sids; the same grant the same statement.
func TestGrantStatementsSidsDiffer(t *testing.T) {
	other := karpenterGrant
	other.Operations = []string{"Decrypt"}
	a, b, again := GrantStatements(karpenterGrant)[0], GrantStatements(other)[0], GrantStatements(karpenterGrant)[0]
	if a.Sid == b.Sid {
		t.Errorf("two grants share the Sid %q", a.Sid)
	}
	ja, _ := json.Marshal(a)
	jagain, _ := json.Marshal(again)
	if string(ja) != string(jagain) {
		t.Errorf("one grant gives two statements:\n%s\n%s", ja, jagain)
	}
}

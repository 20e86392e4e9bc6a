package amipolicy

import (
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"

	"encoding/json"
	"strings"
	"testing"
)

func TestCutOffStatementExactJSON(t *testing.T) {
	s := CutOffStatement(CutOff{Name: "Offboarded", Accounts: []string{"333333333333", "222222222222"}, KeyAccount: "111111111111"})

	b, err := json.Marshal(s)

	if err != nil {
		t.Fatal(err)
	}
	// An explicit Deny for every principal of the two accounts (sorted), on
	// CreateGrant and every action the destinations' statements and grants
	// allow; RetireGrant stays allowed (giving access up)
	want := `{"Sid":"Deny all use of the key and new grants to the accounts cut off by Offboarded","Effect":"Deny","Principal":{"AWS":"*"},` +
		`"Action":["kms:CreateGrant","kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*",` +
		`"Condition":{"StringEquals":{"aws:PrincipalAccount":["222222222222","333333333333"]}}}`
	if string(b) != want {
		t.Errorf("statement\n%s\nwant\n%s", b, want)
	}
}

// The Deny covers everything a destination is given: each action of the
// scoped and organization statements, and each operation of the grant.
func TestCutOffDeniesWhatTheDestinationsAreGiven(t *testing.T) {
	deny := CutOffStatement(CutOff{Name: "x", Accounts: []string{"222222222222"}}).Action
	covered := func(action string) bool {
		for _, d := range deny {
			if d == action || (strings.HasSuffix(d, "*") && strings.HasPrefix(action, strings.TrimSuffix(d, "*"))) {
				return true
			}
		}
		return false
	}
	d := Destination{Partition: "aws", Account: "222222222222", GrantCreatorArn: "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-d-0123456789"}
	org := Organization{Target: orgtarget.Target{OrganizationID: "o-abcdefghij"}, GrantCreatorPattern: "arn:aws:iam::*:role/crossaccountami/*", Partition: "aws"}
	var given []string
	for _, s := range append(Statements(d, Scoped), OrganizationStatements(org)...) {
		given = append(given, s.Action...)
	}
	for _, op := range []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant", "DescribeKey"} {
		given = append(given, "kms:"+op) // the grant's operations
	}
	for _, a := range given {
		if !covered(a) {
			t.Errorf("%s is given to destinations but not denied by the cut-off %v", a, deny)
		}
	}
	if covered("kms:RetireGrant") {
		t.Error("the cut-off denies RetireGrant: a destination could no longer give its grant up")
	}
}

func TestCutOffValidate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accounts []string
		want     string
	}{
		{"none", nil, "at least one account to cut off, got none"},
		{"not 12 digits", []string{"22222222222"}, `"22222222222" is not an AWS account id (expected 12 digits)`},
		{"letters", []string{"22222222222x"}, `"22222222222x" is not an AWS account id`},
		{"twice", []string{"222222222222", "333333333333", "222222222222"}, `"222222222222" is listed twice`},
		{"the key's own account", []string{"222222222222", "111111111111"}, `"111111111111" is the key's own account`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CutOff{Name: "x", Accounts: tc.accounts, KeyAccount: "111111111111"}.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if err := (CutOff{Name: "x", Accounts: []string{"222222222222", "${Token[TOKEN.12]}"}, KeyAccount: "111111111111"}).Validate(); err != nil {
		t.Errorf("a token is left to deploy time: %v", err)
	}
}

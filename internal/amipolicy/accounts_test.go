package amipolicy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

var examplesAccounts = Accounts{Name: "Destinations", Accounts: []string{"333333333333", "222222222222"}, Partition: "aws",
	GrantCreatorPattern: "arn:aws:iam::*:role/crossaccountami/*"}

func TestAccountsStatementsExactJSON(t *testing.T) {
	var got []string
	for _, s := range AccountsStatements(examplesAccounts) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	// The accounts (sorted) as principals; the service-linked roles and the
	// grant creators by pattern; a creator may create a grant only for its
	// own account's SLR, only with itself as retiring principal, only with
	// the 8 Auto Scaling operations; CreateGrant only.
	want := []string{
		`{"Sid":"Allow use of the key by Auto Scaling service-linked roles of the accounts of Destinations","Effect":"Allow","Principal":{"AWS":["222222222222","333333333333"]},` +
			`"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*",` +
			`"Condition":{"ArnLike":{"aws:PrincipalArn":["arn:aws:iam::*:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"]}}}`,
		`{"Sid":"Allow attachment of persistent resources by grant creators of the accounts of Destinations","Effect":"Allow","Principal":{"AWS":["222222222222","333333333333"]},` +
			`"Action":["kms:CreateGrant"],"Resource":"*",` +
			`"Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/crossaccountami/*"},` +
			`"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","Encrypt","GenerateDataKey","GenerateDataKeyWithoutPlaintext","ReEncryptFrom","ReEncryptTo","CreateGrant","DescribeKey"]},` +
			`"StringEquals":{"kms:GranteePrincipal":["arn:aws:iam::${aws:PrincipalAccount}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"],"kms:RetiringPrincipal":"${aws:PrincipalArn}"}}}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statements\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, banned := range []string{"kms:ListGrants", "kms:RevokeGrant", "kms:RetireGrant", "GrantIsForAWSResource"} {
		if strings.Contains(strings.Join(got, ""), banned) {
			t.Errorf("the statements contain %s", banned)
		}
	}
}

// The two styles without per-destination statements share everything but
// who they let in: the same actions and role conditions, so a change of the
// grantee patterns (more service-linked roles) reaches both.
func TestAccountsAndOrganizationShareTheirConditions(t *testing.T) {
	org := OrganizationStatements(Organization{Target: orgtarget.Target{OrganizationID: "o-abcdefghij"}, Partition: "aws",
		GrantCreatorPattern: examplesAccounts.GrantCreatorPattern, SLRSuffixes: []string{"team"}})
	a := examplesAccounts
	a.SLRSuffixes = []string{"team"}
	acc := AccountsStatements(a)
	for i := range org {
		o := org[i].Condition
		delete(o["StringEquals"], "aws:PrincipalOrgID")
		if len(o["StringEquals"]) == 0 {
			delete(o, "StringEquals")
		}
		if !reflect.DeepEqual(o, acc[i].Condition) || !reflect.DeepEqual(org[i].Action, acc[i].Action) {
			t.Errorf("statement %d: organization %v %v, accounts %v %v", i, org[i].Action, o, acc[i].Action, acc[i].Condition)
		}
	}
}

// TestAccountsCost measures what an account costs in the statements, in
// each form IAM accepts for an account principal: the bare id (what the
// statements use) and the account's ARN.
func TestAccountsCost(t *testing.T) {
	fixed, per := AccountsCost(examplesAccounts)
	if per != 30 {
		t.Errorf("an account costs %d bytes, want 30: 15 (\"222222222222\", and its comma) in each of the two statements", per)
	}
	one := func(principal string) int {
		b, _ := json.Marshal(principal)
		return len(b) + 1
	}
	idBytes, arnBytes := one("222222222222"), one("arn:aws:iam::222222222222:root")
	t.Logf("fixed %d bytes; per account and statement: id %d bytes, :root ARN %d bytes; per account (2 statements): id %d, ARN %d", fixed, idBytes, arnBytes, 2*idBytes, 2*arnBytes)
	if idBytes != 15 || arnBytes != 33 {
		t.Errorf("id %d bytes, ARN %d bytes", idBytes, arnBytes)
	}
	// The cost is exact: the statements of 500 accounts take fixed + 500 × per.
	a := examplesAccounts
	a.Accounts = nil
	for i := 0; i < 500; i++ {
		a.Accounts = append(a.Accounts, strings.Repeat("0", 9)+string(rune('0'+i/100))+string(rune('0'+i/10%10))+string(rune('0'+i%10)))
	}
	total := 0
	for _, s := range AccountsStatements(a) {
		b, _ := json.Marshal(s)
		total += len(b) + 1
	}
	if total != fixed+500*per {
		t.Errorf("500 accounts take %d bytes, AccountsCost says %d + 500 × %d", total, fixed, per)
	}
	if n := AccountsThatFit(examplesAccounts, 32768-2048); n < 500 {
		t.Errorf("%d accounts fit, want at least 500", n)
	}
}

func TestAccountsValidate(t *testing.T) {
	for _, tc := range []struct {
		accounts, suffixes []string
		want               string
	}{
		{nil, nil, "Accounts: at least one destination account id, got none"},
		{[]string{"222222222222", "2222"}, nil, `Accounts[1]: "2222" is not an AWS account id (expected 12 digits)`},
		{[]string{"222222222222", "333333333333", "333333333333"}, nil, `Accounts[2]: "333333333333" is listed twice (Accounts[1] too)`},
		{[]string{"222222222222"}, []string{"a b"}, "ServiceLinkedRoleSuffixes[0]: "},
		{[]string{"222222222222"}, []string{"_x"}, `ServiceLinkedRoleSuffixes[0]: "_x" starts with`},
	} {
		a := examplesAccounts
		a.Accounts, a.SLRSuffixes = tc.accounts, tc.suffixes
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want %q", tc.accounts, tc.suffixes, err, tc.want)
		}
	}
	if err := examplesAccounts.Validate(); err != nil {
		t.Error(err)
	}
}

// TestAccountsLaunchers: the ACCOUNTS statements take organization mode's
// launcher patterns (one definition, rolePatterns.grantees): each
// launcher's service-linked role and each role name, in the account of the
// grant creator, and Covers says which launchers they let in.
func TestAccountsLaunchers(t *testing.T) {
	a := Accounts{Name: "D", Accounts: []string{"222222222222"}, Partition: "aws", GrantCreatorPattern: "arn:aws:iam::*:role/crossaccountami/*",
		Launchers: []launcher.Kind{launcher.EKSManagedNodeGroup, launcher.SpotFleet}, RoleNames: []string{"karpenter/KarpenterController"}}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	st := AccountsStatements(a)
	got := st[1].Condition["StringEquals"]["kms:GranteePrincipal"]
	want := []string{
		"arn:aws:iam::${aws:PrincipalAccount}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
		"arn:aws:iam::${aws:PrincipalAccount}:role/aws-service-role/spotfleet.amazonaws.com/AWSServiceRoleForEC2SpotFleet",
		"arn:aws:iam::${aws:PrincipalAccount}:role/karpenter/KarpenterController",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("grantees %v, want %v", got, want)
	}
	if st[0].Sid != "Allow use of the key by launchers of the accounts of D" {
		t.Errorf("use Sid %q", st[0].Sid)
	}
	for l, want := range map[launcher.Launcher]bool{
		{Kind: launcher.EKSManagedNodeGroup}: true,
		{Kind: launcher.SpotFleet}:           true,
		{Kind: launcher.Role, RoleARN: "arn:aws:iam::222222222222:role/karpenter/KarpenterController"}: true,
		{Kind: launcher.Spot}: false,
		{Kind: launcher.Role, RoleARN: "arn:aws:iam::222222222222:role/Other"}: false,
	} {
		if got := a.Covers(l, "aws", "222222222222"); got != want {
			t.Errorf("Covers(%+v) = %v, want %v", l, got, want)
		}
	}
	a.Launchers = []launcher.Kind{launcher.EKSManagedNodeGroup}
	a.SLRSuffixes = []string{"fleet"}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "ServiceLinkedRoleSuffixes: only Auto Scaling groups use a custom-suffix role") {
		t.Errorf("suffix without AUTO_SCALING: got %v", err)
	}
}

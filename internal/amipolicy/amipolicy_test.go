package amipolicy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

var dest = Destination{Partition: "aws", Account: "222222222222",
	GrantCreatorArn: "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-0123456789"}

func TestScopedStatements(t *testing.T) {
	stmts := Statements(dest, Scoped)
	if len(stmts) != 2 {
		t.Fatalf("got %d statements, want 2", len(stmts))
	}
	body, _ := json.Marshal(stmts)
	for _, s := range stmts {
		if s.Principal["AWS"] != "arn:aws:iam::222222222222:root" {
			t.Errorf("%s: principal %v, want the account (valid before its roles exist)", s.Sid, s.Principal)
		}
		if s.Condition["StringEquals"]["aws:PrincipalArn"] == nil {
			t.Errorf("%s: no aws:PrincipalArn condition", s.Sid)
		}
	}
	if strings.Contains(string(body), "GrantIsForAWSResource") {
		t.Error("statements contain kms:GrantIsForAWSResource")
	}
	if strings.Contains(string(body), `"kms:*"`) {
		t.Error("statements allow kms:*")
	}
	create := stmts[1]
	if create.Condition["StringEquals"]["kms:GranteePrincipal"] != dest.SLRArn() {
		t.Errorf("CreateGrant grantee condition = %v", create.Condition["StringEquals"]["kms:GranteePrincipal"])
	}
	// The destination may create its grant, owned by its handler, and
	// nothing else: no ListGrants, RevokeGrant or RetireGrant on the key.
	if create.Condition["StringEquals"]["kms:RetiringPrincipal"] != dest.GrantCreatorArn {
		t.Errorf("CreateGrant retiring principal condition = %v", create.Condition["StringEquals"]["kms:RetiringPrincipal"])
	}
	for _, a := range []string{"kms:ListGrants", "kms:RevokeGrant", "kms:RetireGrant"} {
		if strings.Contains(string(body), a) {
			t.Errorf("a destination is allowed %s, which KMS cannot narrow to its own grants", a)
		}
	}
}

func TestSidsUniquePerDestination(t *testing.T) {
	other := dest
	other.Account = "333333333333"
	other.GrantCreatorArn = strings.Replace(dest.GrantCreatorArn, "222222222222", "333333333333", 1)
	suffixed := dest
	suffixed.SLRSuffix = "team"
	suffixed.GrantCreatorArn += "x"
	seen := map[string]bool{}
	for _, d := range []Destination{dest, other, suffixed} {
		for _, style := range []Style{Scoped, SeedArticle} {
			for _, s := range Statements(d, style) {
				key := string(style) + s.Sid
				if seen[key] {
					t.Errorf("Sid %q repeats", s.Sid)
				}
				seen[key] = true
			}
		}
	}
}

func TestSeedArticleStatements(t *testing.T) {
	stmts := Statements(dest, SeedArticle)
	if len(stmts) != 2 {
		t.Fatalf("got %d statements, want the article's 2", len(stmts))
	}
	if stmts[0].Principal["AWS"] != dest.SLRArn() || stmts[1].Principal["AWS"] != dest.GrantCreatorArn {
		t.Errorf("principals = %v, %v", stmts[0].Principal, stmts[1].Principal)
	}
	if got := strings.Join(stmts[1].Action, ","); got != "kms:CreateGrant,kms:ListGrants,kms:RevokeGrant" {
		t.Errorf("attachment actions = %s", got)
	}
}

func TestOrganizationStatementsGiveCreateGrantOnly(t *testing.T) {
	org := Organization{Target: orgtarget.Target{OrganizationID: "o-abcdefghij"}, Partition: "aws", GrantCreatorPattern: "arn:aws:iam::*:role/crossaccountami/*"}
	stmts := OrganizationStatements(org)
	if len(stmts) != 2 {
		t.Fatalf("got %d statements, want 2 (use of the key, CreateGrant)", len(stmts))
	}
	body, _ := json.Marshal(stmts)
	for _, a := range []string{"kms:ListGrants", "kms:RevokeGrant", "kms:RetireGrant"} {
		if strings.Contains(string(body), a) {
			t.Errorf("the organization's grant creators are allowed %s, which KMS cannot narrow to their own grants", a)
		}
	}
	create := stmts[1]
	if got := strings.Join(create.Action, ","); got != "kms:CreateGrant" {
		t.Errorf("actions %s", got)
	}
	// A creator may name only itself as the grant's retiring principal, and
	// only its own account's service-linked role as grantee.
	if got := create.Condition["StringEquals"]["kms:RetiringPrincipal"]; got != "${aws:PrincipalArn}" {
		t.Errorf("kms:RetiringPrincipal condition %v", got)
	}
	if got := create.Condition["StringEquals"]["kms:GranteePrincipal"].([]string)[0]; got != "arn:aws:iam::${aws:PrincipalAccount}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling" {
		t.Errorf("kms:GranteePrincipal condition %v", got)
	}
	if create.Condition["StringEquals"]["aws:PrincipalOrgID"] != "o-abcdefghij" {
		t.Errorf("organization condition %v", create.Condition)
	}
}

// TestOrganizationStatementsCoverNestedOUs: for OUs, both statements let in
// the accounts of the OUs and of every OU below them (a StackSet targeting
// the OUs deploys there too), and no account of a sibling OU or of another
// organization: their aws:PrincipalOrgPaths condition evaluated as IAM's
// ForAnyValue:StringLike evaluates it, on an account's one path.
func TestOrganizationStatementsCoverNestedOUs(t *testing.T) {
	org := Organization{
		Target:    orgtarget.Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-11111111", "ou-ab12-22222222"}},
		Partition: "aws", GrantCreatorPattern: "arn:aws:iam::*:role/crossaccountami/*",
	}
	for _, s := range OrganizationStatements(org) {
		patterns, _ := s.Condition["ForAnyValue:StringLike"]["aws:PrincipalOrgPaths"].([]string)
		if want := []string{"o-abcdefghij/*/ou-ab12-11111111/*", "o-abcdefghij/*/ou-ab12-22222222/*"}; !slices.Equal(patterns, want) {
			t.Errorf("%s: aws:PrincipalOrgPaths %q, want %q", s.Sid, patterns, want)
		}
		if _, byOrgID := s.Condition["StringEquals"]["aws:PrincipalOrgID"]; byOrgID {
			t.Errorf("%s: aws:PrincipalOrgID next to the OUs lets in the whole organization", s.Sid)
		}
		for path, want := range map[string]bool{
			"o-abcdefghij/r-ab12/ou-ab12-11111111/":                                   true,
			"o-abcdefghij/r-ab12/ou-ab12-22222222/ou-ab12-33333333/":                  true,
			"o-abcdefghij/r-ab12/ou-ab12-11111111/ou-ab12-33333333/ou-ab12-44444444/": true,
			"o-abcdefghij/r-ab12/ou-ab12-55555555/":                                   false,
			"o-abcdefghij/r-ab12/":                                                    false,
			"o-zzzzzzzzzz/r-ab12/ou-ab12-11111111/":                                   false,
		} {
			got := slices.ContainsFunc(patterns, func(p string) bool { return orgtarget.StringLike(p, path) })
			if got != want {
				t.Errorf("%s: an account with aws:PrincipalOrgPaths %s is let in: %v, want %v", s.Sid, path, got, want)
			}
		}
	}
}

func TestOrganizationValidate(t *testing.T) {
	for _, tc := range []struct {
		org  Organization
		want string
	}{
		{Organization{Target: orgtarget.Target{OrganizationID: "org-1"}}, `OrganizationId: expected o- followed by 10 to 32 lowercase letters or digits, got "org-1"`},
		{Organization{Target: orgtarget.Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12"}}}, `OrganizationalUnitIds: expected OU ids (ou-xxxx-xxxxxxxx) or the root id (r-xxxx) of o-abcdefghij, got "ou-ab12"`},
		{Organization{Target: orgtarget.Target{OrganizationID: "o-abcdefghij"}, SLRSuffixes: []string{"a b"}}, `ServiceLinkedRoleSuffixes:`},
	} {
		if err := tc.org.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.org, err, tc.want)
		}
	}
}

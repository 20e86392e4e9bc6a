package amipolicy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

const (
	asgRole     = "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	fleetRole   = "arn:aws:iam::222222222222:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet"
	karpenter   = "arn:aws:iam::222222222222:role/karpenter/KarpenterController"
	creatorRole = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-0123456789"
)

var three = []launcher.Launcher{{Kind: launcher.AutoScaling}, {Kind: launcher.EC2Fleet}, {Kind: launcher.Role, RoleARN: karpenter}}

// TestDefaultLaunchersKeepTheStatements: no Launchers, and the default
// Auto Scaling launcher given explicitly, write the statements of the
// release before launchers, literally.
func TestDefaultLaunchersKeepTheStatements(t *testing.T) {
	want := `[{"Sid":"Allow use of the key by AWSServiceRoleForAutoScaling of 222222222222","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*","Condition":{"StringEquals":{"aws:PrincipalArn":"` + asgRole + `"}}},` +
		`{"Sid":"Allow attachment of persistent resources by ` + creatorRole + `","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":["kms:CreateGrant"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","Encrypt","GenerateDataKey","GenerateDataKeyWithoutPlaintext","ReEncryptFrom","ReEncryptTo","CreateGrant","DescribeKey"]},"StringEquals":{"aws:PrincipalArn":"` + creatorRole + `","kms:GranteePrincipal":"` + asgRole + `","kms:RetiringPrincipal":"` + creatorRole + `"}}}]`
	explicit := dest
	explicit.Launchers = []launcher.Launcher{{Kind: launcher.AutoScaling}}
	for name, d := range map[string]Destination{"nil": dest, "explicit": explicit} {
		body, _ := json.Marshal(Statements(d, Scoped))
		t.Logf("%s launchers: %d bytes for both statements (a JSON list)", name, len(body))
		if string(body) != want {
			t.Errorf("%s launchers:\n got %s\nwant %s", name, body, want)
		}
	}
}

// TestSeveralLaunchers: two statements whatever the number of launchers;
// every grantee listed (sorted) in aws:PrincipalArn and kms:GranteePrincipal.
func TestSeveralLaunchers(t *testing.T) {
	d := dest
	d.Launchers = three
	stmts := Statements(d, Scoped)
	if len(stmts) != 2 {
		t.Fatalf("got %d statements, want 2", len(stmts))
	}
	want := []string{asgRole, fleetRole, karpenter} // sorted
	if got, _ := stmts[0].Condition["StringEquals"]["aws:PrincipalArn"].([]string); !slices.Equal(got, want) {
		t.Errorf("use: aws:PrincipalArn %v, want %v", stmts[0].Condition["StringEquals"]["aws:PrincipalArn"], want)
	}
	if got, _ := stmts[1].Condition["StringEquals"]["kms:GranteePrincipal"].([]string); !slices.Equal(got, want) {
		t.Errorf("CreateGrant: kms:GranteePrincipal %v, want %v", stmts[1].Condition["StringEquals"]["kms:GranteePrincipal"], want)
	}
	if got := stmts[1].Condition["StringEquals"]["aws:PrincipalArn"]; got != creatorRole {
		t.Errorf("CreateGrant: aws:PrincipalArn %v, want the creator only", got)
	}
	if want := "Allow use of the key by AWSServiceRoleForAutoScaling AWSServiceRoleForEC2Fleet karpenter/KarpenterController of 222222222222"; stmts[0].Sid != want {
		t.Errorf("use Sid %q, want %q", stmts[0].Sid, want)
	}
	if want := "Allow attachment of persistent resources by " + creatorRole + " for AWSServiceRoleForAutoScaling AWSServiceRoleForEC2Fleet karpenter/KarpenterController"; stmts[1].Sid != want {
		t.Errorf("attach Sid %q, want %q", stmts[1].Sid, want)
	}
	seed := Statements(d, SeedArticle)
	if got, _ := seed[0].Principal["AWS"].([]string); !slices.Equal(got, want) {
		t.Errorf("seed article: use principal %v, want %v", seed[0].Principal, want)
	}
	for _, s := range append(stmts, seed...) {
		body, _ := json.Marshal(s)
		t.Logf("%d bytes: %s", len(body), body)
	}
	scoped, _ := json.Marshal(stmts)
	t.Logf("three launchers, SCOPED: %d bytes for both statements (a JSON list)", len(scoped))
}

// TestLauncherSidsUnique: every grantee set of one creator gets Sids of its
// own, so two constructs of one stack with different launchers place two
// pairs of statements instead of clashing; an EKS node group next to an
// Auto Scaling group of the default role is the same grantee set. (The
// default role and a custom-suffix one keep the one attachment Sid of the
// releases before launchers: two such constructs on one key in one stack
// fail at synth with the Sid clash, as before.)
func TestLauncherSidsUnique(t *testing.T) {
	sets := map[string][]launcher.Launcher{
		"default":         nil,
		"eks":             {{Kind: launcher.EKSManagedNodeGroup}, {Kind: launcher.AutoScaling, SLRSuffix: "team"}},
		"fleet":           {{Kind: launcher.EC2Fleet}},
		"spot fleet":      {{Kind: launcher.SpotFleet}},
		"spot":            {{Kind: launcher.Spot}},
		"three":           three,
		"role":            {{Kind: launcher.Role, RoleARN: karpenter}},
		"role other path": {{Kind: launcher.Role, RoleARN: "arn:aws:iam::222222222222:role/KarpenterController"}},
		"two roles one name": {{Kind: launcher.Role, RoleARN: karpenter},
			{Kind: launcher.Role, RoleARN: "arn:aws:iam::222222222222:role/KarpenterController"}},
	}
	seen := map[string]string{}
	for name, ls := range sets {
		d := dest
		d.Launchers = ls
		for _, s := range Statements(d, Scoped) {
			if other, ok := seen[s.Sid]; ok {
				t.Errorf("%s and %s share the Sid %q", name, other, s.Sid)
			}
			seen[s.Sid] = name
		}
	}
	d := dest
	d.Launchers = []launcher.Launcher{{Kind: launcher.AutoScaling}, {Kind: launcher.EKSManagedNodeGroup}}
	a, _ := json.Marshal(Statements(d, Scoped))
	b, _ := json.Marshal(Statements(dest, Scoped))
	if string(a) != string(b) {
		t.Errorf("an Auto Scaling group and an EKS node group of the default role:\n%s\nwant the default statements\n%s", a, b)
	}
}

// TestOrganizationLaunchers: each launcher's service-linked role and each
// role name is a principal pattern (any account) of the use statement and a
// grantee of the creator's own account (${aws:PrincipalAccount}).
func TestOrganizationLaunchers(t *testing.T) {
	org := Organization{Target: orgtarget.Target{OrganizationID: "o-abcdefghij"}, Partition: "aws",
		GrantCreatorPattern: "arn:aws:iam::*:role/crossaccountami/*", SLRSuffixes: []string{"team"},
		Launchers: []launcher.Kind{launcher.AutoScaling, launcher.EKSManagedNodeGroup, launcher.SpotFleet},
		RoleNames: []string{"karpenter/KarpenterController", "Runner"}}
	if err := org.Validate(); err != nil {
		t.Fatal(err)
	}
	stmts := OrganizationStatements(org)
	wantUse := []string{
		"arn:aws:iam::*:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
		"arn:aws:iam::*:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_team",
		"arn:aws:iam::*:role/aws-service-role/spotfleet.amazonaws.com/AWSServiceRoleForEC2SpotFleet",
		"arn:aws:iam::*:role/karpenter/KarpenterController",
		"arn:aws:iam::*:role/Runner",
	}
	if got := stmts[0].Condition["ArnLike"]["aws:PrincipalArn"].([]string); !slices.Equal(got, wantUse) {
		t.Errorf("use patterns %q, want %q", got, wantUse)
	}
	var wantGrantee []string
	for _, p := range wantUse {
		wantGrantee = append(wantGrantee, strings.Replace(p, "::*:", "::${aws:PrincipalAccount}:", 1))
	}
	if got := stmts[1].Condition["StringEquals"]["kms:GranteePrincipal"].([]string); !slices.Equal(got, wantGrantee) {
		t.Errorf("grantees %q, want %q", got, wantGrantee)
	}
	if stmts[0].Sid != "Allow use of the key by launchers of the organization" {
		t.Errorf("use Sid %q", stmts[0].Sid)
	}
	for _, tc := range []struct {
		l    launcher.Launcher
		want bool
	}{
		{launcher.Launcher{Kind: launcher.EKSManagedNodeGroup}, true},
		{launcher.Launcher{Kind: launcher.AutoScaling, SLRSuffix: "team"}, true},
		{launcher.Launcher{Kind: launcher.AutoScaling, SLRSuffix: "other"}, false},
		{launcher.Launcher{Kind: launcher.SpotFleet}, true},
		{launcher.Launcher{Kind: launcher.EC2Fleet}, false},
		{launcher.Launcher{Kind: launcher.Role, RoleARN: "arn:aws:iam::333333333333:role/karpenter/KarpenterController"}, true},
		{launcher.Launcher{Kind: launcher.Role, RoleARN: "arn:aws:iam::333333333333:role/KarpenterController"}, false},
	} {
		if got := org.Covers(tc.l, "aws", "333333333333"); got != tc.want {
			t.Errorf("Covers(%+v) = %v, want %v", tc.l, got, tc.want)
		}
	}
	// No launchers: the statements before launchers, Sid included.
	plain := Organization{Target: org.Target, Partition: "aws", GrantCreatorPattern: org.GrantCreatorPattern}
	if s := OrganizationStatements(plain); s[0].Sid != "Allow use of the key by Auto Scaling service-linked roles of the organization" ||
		len(s[0].Condition["ArnLike"]["aws:PrincipalArn"].([]string)) != 1 {
		t.Errorf("default organization statement %+v", s[0])
	}
}

func TestOrganizationLaunchersValidate(t *testing.T) {
	base := Organization{Target: orgtarget.Target{OrganizationID: "o-abcdefghij"}}
	for _, tc := range []struct {
		name string
		edit func(*Organization)
		want string
	}{
		{"role kind", func(o *Organization) { o.Launchers = []launcher.Kind{launcher.Role} }, `Launchers[0]: roles are named by LauncherRoleNames, got "ROLE"`},
		{"unknown", func(o *Organization) { o.Launchers = []launcher.Kind{"FARGATE"} }, `Launchers[0]: Kind: expected one of`},
		{"twice", func(o *Organization) { o.Launchers = []launcher.Kind{launcher.Spot, launcher.Spot} }, `Launchers[1]: "SPOT" is listed twice`},
		{"suffix without ASG", func(o *Organization) {
			o.Launchers = []launcher.Kind{launcher.EKSManagedNodeGroup}
			o.SLRSuffixes = []string{"team"}
		}, `ServiceLinkedRoleSuffixes: only Auto Scaling groups use a custom-suffix role`},
		{"bad role name", func(o *Organization) { o.RoleNames = []string{"/karpenter/X"} }, `LauncherRoleNames[0]: expected a role's path and name`},
		{"role twice", func(o *Organization) { o.RoleNames = []string{"a/B", "a/B"} }, `LauncherRoleNames[1]: "a/B" is listed twice`},
		{"nothing", func(o *Organization) { o.Launchers = []launcher.Kind{} }, `Launchers: empty and no LauncherRoleNames`},
	} {
		o := base
		tc.edit(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSplitRoleName(t *testing.T) {
	for in, want := range map[string][2]string{
		"KarpenterController":           {"/", "KarpenterController"},
		"karpenter/KarpenterController": {"/karpenter/", "KarpenterController"},
		"a/b/c@d":                       {"/a/b/", "c@d"},
	} {
		path, name, err := SplitRoleName(in)
		if err != nil || path != want[0] || name != want[1] {
			t.Errorf("SplitRoleName(%q) = %q, %q, %v, want %q", in, path, name, err, want)
		}
	}
	for _, bad := range []string{"", "a//b", "/a", "a/", "has space", strings.Repeat("n", 65)} {
		if _, _, err := SplitRoleName(bad); err == nil || !strings.Contains(err.Error(), `got "`+bad+`"`) {
			t.Errorf("SplitRoleName(%q): %v, want an error naming the value", bad, err)
		}
	}
}

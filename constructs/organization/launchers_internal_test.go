package organization

import (
	"fmt"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// TestInnerGrantees: one grant per distinct principal, and the construct
// ids: "" (Grant, ServiceLinkedRole) for the Auto Scaling role of
// AUTO_SCALING, else of EKS_MANAGED_NODE_GROUP; "-<role name>" for the
// others, numbered when two share a name. Plain Go, no synth.
func TestInnerGrantees(t *testing.T) {
	for _, tc := range []struct {
		name      string
		kinds     []encryptedami.LauncherKind
		roleNames []string
		suffix    string
		want      string // id path name slr, per grantee
	}{
		{"default", nil, nil, "", `"" /aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling slr`},
		{"Auto Scaling and EKS share the default role", []encryptedami.LauncherKind{"AUTO_SCALING", "EKS_MANAGED_NODE_GROUP"}, nil, "",
			`"" /aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling slr`},
		{"EKS alone: the Auto Scaling role keeps the ids", []encryptedami.LauncherKind{"EKS_MANAGED_NODE_GROUP"}, nil, "",
			`"" /aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling slr`},
		{"a suffix and EKS: two Auto Scaling roles", []encryptedami.LauncherKind{"EKS_MANAGED_NODE_GROUP", "AUTO_SCALING"}, nil, "fleet",
			`"-AWSServiceRoleForAutoScaling" /aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling slr; "" /aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_fleet slr`},
		{"no Auto Scaling: no grant takes the ids of before", []encryptedami.LauncherKind{"EC2_FLEET"}, []string{"ci/Runner", "karpenter/Runner", "Solo"}, "",
			`"-AWSServiceRoleForEC2Fleet" /aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet slr; "-Runner" /ci/Runner role; "-Runner2" /karpenter/Runner role; "-Solo" /Solo role`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kinds *[]encryptedami.LauncherKind
			if tc.kinds != nil {
				kinds = &tc.kinds
			}
			ls, err := resolveLaunchers(kinds, tc.roleNames, tc.suffix)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range innerGrantees(ls) {
				what := "role"
				if g.hasSLR {
					what = "slr"
				}
				got = append(got, fmt.Sprintf("%q %s%s %s", g.id, g.path, g.name, what))
			}
			if strings.Join(got, "; ") != tc.want {
				t.Errorf("grantees\n %s\nwant\n %s", strings.Join(got, "; "), tc.want)
			}
		})
	}
}

// fakeCoverage lets in the launchers of the listed kinds.
type fakeCoverage []launcher.Kind

func (f fakeCoverage) CoversLauncher(kind launcher.Kind, _, _ string) bool {
	for _, k := range f {
		if k == kind {
			return true
		}
	}
	return false
}

// TestCheckCoverage: every KeyAccess item must let in every launcher; an
// item that is not encryptedami's cannot be asked, and is refused.
func TestCheckCoverage(t *testing.T) {
	ls, err := resolveLaunchers(&[]encryptedami.LauncherKind{"AUTO_SCALING", "SPOT"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	both := accessKey{path: "Keys/A", coverage: fakeCoverage{launcher.AutoScaling, launcher.Spot}}
	if err := checkCoverage([]accessKey{both, both}, ls); err != nil {
		t.Errorf("covered launchers: %v", err)
	}
	for _, tc := range []struct {
		access []accessKey
		want   string
	}{
		{[]accessKey{both, {path: "Keys/B", coverage: fakeCoverage{launcher.AutoScaling}}},
			"KeyAccess[1] (Keys/B): its statements do not let SPOT (arn:<partition>:iam::<account>:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot in each account) use the key"},
		{[]accessKey{{path: "Keys/C"}}, "KeyAccess[0] (Keys/C): expected the value encryptedami.NewOrganizationKeyAccess returned"},
	} {
		if err := checkCoverage(tc.access, ls); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

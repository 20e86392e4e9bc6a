package launcher

import (
	"reflect"
	"strings"
	"testing"
)

func TestGranteePerKind(t *testing.T) {
	for _, tc := range []struct {
		l    Launcher
		want string
	}{
		{Launcher{Kind: AutoScaling}, "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"},
		{Launcher{Kind: AutoScaling, SLRSuffix: "fleet"}, "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_fleet"},
		{Launcher{Kind: EKSManagedNodeGroup}, "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"},
		{Launcher{Kind: EC2Fleet}, "arn:aws:iam::222222222222:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet"},
		{Launcher{Kind: SpotFleet}, "arn:aws:iam::222222222222:role/aws-service-role/spotfleet.amazonaws.com/AWSServiceRoleForEC2SpotFleet"},
		{Launcher{Kind: Spot}, "arn:aws:iam::222222222222:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"},
		{Launcher{Kind: Role, RoleARN: "arn:aws:iam::222222222222:role/karpenter/KarpenterController"}, "arn:aws:iam::222222222222:role/karpenter/KarpenterController"},
	} {
		if err := tc.l.Validate(); err != nil {
			t.Fatalf("%+v: %v", tc.l, err)
		}
		if got := tc.l.Grantee("aws", "222222222222"); got != tc.want {
			t.Errorf("%+v: grantee %s, want %s", tc.l, got, tc.want)
		}
	}
	if got := (Launcher{Kind: Role, RoleARN: "arn:aws:iam::222222222222:role/karpenter/KarpenterController"}).GranteeName(); got != "KarpenterController" {
		t.Errorf("GranteeName %q", got)
	}
}

func TestValidateNamesTheFieldAndValue(t *testing.T) {
	for _, tc := range []struct {
		l    Launcher
		want string
	}{
		{Launcher{Kind: "ASG"}, `Kind: expected one of`},
		{Launcher{Kind: EKSManagedNodeGroup, SLRSuffix: "x"}, `SLRSuffix: EKS_MANAGED_NODE_GROUP launches with a service-linked role that takes no custom suffix, got "x"`},
		{Launcher{Kind: Role, RoleARN: "arn:aws:iam::222222222222:user/bob"}, `RoleARN: expected an IAM role ARN`},
		{Launcher{Kind: Role}, `RoleARN:`},
		{Launcher{Kind: Spot, RoleARN: "arn:aws:iam::222222222222:role/x"}, `RoleARN: only for ROLE`},
		{Launcher{Kind: AutoScaling, SLRSuffix: "bad suffix"}, `SLRSuffix:`},
	} {
		err := tc.l.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.l, err, tc.want)
		}
	}
}

func TestOnePrincipalOneGrant(t *testing.T) {
	ls := []Launcher{{Kind: EKSManagedNodeGroup}, {Kind: AutoScaling}, {Kind: Spot}, {Kind: AutoScaling, SLRSuffix: "a"}}
	got := Grantees(ls, "aws", "222222222222")
	if len(got) != 3 {
		t.Fatalf("grantees %v, want 3 distinct", got)
	}
	slrs := ServiceLinkedRolesOf(ls)
	want := []SLRRef{{Service: "autoscaling.amazonaws.com"}, {Service: "autoscaling.amazonaws.com", Suffix: "a"}, {Service: "spot.amazonaws.com"}}
	if !reflect.DeepEqual(slrs, want) {
		t.Errorf("service-linked roles %v, want %v", slrs, want)
	}
}

func TestResolveKinds(t *testing.T) {
	got, err := ResolveKinds(nil, "team", "LauncherRoles", 0)
	if err != nil || !reflect.DeepEqual(got, []Launcher{{Kind: AutoScaling, SLRSuffix: "team"}}) {
		t.Errorf("default: %v, %v", got, err)
	}
	if got, err := ResolveKinds([]Kind{}, "", "LauncherRoles", 1); err != nil || len(got) != 0 {
		t.Errorf("roles only: %v, %v", got, err)
	}
	for _, tc := range []struct {
		kinds  []Kind
		suffix string
		want   string
	}{
		{[]Kind{Role}, "", `Launchers[0]: a role that launches instances is given in LauncherRoles, got "ROLE"`},
		{[]Kind{"ASG"}, "", `Launchers[0]: expected one of [AUTO_SCALING EKS_MANAGED_NODE_GROUP EC2_FLEET SPOT_FLEET SPOT], got "ASG"`},
		{[]Kind{Spot, Spot}, "", "Launchers[1]: SPOT is listed twice in [SPOT SPOT]"},
		{[]Kind{EKSManagedNodeGroup}, "team", `ServiceLinkedRoleSuffix: a custom-suffix role serves Auto Scaling groups only`},
		{[]Kind{}, "", "Launchers: empty and no LauncherRoles: nothing would launch the AMI"},
	} {
		if _, err := ResolveKinds(tc.kinds, tc.suffix, "LauncherRoles", 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %q: got %v, want %q", tc.kinds, tc.suffix, err, tc.want)
		}
	}
}

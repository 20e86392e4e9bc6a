package organization_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
	"github.com/crossaccountami/crossaccountami/constructs/organization"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// granteeIn is the Fn::Join a grantee ARN of every target account is.
func granteeIn(rolePathName string) map[string]interface{} {
	return map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
		"arn:", map[string]interface{}{"Ref": "AWS::Partition"}, ":iam::", map[string]interface{}{"Ref": "AWS::AccountId"}, ":role/" + rolePathName}}}
}

// logicalIDHash is the hash CDK appends to a construct id.
var logicalIDHash = regexp.MustCompile(`[0-9A-F]{8}$`)

// resourcesOf are the construct ids (logical ids without their hash) of the
// template's resources of typ, sorted, and the logical id of each.
func resourcesOf(raw map[string]interface{}, typ string) ([]string, map[string]string) {
	var out []string
	logical := map[string]string{}
	for id, r := range raw["Resources"].(map[string]interface{}) {
		if r.(map[string]interface{})["Type"] == typ {
			name := logicalIDHash.ReplaceAllString(id, "")
			out = append(out, name)
			logical[name] = id
		}
	}
	sort.Strings(out)
	return out, logical
}

// TestDeploymentLaunchers: a StackSet for accounts whose EKS managed node
// groups, EC2 Fleets and Karpenter controller role launch the AMI; each
// account's stack ensures the two service-linked roles and grants each of
// the three principals, and its handler may create exactly those two
// service-linked roles.
func TestDeploymentLaunchers(t *testing.T) {
	// GIVEN three launchers
	props := defaultProps()
	props.Launchers = &[]encryptedami.LauncherKind{encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP, encryptedami.LauncherKind_EC2_FLEET}
	props.LauncherRoleNames = jsii.Strings("karpenter/KarpenterController")
	stack, d := newDeployment(t, props)
	tmpl, raw := inner(t, d)

	// THEN one grant per principal, the Auto Scaling role's under the id of
	// the releases before launchers, each on the region's key, retired by
	// the handler
	grants, grantID := resourcesOf(raw, "Custom::KmsGrant")
	if want := "[Grant GrantAWSServiceRoleForEC2Fleet GrantKarpenterController]"; fmt.Sprint(grants) != want {
		t.Fatalf("grants %v, want %s", grants, want)
	}
	keyOfRegion := map[string]interface{}{"Fn::FindInMap": []interface{}{"SourceKeys", map[string]interface{}{"Ref": "AWS::Region"}, "Arn"}}
	for _, grantee := range []string{
		"aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
		"aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet",
		"karpenter/KarpenterController",
	} {
		tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{
			"KeyArn":            keyOfRegion,
			"GranteePrincipal":  granteeIn(grantee),
			"Operations":        []interface{}{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant", "DescribeKey"},
			"RetiringPrincipal": map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^CrossAccountAmiGrantHandlerRole")), "Arn"}},
		})
	}
	// AND the two service-linked roles are ensured, each before its grant;
	// the controller role is the user's (nothing creates or changes it)
	if got, _ := resourcesOf(raw, "Custom::AutoScalingServiceLinkedRole"); fmt.Sprint(got) != "[ServiceLinkedRole]" {
		t.Errorf("Auto Scaling service-linked roles %v, want [ServiceLinkedRole]", got)
	}
	if got, _ := resourcesOf(raw, "Custom::ServiceLinkedRole"); fmt.Sprint(got) != "[ServiceLinkedRoleAWSServiceRoleForEC2Fleet]" {
		t.Fatalf("service-linked roles %v, want [ServiceLinkedRoleAWSServiceRoleForEC2Fleet]", got)
	}
	_, slrID := resourcesOf(raw, "Custom::ServiceLinkedRole")
	fleetSLR := slrID["ServiceLinkedRoleAWSServiceRoleForEC2Fleet"]
	tmpl.HasResource(jsii.String("Custom::ServiceLinkedRole"), &map[string]interface{}{
		"Properties":     map[string]interface{}{"AWSServiceName": "ec2fleet.amazonaws.com"},
		"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
	})
	dependsOn := func(id string) string {
		b, _ := json.Marshal(raw["Resources"].(map[string]interface{})[id].(map[string]interface{})["DependsOn"])
		return string(b)
	}
	if deps := dependsOn(grantID["GrantAWSServiceRoleForEC2Fleet"]); !strings.Contains(deps, `"`+fleetSLR+`"`) {
		t.Errorf("the EC2 Fleet grant depends on %s, want %s among them", deps, fleetSLR)
	}
	if deps := dependsOn(grantID["GrantKarpenterController"]); strings.Contains(deps, "ServiceLinkedRole") {
		t.Errorf("the controller role's grant waits for a service-linked role: %s", deps)
	}
	// AND the handler may create those two service-linked roles, and no other
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{map[string]interface{}{
			"Action": "iam:CreateServiceLinkedRole", "Effect": "Allow",
			"Resource": []interface{}{
				granteeIn("aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling*"),
				granteeIn("aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet"),
			},
			"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{"iam:AWSServiceName": []interface{}{"autoscaling.amazonaws.com", "ec2fleet.amazonaws.com"}}},
		}})},
	})
	if n := strings.Count(*d.TemplateBody(), `"Action":"iam:CreateServiceLinkedRole"`); n != 1 {
		t.Errorf("the template has %d iam:CreateServiceLinkedRole statements, want 1", n)
	}
	// AND each grant is checked on schedule
	tmpl.ResourceCountIs(jsii.String("AWS::Events::Rule"), jsii.Number(3))
	// AND the descriptions say what the stacks hold
	assertions.Template_FromStack(stack, nil).HasResourceProperties(jsii.String("AWS::CloudFormation::StackSet"), &map[string]interface{}{
		"Description": "crossaccountami: the launchers' service-linked roles, a KMS grant for each launcher on the source key of the region, and the grants' scheduled check",
	})
	if desc, _ := raw["Description"].(string); !strings.Contains(desc, "the launchers' service-linked roles and a KMS grant for each launcher") {
		t.Errorf("the StackSet template's Description %q", desc)
	}
}

// TestDeploymentAllLaunchers: every kind, a custom suffix (so that the
// Auto Scaling group and the EKS node group use two roles) and two role
// names of one name under two paths fit the TemplateBody limit: seven
// grants, five service-linked roles.
func TestDeploymentAllLaunchers(t *testing.T) {
	props := defaultProps()
	props.Launchers = &[]encryptedami.LauncherKind{
		encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP,
		encryptedami.LauncherKind_EC2_FLEET, encryptedami.LauncherKind_SPOT_FLEET, encryptedami.LauncherKind_SPOT,
	}
	props.LauncherRoleNames = jsii.Strings("ci/Runner", "karpenter/Runner")
	// (without the suffix: six grants, four service-linked roles)
	_, plain := newDeployment(t, props)
	props.ServiceLinkedRoleSuffix = jsii.String("fleet")
	_, d := newDeployment(t, props)
	for what, d := range map[string]organization.Deployment{"": plain, ", a suffix": d} {
		size := len(*d.TemplateBody())
		t.Logf("the StackSet's template with 5 launcher kinds%s and 2 role names: %d bytes (limit %d)", what, size, organization.MaxTemplateBodyBytes)
		if size > organization.MaxTemplateBodyBytes {
			t.Errorf("%d bytes, over the TemplateBody limit %d", size, organization.MaxTemplateBodyBytes)
		}
	}
	_, raw := inner(t, d)
	got, _ := resourcesOf(raw, "Custom::KmsGrant")
	want := []string{"Grant", "GrantAWSServiceRoleForAutoScaling", "GrantAWSServiceRoleForEC2Fleet", "GrantAWSServiceRoleForEC2Spot", "GrantAWSServiceRoleForEC2SpotFleet", "GrantRunner", "GrantRunner2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("grants %v, want %v", got, want)
	}
	as, _ := resourcesOf(raw, "Custom::AutoScalingServiceLinkedRole")
	others, _ := resourcesOf(raw, "Custom::ServiceLinkedRole")
	if fmt.Sprint(as, others) != "[ServiceLinkedRole ServiceLinkedRoleAWSServiceRoleForAutoScaling] [ServiceLinkedRoleAWSServiceRoleForEC2Fleet ServiceLinkedRoleAWSServiceRoleForEC2Spot ServiceLinkedRoleAWSServiceRoleForEC2SpotFleet]" {
		t.Errorf("service-linked role resources %v %v, want the fleet and the default Auto Scaling roles, EC2 Fleet, Spot, Spot Fleet", as, others)
	}
}

// TestDeploymentLauncherErrors: a launcher that cannot work fails at
// construction, naming the construct path, the prop and the value.
func TestDeploymentLauncherErrors(t *testing.T) {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Org"), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
	for _, tc := range []struct {
		name  string
		edit  func(p *organization.DeploymentProps)
		wants []string
	}{
		{"role as a kind", func(p *organization.DeploymentProps) { p.Launchers = &[]encryptedami.LauncherKind{"ROLE"} },
			[]string{`Launchers[0]: a role that launches instances is given in LauncherRoleNames, got "ROLE"`}},
		{"unknown kind", func(p *organization.DeploymentProps) { p.Launchers = &[]encryptedami.LauncherKind{"EC2FLEET"} },
			[]string{"Launchers[0]: expected one of [AUTO_SCALING EKS_MANAGED_NODE_GROUP EC2_FLEET SPOT_FLEET SPOT]", `got "EC2FLEET"`}},
		{"duplicate kind", func(p *organization.DeploymentProps) {
			p.Launchers = &[]encryptedami.LauncherKind{encryptedami.LauncherKind_SPOT, encryptedami.LauncherKind_SPOT}
		}, []string{"Launchers[1]: SPOT is listed twice in [SPOT SPOT]"}},
		{"suffix without AUTO_SCALING", func(p *organization.DeploymentProps) {
			p.Launchers = &[]encryptedami.LauncherKind{encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP}
			p.ServiceLinkedRoleSuffix = jsii.String("fleet")
		}, []string{"ServiceLinkedRoleSuffix: a custom-suffix role serves Auto Scaling groups only", "Launchers [EKS_MANAGED_NODE_GROUP] has no AUTO_SCALING", "an EKS managed node group launches with the default AWSServiceRoleForAutoScaling", `got "fleet"`}},
		{"bad role name", func(p *organization.DeploymentProps) { p.LauncherRoleNames = jsii.Strings("karpenter//Controller") },
			[]string{"LauncherRoleNames[0]: expected a role's path and name", `got "karpenter//Controller"`}},
		{"duplicate role name", func(p *organization.DeploymentProps) { p.LauncherRoleNames = jsii.Strings("ci/Runner", "ci/Runner") },
			[]string{`LauncherRoleNames[1]: "ci/Runner" is LauncherRoleNames[0] already`}},
		{"nothing launches", func(p *organization.DeploymentProps) { p.Launchers = &[]encryptedami.LauncherKind{} },
			[]string{"Launchers: empty and no LauncherRoleNames: nothing would launch the AMI", "got []"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			props := defaultProps()
			tc.edit(props)
			id := strings.ReplaceAll(tc.name, " ", "-")
			msg := constructtest.Catch(func() { organization.NewDeployment(stack, jsii.String(id), props) })
			for _, w := range append([]string{"Org/" + id}, tc.wants...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	if len(*stack.Node().Children()) != 0 {
		t.Errorf("constructs were added despite the errors: %d children", len(*stack.Node().Children()))
	}
}

// TestDeploymentLaunchersNotInKeyAccess: a launcher, suffix or role name
// the KeyAccess statements do not let in fails at construction, naming
// the KeyAccess item, the launcher and the fix: every account's grant for
// it would be denied at deploy.
func TestDeploymentLaunchersNotInKeyAccess(t *testing.T) {
	app := awscdk.NewApp(nil)
	target := &encryptedami.OrganizationTarget{OrganizationId: jsii.String(orgID), OrganizationalUnitIds: jsii.Strings(ous...)}
	keyStack := awscdk.NewStack(app, jsii.String("Keys"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	access := encryptedami.NewOrganizationKeyAccess(keyStack, jsii.String("Access"), &encryptedami.OrganizationKeyAccessProps{
		Key:       awskms.Key_FromKeyArn(keyStack, jsii.String("Key"), jsii.String("arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab")),
		Target:    target,
		Launchers: &[]encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP},
		// (a role of this name under another path is not this role)
		LauncherRoleNames: jsii.Strings("ci/Runner"),
	})
	stack := awscdk.NewStack(app, jsii.String("Org"), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
	for _, tc := range []struct {
		name  string
		edit  func(p *organization.DeploymentProps)
		wants []string
	}{
		{"kind", func(p *organization.DeploymentProps) {
			p.Launchers = &[]encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EC2_FLEET}
		}, []string{"its statements do not let EC2_FLEET", "(arn:<partition>:iam::<account>:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet in each account)", "add EC2_FLEET to its Launchers", "got Launchers [AUTO_SCALING, EC2_FLEET]"}},
		{"role name", func(p *organization.DeploymentProps) { p.LauncherRoleNames = jsii.Strings("karpenter/Runner") },
			[]string{"its statements do not let the role karpenter/Runner", `add "karpenter/Runner" to its LauncherRoleNames`}},
		{"suffix", func(p *organization.DeploymentProps) { p.ServiceLinkedRoleSuffix = jsii.String("fleet") },
			[]string{`its statements do not let AUTO_SCALING with ServiceLinkedRoleSuffix "fleet"`, `add "fleet" to its ServiceLinkedRoleSuffixes`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			props := defaultProps()
			props.MultiRegionKeyArn = nil
			props.Regions = jsii.Strings("us-east-1")
			props.KeyAccess = &[]encryptedami.OrganizationKeyAccess{access}
			tc.edit(props)
			msg := constructtest.Catch(func() { organization.NewDeployment(stack, jsii.String(tc.name), props) })
			for _, w := range append([]string{"Org/" + tc.name, "KeyAccess[0] (Keys/Access)", "so every account's grant for it would be denied"}, tc.wants...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// TestKeyAccessCoversLaunchers: what an OrganizationKeyAccess answers
// NewDeployment, for each launcher its statements do and do not let in.
func TestKeyAccessCoversLaunchers(t *testing.T) {
	app := awscdk.NewApp(nil)
	keyStack := awscdk.NewStack(app, jsii.String("Keys"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	access := encryptedami.NewOrganizationKeyAccess(keyStack, jsii.String("Access"), &encryptedami.OrganizationKeyAccessProps{
		Key:                       awskms.Key_FromKeyArn(keyStack, jsii.String("Key"), jsii.String("arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab")),
		Target:                    &encryptedami.OrganizationTarget{OrganizationId: jsii.String(orgID), OrganizationalUnitIds: jsii.Strings(ous...)},
		Launchers:                 &[]encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EC2_FLEET},
		ServiceLinkedRoleSuffixes: jsii.Strings("fleet"),
		LauncherRoleNames:         jsii.Strings("ci/Runner"),
	})
	asked, ok := access.(interface {
		CoversLauncher(kind launcher.Kind, slrSuffix, roleName string) bool
	})
	if !ok {
		t.Fatalf("%T has no CoversLauncher", access)
	}
	for _, tc := range []struct {
		kind         launcher.Kind
		suffix, role string
		want         bool
	}{
		{launcher.AutoScaling, "", "", true},
		{launcher.AutoScaling, "fleet", "", true},
		{launcher.AutoScaling, "other", "", false},
		{launcher.EKSManagedNodeGroup, "", "", true}, // the default Auto Scaling role
		{launcher.EC2Fleet, "", "", true},
		{launcher.SpotFleet, "", "", false},
		{launcher.Spot, "", "", false},
		{launcher.Role, "", "ci/Runner", true},
		{launcher.Role, "", "Runner", false},
		{launcher.Role, "", "karpenter/Runner", false},
	} {
		if got := asked.CoversLauncher(tc.kind, tc.suffix, tc.role); got != tc.want {
			t.Errorf("CoversLauncher(%s, %q, %q) = %v, want %v", tc.kind, tc.suffix, tc.role, got, tc.want)
		}
	}
}

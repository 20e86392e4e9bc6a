package encryptedami_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseks"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
)

const karpenterArn = "arn:aws:iam::222222222222:role/karpenter/KarpenterController"

func kinds(k ...encryptedami.LauncherKind) *[]encryptedami.LauncherKind { return &k }

// TestLauncherBadProps: every launcher combination that cannot work fails
// at construction, naming the construct path, the prop and the value, and
// adds nothing to the tree.
func TestLauncherBadProps(t *testing.T) {
	key := func(s awscdk.Stack) awskms.IKey {
		return awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String(importedKeyArn))
	}
	role := func(s awscdk.Stack, id, arn string) awsiam.IRole {
		return awsiam.Role_FromRoleArn(s, jsii.String(id), jsii.String(arn), nil)
	}
	for _, tc := range []struct {
		name  string
		props func(app awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps
		want  []string
	}{
		{"custom suffix with only EKS", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID),
				Launchers: kinds(encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP), ServiceLinkedRoleSuffix: jsii.String("team")}
		}, []string{"ServiceLinkedRoleSuffix: ", `got "team"`, "EKS managed node group launches with the default AWSServiceRoleForAutoScaling", "[EKS_MANAGED_NODE_GROUP]"}},
		{"unknown kind", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID),
				Launchers: kinds(encryptedami.LauncherKind_SPOT, "FARGATE")}
		}, []string{"Launchers[1]: expected one of [AUTO_SCALING EKS_MANAGED_NODE_GROUP EC2_FLEET SPOT_FLEET SPOT]", `got "FARGATE"`}},
		{"ROLE as a kind", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID), Launchers: kinds("ROLE")}
		}, []string{"Launchers[0]: ", "LauncherRoles", `got "ROLE"`}},
		{"duplicate kind", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID),
				Launchers: kinds(encryptedami.LauncherKind_EC2_FLEET, encryptedami.LauncherKind_EC2_FLEET)}
		}, []string{"Launchers[1]: EC2_FLEET is listed twice in [EC2_FLEET EC2_FLEET]"}},
		{"nothing launches", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID), Launchers: kinds()}
		}, []string{"Launchers: empty and no LauncherRoles", "got []"}},
		{"role of another account", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID),
				LauncherRoles: &[]awsiam.IRole{role(s, "R", "arn:aws:iam::333333333333:role/Runner")}}
		}, []string{"LauncherRoles[0]: the role arn:aws:iam::333333333333:role/Runner is in account 333333333333, this stack in 222222222222"}},
		{"role whose ARN is a deploy-time value", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			r := awsiam.NewRole(s, jsii.String("Runner"), &awsiam.RoleProps{AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil)})
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID), LauncherRoles: &[]awsiam.IRole{r}}
		}, []string{"LauncherRoles[0]: the ARN of the role D/Runner is a value known only at deploy time", "RoleName"}},
		{"same role twice", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID),
				LauncherRoles: &[]awsiam.IRole{role(s, "R1", karpenterArn), role(s, "R2", karpenterArn)}}
		}, []string{"LauncherRoles[1]: the role " + karpenterArn + " is LauncherRoles[0] already"}},
		{"nil role", func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key(s), ImageId: jsii.String(imageID), LauncherRoles: &[]awsiam.IRole{nil}}
		}, []string{"LauncherRoles[0]: expected a role, got nil"}},
		{"launcher the organization's statements leave out", func(app awscdk.App, _ awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
			k := awskms.NewKey(src, jsii.String("Key"), nil)
			access := encryptedami.NewOrganizationKeyAccess(src, jsii.String("Access"), &encryptedami.OrganizationKeyAccessProps{
				Key: k, Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String("o-abcdefghij")},
				Launchers: kinds(encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EC2_FLEET)})
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: k, ImageId: jsii.String(imageID), OrganizationKeyAccess: access,
				Launchers: kinds(encryptedami.LauncherKind_EC2_FLEET, encryptedami.LauncherKind_SPOT_FLEET)}
		}, []string{"OrganizationKeyAccess: Src/Access does not let SPOT_FLEET (arn:aws:iam::222222222222:role/aws-service-role/spotfleet.amazonaws.com/AWSServiceRoleForEC2SpotFleet) use the key", "add it to its Launchers", "got Launchers [EC2_FLEET, SPOT_FLEET]"}},
		{"role the organization's statements leave out", func(app awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
			src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
			k := awskms.NewKey(src, jsii.String("Key"), nil)
			access := encryptedami.NewOrganizationKeyAccess(src, jsii.String("Access"), &encryptedami.OrganizationKeyAccessProps{
				Key: k, Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String("o-abcdefghij")},
				LauncherRoleNames: jsii.Strings("KarpenterController")})
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: k, ImageId: jsii.String(imageID), OrganizationKeyAccess: access,
				LauncherRoles: &[]awsiam.IRole{role(s, "R", karpenterArn)}}
		}, []string{"OrganizationKeyAccess: Src/Access does not let the role " + karpenterArn, "LauncherRoleNames"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			stack := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
			props := tc.props(app, stack)
			msg := constructtest.Catch(func() {
				encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), props)
			})
			t.Log(msg)
			for _, w := range append(tc.want, " D/Ami: ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "${Token[") {
				t.Errorf("error %q contains token text", msg)
			}
			if stack.Node().TryFindChild(jsii.String("Ami")) != nil || stack.Node().TryFindChild(jsii.String("CrossAccountAmiGrantHandler")) != nil {
				t.Error("constructs were added despite the error")
			}
		})
	}
}

// TestNodegroupChecks: a node group in another region, and a node group
// next to a construct that does not grant the default Auto Scaling role,
// fail naming the method, the prop and the value.
func TestNodegroupChecks(t *testing.T) {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	key := awskms.Key_FromKeyArn(stack, jsii.String("K"), jsii.String(importedKeyArn))
	suffixed := encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: key, ImageId: jsii.String(imageID), ServiceLinkedRoleSuffix: jsii.String("team")})
	other := awscdk.NewStack(app, jsii.String("W"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "eu-west-1")})
	nodegroup := func(s awscdk.Stack, id string) awseks.CfnNodegroup {
		return awseks.NewCfnNodegroup(s, jsii.String(id), &awseks.CfnNodegroupProps{ClusterName: jsii.String("c"),
			NodeRole: jsii.String("arn:aws:iam::222222222222:role/Node"), Subnets: &[]interface{}{"subnet-1"}})
	}
	msg := constructtest.Catch(func() { suffixed.ConfigureCfnNodegroup(nodegroup(other, "Ng")) })
	if !strings.Contains(msg, `CrossAccountEncryptedAmi.ConfigureCfnNodegroup D/Ami: ng: the node group W/Ng is in region "eu-west-1", the AMI and its key in "us-east-1"`) {
		t.Errorf("other region: %q", msg)
	}
	msg = constructtest.Catch(func() { suffixed.ConfigureCfnNodegroup(nodegroup(stack, "Ng")) })
	if !strings.Contains(msg, "Launchers: an EKS managed node group launches with the default AWSServiceRoleForAutoScaling, which [AUTO_SCALING] does not grant; add EKS_MANAGED_NODE_GROUP to Launchers") {
		t.Errorf("suffixed role only: %q", msg)
	}
}

// TestL2Nodegroup: the L2 awseks.Nodegroup of an imported cluster takes
// NewLaunchTemplate's template (no instance profile in it), and
// ConfigureNodegroup makes its node group wait for the default role's
// grant and role resource.
func TestL2Nodegroup(t *testing.T) {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	key := awskms.Key_FromKeyArn(stack, jsii.String("K"), jsii.String(importedKeyArn))
	ami := encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: key, ImageId: jsii.String(imageID), Launchers: kinds(encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP)})
	vpc := awsec2.Vpc_FromVpcAttributes(stack, jsii.String("Vpc"), &awsec2.VpcAttributes{VpcId: jsii.String("vpc-0123456789abcdef0"),
		AvailabilityZones: jsii.Strings("us-east-1a"), PrivateSubnetIds: jsii.Strings("subnet-0123456789abcdef0")})
	cluster := awseks.Cluster_FromClusterAttributes(stack, jsii.String("Cluster"), &awseks.ClusterAttributes{ClusterName: jsii.String("shared"), Vpc: vpc})
	lt := ami.NewLaunchTemplate(stack, jsii.String("Lt"), nil)
	ng := awseks.NewNodegroup(stack, jsii.String("Ng"), &awseks.NodegroupProps{
		Cluster:            cluster,
		NodeRole:           awsiam.Role_FromRoleArn(stack, jsii.String("NodeRole"), jsii.String("arn:aws:iam::222222222222:role/EksNodeRole"), nil),
		LaunchTemplateSpec: &awseks.LaunchTemplateSpec{Id: lt.LaunchTemplateId(), Version: lt.LatestVersionNumber()},
	})
	ami.ConfigureNodegroup(ng)

	tpl := assertions.Template_FromStack(stack, nil)
	body, _ := json.Marshal(tpl.ToJSON())
	var parsed struct {
		Resources map[string]struct {
			Type       string
			DependsOn  []string
			Properties map[string]interface{}
		}
	}
	_ = json.Unmarshal(body, &parsed)
	for id, r := range parsed.Resources {
		switch r.Type {
		case "AWS::EKS::Nodegroup":
			deps := strings.Join(r.DependsOn, " ")
			if !strings.Contains(deps, "AmiGrant") || !strings.Contains(deps, "AmiServiceLinkedRole") {
				t.Errorf("%s DependsOn %s, want the grant and the service-linked role", id, deps)
			}
			if _, ok := r.Properties["AmiType"]; ok {
				t.Errorf("%s sets AmiType next to a custom AMI's launch template", id)
			}
		case "AWS::EC2::LaunchTemplate":
			if _, ok := r.Properties["LaunchTemplateData"].(map[string]interface{})["IamInstanceProfile"]; ok {
				t.Errorf("%s has an IamInstanceProfile, which EKS refuses", id)
			}
		}
	}
}

// TestThreeLaunchers: one construct with an Auto Scaling group (custom
// suffix), an EKS managed node group, EC2 Fleet, Spot and a role has one
// grant per distinct grantee, one service-linked role resource per role,
// a handler that may create exactly those services' roles, and key policy
// statements for all grantees.
func TestManyLaunchers(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	stack := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	runner := awsiam.NewRole(stack, jsii.String("Runner"), &awsiam.RoleProps{RoleName: jsii.String("Runner"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil)})
	ami := encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: key, ImageId: jsii.String(imageID), ServiceLinkedRoleSuffix: jsii.String("team"),
		Launchers: kinds(encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP,
			encryptedami.LauncherKind_EC2_FLEET, encryptedami.LauncherKind_SPOT),
		LauncherRoles: &[]awsiam.IRole{awsiam.Role_FromRoleArn(stack, jsii.String("Karpenter"), jsii.String(karpenterArn), nil), runner},
	})
	// A second AMI of the same key for the EKS node group only shares the
	// default role's grant.
	eks := encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Eks"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: key, ImageId: jsii.String("ami-0123456789abcdef1"), Launchers: kinds(encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP)})
	ng := awseks.NewCfnNodegroup(stack, jsii.String("Ng"), &awseks.CfnNodegroupProps{ClusterName: jsii.String("c"),
		NodeRole: jsii.String("arn:aws:iam::222222222222:role/Node"), Subnets: &[]interface{}{"subnet-1"}})
	eks.ConfigureCfnNodegroup(ng)

	wantGrantees := []string{
		"arn:aws:iam::222222222222:role/Runner",
		"arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
		"arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_team",
		"arn:aws:iam::222222222222:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet",
		"arn:aws:iam::222222222222:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
		karpenterArn,
	}
	var got []string
	for _, g := range *ami.GranteeArns() {
		got = append(got, *g)
	}
	if !slices.Equal(got, wantGrantees) {
		t.Errorf("GranteeArns %q, want %q", got, wantGrantees)
	}
	if n := len(*ami.Grants()); n != 6 {
		t.Errorf("%d grants, want 6", n)
	}
	if (*eks.Grants())[0] != (*ami.Grants())[1] {
		t.Error("the EKS construct does not share the default role's grant")
	}
	if *ami.ServiceLinkedRoleArn() != wantGrantees[2] || ami.Grant() != (*ami.Grants())[2] {
		t.Errorf("ServiceLinkedRoleArn %s, want the Auto Scaling role of the suffix", *ami.ServiceLinkedRoleArn())
	}

	tpl := assertions.Template_FromStack(stack, nil)
	tpl.ResourceCountIs(jsii.String("Custom::KmsGrant"), jsii.Number(6))
	tpl.ResourceCountIs(jsii.String("Custom::AutoScalingServiceLinkedRole"), jsii.Number(2))
	tpl.ResourceCountIs(jsii.String("Custom::ServiceLinkedRole"), jsii.Number(2))
	for _, service := range []string{"ec2fleet.amazonaws.com", "spot.amazonaws.com"} {
		tpl.HasResourceProperties(jsii.String("Custom::ServiceLinkedRole"), map[string]interface{}{"AWSServiceName": service})
	}
	tpl.HasResource(jsii.String("Custom::ServiceLinkedRole"), map[string]interface{}{"DeletionPolicy": "Retain"})
	tpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), assertions.Match_ObjectLike(&map[string]interface{}{
		"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{map[string]interface{}{
			"Action": "iam:CreateServiceLinkedRole", "Effect": "Allow",
			"Resource": []interface{}{
				"arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling*",
				"arn:aws:iam::222222222222:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet",
				"arn:aws:iam::222222222222:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
			},
			"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{
				"iam:AWSServiceName": []interface{}{"autoscaling.amazonaws.com", "ec2fleet.amazonaws.com", "spot.amazonaws.com"}}},
		}})},
	}))
	// The grant for a launcher role of this app waits for the role: KMS
	// refuses a grant for a role that does not exist yet.
	runnerID := *stack.GetLogicalId(runner.Node().DefaultChild().(awsiam.CfnRole))
	for id, r := range *tpl.FindResources(jsii.String("Custom::KmsGrant"), nil) {
		if (*r)["Properties"].(map[string]interface{})["GranteePrincipal"] != "arn:aws:iam::222222222222:role/Runner" {
			continue
		}
		dependsOn, _ := json.Marshal((*r)["DependsOn"])
		if !strings.Contains(string(dependsOn), `"`+runnerID+`"`) {
			t.Errorf("the Runner role's grant %s depends on %s, not on the role %s", id, dependsOn, runnerID)
		}
	}
	// The node group waits for the default role's grant and role resource.
	deps, _ := json.Marshal(tpl.ToJSON())
	var parsed struct {
		Resources map[string]struct {
			Type      string
			DependsOn []string
		}
	}
	_ = json.Unmarshal(deps, &parsed)
	ngDeps := strings.Join(parsed.Resources[*stack.GetLogicalId(ng)].DependsOn, " ")
	if !strings.Contains(ngDeps, "AmiGrantAWSServiceRoleForAutoScaling") || !strings.Contains(ngDeps, "AmiServiceLinkedRoleAWSServiceRoleForAutoScaling") {
		t.Errorf("node group DependsOn %s, want the default role's grant and role resource", ngDeps)
	}
	// Every grantee is in the key policy's two statements.
	var policy []byte
	for _, s := range *ami.KeyPolicyStatements() {
		b, _ := json.Marshal(s.ToJSON())
		policy = append(policy, b...)
	}
	for _, g := range wantGrantees {
		if strings.Count(string(policy), `"`+g+`"`) != 2 {
			t.Errorf("key policy names %s %d times, want 2 (use, CreateGrant): %s", g, strings.Count(string(policy), g), policy)
		}
	}
}

// TestServiceLinkedRoleSuppressionFollowsTheStatement: the cdk-nag reason
// that accepts the iam:CreateServiceLinkedRole statement's wildcard names
// the services the statement lists, whichever order the constructs of the
// stack ask for them in (the statement is widened in place).
func TestServiceLinkedRoleSuppressionFollowsTheStatement(t *testing.T) {
	for name, orders := range map[string][][]encryptedami.LauncherKind{
		"one construct":             {{encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EC2_FLEET}},
		"EC2 Fleet first, then ASG": {{encryptedami.LauncherKind_EC2_FLEET}, {encryptedami.LauncherKind_AUTO_SCALING}},
	} {
		t.Run(name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
			key := awskms.NewKey(source, jsii.String("Key"), nil)
			stack := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
			for i, ks := range orders {
				ks := ks
				encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String(fmt.Sprintf("Ami%d", i)), &encryptedami.CrossAccountEncryptedAmiProps{
					Key: key, ImageId: jsii.String(fmt.Sprintf("ami-0123456789abcdef%d", i)), Launchers: &ks})
			}
			body, _ := json.Marshal(assertions.Template_FromStack(stack, nil).FindResources(jsii.String("AWS::IAM::Policy"), nil))
			text := string(body)
			want := "only for the services of this stack's launchers (condition iam:AWSServiceName = autoscaling.amazonaws.com, ec2fleet.amazonaws.com)"
			if !strings.Contains(text, want) || strings.Contains(text, "only for the Auto Scaling service") || strings.Contains(text, "no wildcard") {
				t.Errorf("the handler policy's cdk-nag reasons do not follow the statement (want %q): %s", want, text)
			}
		})
	}
}

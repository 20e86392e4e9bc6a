// Package fleet builds the destination side that every example shares: a
// small Auto Scaling group that launches the shared, encrypted AMI, and the
// cdk-nag suppressions that explain why its findings are accepted in an
// example. The construct ids (Vpc, LaunchTemplate, Asg) are part of the
// examples' synthesized templates (test/testdata golden files): keep them.
package fleet

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
)

// NewStack creates a destination stack whose availability zones are
// declared, not looked up: an environment-specific stack's zones are
// otherwise a context lookup, and `cdk synth` would call AWS (and fail
// without credentials) for every destination account. A value the user
// gave for the same context key (cdk.context.json, -c) wins.
func NewStack(scope constructs.Construct, id string, props *awscdk.StackProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	key := fmt.Sprintf("availability-zones:account=%s:region=%s", *stack.Account(), *stack.Region())
	if stack.Node().TryGetContext(jsii.String(key)) == nil {
		// Context can be set only while the stack has no children.
		stack.Node().SetContext(jsii.String(key), zones(*stack.Region()))
	}
	return stack
}

// zones are the availability zones the example's VPC uses.
func zones(region string) []string { return []string{region + "a", region + "b"} }

// New adds to scope (a stack made by NewStack) a VPC, a launch template
// from ami and an Auto Scaling group that uses it, and lets ami configure
// the group.
func New(scope constructs.Construct, ami encryptedami.CrossAccountEncryptedAmi, region string) awsautoscaling.AutoScalingGroup {
	vpc := awsec2.NewVpc(scope, jsii.String("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: jsii.Strings(zones(region)...),
		NatGateways:       jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("Public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
		},
	})
	launchTemplate := ami.NewLaunchTemplate(scope, jsii.String("LaunchTemplate"), &encryptedami.LaunchTemplateProps{
		LaunchTemplate: &awsec2.LaunchTemplateProps{
			InstanceType:  awsec2.NewInstanceType(jsii.String("t3.micro")),
			RequireImdsv2: jsii.Bool(true),
		},
	})
	asg := awsautoscaling.NewAutoScalingGroup(scope, jsii.String("Asg"), &awsautoscaling.AutoScalingGroupProps{
		Vpc:            vpc,
		VpcSubnets:     &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		LaunchTemplate: launchTemplate,
		MinCapacity:    jsii.Number(1),
		MaxCapacity:    jsii.Number(2),
	})
	ami.ConfigureAutoScalingGroup(asg)
	suppressExampleFindings(vpc, asg)
	return asg
}

// suppressExampleFindings records, next to the example's VPC and Auto
// Scaling group, why cdk-nag's findings on them are accepted here.
func suppressExampleFindings(vpc awsec2.Vpc, asg awsautoscaling.AutoScalingGroup) {
	nagsuppress.Add(vpc.Node().DefaultChild().(awscdk.CfnResource), "AwsSolutions-VPC7",
		"The example's VPC only hosts the demonstration Auto Scaling group (public subnets, no NAT, no inbound rule); "+
			"flow logs would add a log group, an IAM role and ingestion cost to every trial deploy. Production VPCs should enable them (vpc.AddFlowLog).")
	group := asg.Node().DefaultChild().(awscdk.CfnResource)
	nagsuppress.Add(group, "AwsSolutions-EC26",
		"The launch template from CrossAccountEncryptedAmi.NewLaunchTemplate maps the root volume with Encrypted: true and "+
			"KmsKeyId: the source key, through a property override that this rule does not read (test/nag_test.go TestNag checks the mapping).")
	nagsuppress.Add(group, "AwsSolutions-AS3",
		"The example's group has no operator to notify; its scaling events stay in the group's activity history. "+
			"Production groups should send notifications to their team's SNS topic.")
}

package main

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

// This file is the destination side's demonstration fleet: a VPC, a launch
// template of the shared AMI and a small Auto Scaling group. Every example
// has the same copy, so that each one is a main package you can paste on
// its own; in your app, your own VPC and group take its place. Keep the
// construct ids (Vpc, LaunchTemplate, Asg) if you deployed the example:
// they make the resources' logical ids.

// newDestinationStack creates a destination stack whose availability zones
// are declared, not looked up: an environment-specific stack's zones are
// otherwise a context lookup, and `cdk synth` would call AWS (and fail
// without credentials) for every destination account. A value you gave for
// the same context key (cdk.context.json, -c) wins.
func newDestinationStack(scope constructs.Construct, id string, props *awscdk.StackProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	key := fmt.Sprintf("availability-zones:account=%s:region=%s", *stack.Account(), *stack.Region())
	if stack.Node().TryGetContext(jsii.String(key)) == nil {
		// Context can be set only while the stack has no children.
		stack.Node().SetContext(jsii.String(key), zones(*stack.Region()))
	}
	return stack
}

// zones are the availability zones of the example's VPC.
func zones(region string) []string { return []string{region + "a", region + "b"} }

// newFleet adds to stack (made by newDestinationStack) a VPC, a launch
// template of ami and an Auto Scaling group that uses it, and lets ami
// configure the group: it waits for the grant.
func newFleet(stack awscdk.Stack, ami encryptedami.CrossAccountEncryptedAmi, region string) {
	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: jsii.Strings(zones(region)...),
		NatGateways:       jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("Public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
		},
	})
	launchTemplate := ami.NewLaunchTemplate(stack, jsii.String("LaunchTemplate"), &encryptedami.LaunchTemplateProps{
		LaunchTemplate: &awsec2.LaunchTemplateProps{
			InstanceType:  awsec2.NewInstanceType(jsii.String("t3.micro")),
			RequireImdsv2: jsii.Bool(true),
		},
	})
	asg := awsautoscaling.NewAutoScalingGroup(stack, jsii.String("Asg"), &awsautoscaling.AutoScalingGroupProps{
		Vpc:            vpc,
		VpcSubnets:     &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		LaunchTemplate: launchTemplate,
		MinCapacity:    jsii.Number(1),
		MaxCapacity:    jsii.Number(2),
	})
	ami.ConfigureAutoScalingGroup(asg)

	// Why cdk-nag's findings on the example's VPC and group are accepted
	// here, next to them (cdk-nag reads these from the resources' Metadata).
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

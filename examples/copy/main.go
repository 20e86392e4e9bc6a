// Command copy is an example app of copy and re-encrypt: a source account
// that owns an encrypted AMI and its KMS key shares the AMI (and its
// snapshots) with a destination account, which copies it into its own
// account, encrypted with its own key, and launches the copy with an Auto
// Scaling group. Launches never touch the source key.
//
//	npx cdk synth                                   # placeholder accounts
//	npx cdk deploy --all -c sourceAccount=... -c destinationAccount=... -c imageId=...
//
// Context keys (all optional): sourceAccount (default 111111111111),
// destinationAccount (default 222222222222), region (default us-east-1),
// imageId (default ami-0123456789abcdef0, an AMI of sourceAccount encrypted
// with the source stack's key), destinationKey ("app", the default: a key
// of the destination stack; "aws/ebs": the account's default EBS key).
//
// It uses only the library's public API: copy main.go into a module of your own.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/amicopy"
	"github.com/crossaccountami/crossaccountami/constructs/amipermission"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
)

func main() {
	defer jsii.Close()
	// A construct rejects a bad prop with a panic that names it: print it
	// as one line and exit 1 before any cloud assembly is written.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(os.Stderr, "synth failed:", r)
			jsii.Close() // os.Exit skips the deferred Close
			os.Exit(1)
		}
	}()
	app := awscdk.NewApp(nil)
	build(app)
	app.Synth(nil)
}

// build adds the source stack (AmiSource) and the destination stack
// (AmiCopy) to app.
func build(app awscdk.App) {
	region := context(app, "region", "us-east-1")
	destinationAccount := context(app, "destinationAccount", "222222222222")
	imageID := context(app, "imageId", "ami-0123456789abcdef0")

	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(context(app, "sourceAccount", "111111111111")), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami copy example: the source account's AMI key and the AMI's sharing"),
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the shared AMI's snapshots"),
		EnableKeyRotation: jsii.Bool(true),
	})
	// The destination reads the key ARN across accounts, through a role
	// CDK adds to this stack: say why cdk-nag's finding on it is accepted.
	nagsuppress.CrossAccountReference(source)
	// A copy needs the AMI shared with the destination, and its snapshots
	// too (create-volume permission): the copy reads them.
	amipermission.NewLaunchPermission(source, jsii.String("ShareWithDestination"), &amipermission.LaunchPermissionProps{
		ImageId:        jsii.String(imageID),
		Accounts:       jsii.Strings(destinationAccount),
		ShareSnapshots: jsii.Bool(true),
	})

	destination := newDestinationStack(app, "AmiCopy", &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(destinationAccount), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami copy example: the destination's own copy of the shared AMI, and a fleet that launches it"),
	})
	// The source shares the AMI before the destination copies it.
	destination.AddStackDependency(source, jsii.String("the source shares the AMI and its snapshots before the destination copies it"))
	var destinationKey awskms.IKey
	if context(app, "destinationKey", "app") == "app" {
		destinationKey = awskms.NewKey(destination, jsii.String("CopyKey"), &awskms.KeyProps{
			Description:       jsii.String("Encrypts this account's copy of the shared AMI"),
			EnableKeyRotation: jsii.Bool(true),
		})
	}
	ami := amicopy.NewCopiedAmi(destination, jsii.String("SharedAmiCopy"), &amicopy.CopiedAmiProps{
		SourceImageId:  jsii.String(imageID),
		SourceKey:      key,
		DestinationKey: destinationKey,
		Name:           jsii.String("shared-ami-copy"),
	})
	newFleet(destination, ami, region)
	awscdk.NewCfnOutput(destination, jsii.String("CopyImageId"), &awscdk.CfnOutputProps{
		Value: ami.ImageId(), Description: jsii.String("The copy's AMI id, in this account"),
	})
}

// newDestinationStack creates a destination stack whose availability zones
// are declared, not looked up, so that `cdk synth` needs no credentials.
// A value you gave for the same context key (cdk.context.json, -c) wins.
func newDestinationStack(scope constructs.Construct, id string, props *awscdk.StackProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)
	key := fmt.Sprintf("availability-zones:account=%s:region=%s", *stack.Account(), *stack.Region())
	if stack.Node().TryGetContext(jsii.String(key)) == nil {
		stack.Node().SetContext(jsii.String(key), zones(*stack.Region()))
	}
	return stack
}

func zones(region string) []string { return []string{region + "a", region + "b"} }

// newFleet adds a VPC, a launch template of the copy and a small Auto
// Scaling group that waits for the copy. In your app, your own VPC and
// group take their place.
func newFleet(stack awscdk.Stack, ami amicopy.CopiedAmi, region string) {
	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: jsii.Strings(zones(region)...),
		NatGateways:       jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("Public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
		},
	})
	launchTemplate := ami.NewLaunchTemplate(stack, jsii.String("LaunchTemplate"), &amicopy.LaunchTemplateProps{
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

	// Why cdk-nag's findings on the example's VPC and group are accepted.
	nagsuppress.Add(vpc.Node().DefaultChild().(awscdk.CfnResource), "AwsSolutions-VPC7",
		"The example's VPC only hosts the demonstration Auto Scaling group (public subnets, no NAT, no inbound rule); "+
			"flow logs would add a log group, an IAM role and ingestion cost to every trial deploy. Production VPCs should enable them (vpc.AddFlowLog).")
	group := asg.Node().DefaultChild().(awscdk.CfnResource)
	nagsuppress.Add(group, "AwsSolutions-EC26",
		"The launch template from CopiedAmi.NewLaunchTemplate maps the root volume with Encrypted: true (and KmsKeyId: the destination key, unless it is aws/ebs), "+
			"through a property override that this rule does not read (test/nag_test.go TestNag checks the mapping).")
	nagsuppress.Add(group, "AwsSolutions-AS3",
		"The example's group has no operator to notify; its scaling events stay in the group's activity history. "+
			"Production groups should send notifications to their team's SNS topic.")
}

// context reads a cdk context value (-c key=value, cdk.json) as a string,
// or def when it is not set.
func context(scope constructs.IConstruct, key, def string) string {
	if v, ok := scope.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}

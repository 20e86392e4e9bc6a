package encryptedami_test

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
)

// A source account owns the key; a destination account's Auto Scaling group
// launches the AMI. `cdk deploy --all` deploys the key's stack first.
func ExampleNewCrossAccountEncryptedAmi() {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("us-east-1")},
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), &awskms.KeyProps{EnableKeyRotation: jsii.Bool(true)})

	destination := awscdk.NewStack(app, jsii.String("AmiDestination"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("222222222222"), Region: jsii.String("us-east-1")},
	})
	ami := encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key:     key,
		ImageId: jsii.String("ami-0123456789abcdef0"),
	})

	vpc := awsec2.NewVpc(destination, jsii.String("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: jsii.Strings("us-east-1a", "us-east-1b"),
		NatGateways:       jsii.Number(0),
	})
	asg := awsautoscaling.NewAutoScalingGroup(destination, jsii.String("Asg"), &awsautoscaling.AutoScalingGroupProps{
		Vpc: vpc,
		LaunchTemplate: ami.NewLaunchTemplate(destination, jsii.String("LaunchTemplate"), &encryptedami.LaunchTemplateProps{
			LaunchTemplate: &awsec2.LaunchTemplateProps{InstanceType: awsec2.NewInstanceType(jsii.String("t3.micro"))},
		}),
		MinCapacity: jsii.Number(1),
		MaxCapacity: jsii.Number(2),
	})
	ami.ConfigureAutoScalingGroup(asg)
	app.Synth(nil)

	// The source key's policy gets two statements for this destination, and
	// the destination stack the role and the grant the group waits for:
	for _, statement := range *ami.KeyPolicyStatements() {
		fmt.Println(*statement.Sid())
	}
	template := assertions.Template_FromStack(destination, nil)
	for _, typ := range []string{"Custom::AutoScalingServiceLinkedRole", "Custom::KmsGrant", "AWS::AutoScaling::AutoScalingGroup"} {
		fmt.Println(len(*template.FindResources(jsii.String(typ), nil)), typ)
	}
	// Output:
	// Allow use of the key by AWSServiceRoleForAutoScaling of 222222222222
	// Allow attachment of persistent resources by arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-AmiDestination-3874c726df
	// 1 Custom::AutoScalingServiceLinkedRole
	// 1 Custom::KmsGrant
	// 1 AWS::AutoScaling::AutoScalingGroup
}

// An AWS Organization's accounts launch the AMI: the key policy holds three
// statements however many accounts there are.
func ExampleNewOrganizationKeyAccess() {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("us-east-1")},
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), nil)
	access := encryptedami.NewOrganizationKeyAccess(source, jsii.String("OrganizationAccess"), &encryptedami.OrganizationKeyAccessProps{
		Key:    key,
		Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String("o-abcdefghij")},
	})
	var destinations []awscdk.Stack
	for _, account := range []string{"222222222222", "333333333333"} {
		destination := awscdk.NewStack(app, jsii.String("AmiDestination-"+account), &awscdk.StackProps{
			Env: &awscdk.Environment{Account: jsii.String(account), Region: jsii.String("us-east-1")},
		})
		encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key:                   key,
			ImageId:               jsii.String("ami-0123456789abcdef0"),
			OrganizationKeyAccess: access,
		})
		destinations = append(destinations, destination)
	}
	app.Synth(nil)

	// Next to the key's default statement, two that name no account; and a
	// grant in each destination:
	for _, statement := range *access.KeyPolicyStatements() {
		fmt.Println(*statement.Sid())
	}
	for _, destination := range destinations {
		grants := assertions.Template_FromStack(destination, nil).FindResources(jsii.String("Custom::KmsGrant"), nil)
		fmt.Println(*destination.StackName(), len(*grants), "Custom::KmsGrant")
	}
	// Output:
	// Allow use of the key by Auto Scaling service-linked roles of the organization
	// Allow attachment of persistent resources by grant creators of the organization
	// AmiDestination-222222222222 1 Custom::KmsGrant
	// AmiDestination-333333333333 1 Custom::KmsGrant
}

func ExampleNewAccountsKeyAccess() {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("us-east-1")},
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), nil)
	accounts := []string{"222222222222", "333333333333"} // hundreds fit: about 30 bytes each
	access := encryptedami.NewAccountsKeyAccess(source, jsii.String("DestinationAccounts"), &encryptedami.AccountsKeyAccessProps{
		Key:      key,
		Accounts: jsii.Strings(accounts...),
	})
	for _, account := range accounts {
		destination := awscdk.NewStack(app, jsii.String("AmiDestination-"+account), &awscdk.StackProps{
			Env: &awscdk.Environment{Account: jsii.String(account), Region: jsii.String("us-east-1")},
		})
		encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key:               key,
			ImageId:           jsii.String("ami-0123456789abcdef0"),
			AccountsKeyAccess: access, // a destination of an account not listed is a synth error
		})
	}
	app.Synth(nil)

	// Next to the key's default statement, two that list the accounts:
	for _, statement := range *access.KeyPolicyStatements() {
		fmt.Println(*statement.Sid())
	}
	fmt.Println(len(*assertions.Template_FromStack(source, nil).FindResources(jsii.String("AWS::KMS::Key"), nil)), "key,", len(*access.Accounts()), "accounts")
	// Output:
	// Allow use of the key by Auto Scaling service-linked roles of the accounts of DestinationAccounts
	// Allow attachment of persistent resources by grant creators of the accounts of DestinationAccounts
	// 1 key, 2 accounts
}

package amicopy_test

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/amicopy"
)

// A destination copies an AMI another account shared with it, encrypted
// with a key of its own; the source's key is imported by ARN, so its
// statements for the copier are returned (and printed in a synth warning).
func ExampleNewCopiedAmi() {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Fleet"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("222222222222"), Region: jsii.String("us-east-1")},
	})
	sourceKey := awskms.Key_FromKeyArn(stack, jsii.String("SourceKey"),
		jsii.String("arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"))
	ownKey := awskms.NewKey(stack, jsii.String("CopyKey"), &awskms.KeyProps{EnableKeyRotation: jsii.Bool(true)})

	ami := amicopy.NewCopiedAmi(stack, jsii.String("Copy"), &amicopy.CopiedAmiProps{
		SourceImageId:  jsii.String("ami-0123456789abcdef0"),
		SourceKey:      sourceKey,
		DestinationKey: ownKey,
	})
	// ami.NewLaunchTemplate(...) and ami.ConfigureAutoScalingGroup(asg)
	// launch the copy; ami.ImageId() is its id.
	fmt.Println(ami.SourceKeyPolicyManaged(), len(*ami.SourceKeyPolicyStatements()), *ami.CopierRoleArn())
	// Output:
	// false 2 arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-Fleet-791af8a6af
}

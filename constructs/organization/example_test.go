package organization_test

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/organization"
)

// Every account of two OUs, now and later, in two regions, gets the grant
// its Auto Scaling groups need on that region's key, from one StackSet in
// the management account.
func ExampleNewDeployment() {
	app := awscdk.NewApp(nil)
	management := awscdk.NewStack(app, jsii.String("AmiGrants"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("999999999999"), Region: jsii.String("us-east-1")},
	})
	organization.NewDeployment(management, jsii.String("AmiGrants"), &organization.DeploymentProps{
		Target: &encryptedami.OrganizationTarget{
			OrganizationId:        jsii.String("o-abcdefghij"),
			OrganizationalUnitIds: jsii.Strings("ou-ab12-11111111", "ou-ab12-22222222"),
		},
		Regions:           jsii.Strings("us-east-1", "eu-west-1"),
		MultiRegionKeyArn: jsii.String("arn:aws:kms:us-east-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab"),
	})
	app.Synth(nil)

	// The StackSet, and a stack per region that holds its handler code:
	for _, s := range *app.Node().Children() {
		if stack, ok := s.(awscdk.Stack); ok {
			sets := assertions.Template_FromStack(stack, nil).FindResources(jsii.String("AWS::CloudFormation::StackSet"), nil)
			fmt.Println(*stack.StackName(), *stack.Region(), len(*sets), "StackSet")
		}
	}
	// Output:
	// AmiGrants us-east-1 1 StackSet
	// AmiGrants-HandlerCode-us-east-1 us-east-1 0 StackSet
	// AmiGrants-HandlerCode-eu-west-1 eu-west-1 0 StackSet
}

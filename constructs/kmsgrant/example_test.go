package kmsgrant_test

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
)

// The AWS::KMS::Grant CloudFormation lacks: let a role decrypt with a key,
// only for one encryption context, and revoke the grant with the stack.
func ExampleNewGrant() {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Reports"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("222222222222"), Region: jsii.String("us-east-1")},
	})
	key := awskms.Key_FromKeyArn(stack, jsii.String("Key"),
		jsii.String("arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"))
	reader := awsiam.Role_FromRoleArn(stack, jsii.String("Reader"),
		jsii.String("arn:aws:iam::222222222222:role/report-reader"), nil)

	grant := kmsgrant.NewGrant(stack, jsii.String("ReaderGrant"), &kmsgrant.GrantProps{
		Key:                     key,
		Grantee:                 reader,
		Operations:              jsii.Strings("Decrypt", "DescribeKey"),
		EncryptionContextSubset: &map[string]*string{"project": jsii.String("reports")},
	})
	awscdk.NewCfnOutput(stack, jsii.String("GrantId"), &awscdk.CfnOutputProps{Value: grant.GrantId()})
	app.Synth(nil)

	// The stack holds the grant as a Custom::KmsGrant:
	template := assertions.Template_FromStack(stack, nil)
	for _, r := range *template.FindResources(jsii.String("Custom::KmsGrant"), nil) {
		props := (*r)["Properties"].(map[string]interface{})
		fmt.Println(props["GranteePrincipal"], props["Operations"], props["EncryptionContextSubset"])
	}
	// The key is of another account and imported, so its policy is not
	// this app's to edit: a synth warning prints the statement to add
	// there, which names the stack's grant handler role.
	fmt.Println(grant.KeyPolicyManaged(), len(*grant.KeyPolicyStatements()), *grant.HandlerRoleArn())
	// Output:
	// arn:aws:iam::222222222222:role/report-reader [Decrypt DescribeKey] map[project:reports]
	// false 1 arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-Reports-d2f7cfc298
}

package keypolicy_test

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/keypolicy"
)

// Keep one statement in the policy of a key that an image pipeline created
// outside this app. Statements of other owners stay as they are; deleting
// the stack removes only this Sid, which ends with the stack's mark.
func ExampleNewManagedStatements() {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("us-east-1")},
	})
	key := awskms.Key_FromKeyArn(source, jsii.String("PipelineKey"),
		jsii.String("arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"))
	statements := keypolicy.NewManagedStatements(source, jsii.String("AuditorAccess"), &keypolicy.ManagedStatementsProps{
		Key: key,
		Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("Allow the audit account to describe the key"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewAccountPrincipal(jsii.String("333333333333"))},
			Actions:    jsii.Strings("kms:DescribeKey"),
			Resources:  jsii.Strings("*"),
		})},
	})
	app.Synth(nil)

	// One custom resource keeps the statement in that key's policy:
	template := assertions.Template_FromStack(source, nil)
	for _, r := range *template.FindResources(jsii.String("Custom::KmsKeyPolicyStatements"), nil) {
		fmt.Println((*r)["Properties"].(map[string]interface{})["KeyArn"])
	}
	fmt.Println(*(*statements.Sids())[0])
	// Output:
	// arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab
	// Allow the audit account to describe the key [crossaccountami 8b7c4c92]
}

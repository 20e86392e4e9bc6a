package autoscalingrole_test

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/autoscalingrole"
)

// Make sure the account's custom-suffix Auto Scaling role exists before
// something (a KMS grant) names it. The role is never deleted.
func ExampleNewServiceLinkedRole() {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Fleet"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("222222222222"), Region: jsii.String("us-east-1")},
	})
	role := autoscalingrole.NewServiceLinkedRole(stack, jsii.String("AutoScalingRole"), &autoscalingrole.ServiceLinkedRoleProps{
		CustomSuffix: jsii.String("fleet"),
	})
	awscdk.NewCfnOutput(stack, jsii.String("RoleArn"), &awscdk.CfnOutputProps{Value: role.RoleArn()})
	app.Synth(nil)

	// One custom resource ensures the role; deleting the stack keeps it:
	template := assertions.Template_FromStack(stack, nil)
	for _, r := range *template.FindResources(jsii.String("Custom::AutoScalingServiceLinkedRole"), nil) {
		fmt.Println("CustomSuffix:", (*r)["Properties"].(map[string]interface{})["CustomSuffix"], "DeletionPolicy:", (*r)["DeletionPolicy"])
	}
	// Output: CustomSuffix: fleet DeletionPolicy: Retain
}

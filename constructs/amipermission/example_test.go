package amipermission_test

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/amipermission"
)

// Let two destination accounts launch an AMI of the source account, and
// copy it (create-volume permission on its snapshots). Deleting the stack
// removes exactly these permissions.
func ExampleNewLaunchPermission() {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("us-east-1")},
	})
	amipermission.NewLaunchPermission(source, jsii.String("Sharing"), &amipermission.LaunchPermissionProps{
		ImageId:        jsii.String("ami-0123456789abcdef0"),
		Accounts:       jsii.Strings("222222222222", "333333333333"),
		ShareSnapshots: jsii.Bool(true),
	})
	app.Synth(nil)

	// The source stack shares the AMI through one custom resource:
	template := assertions.Template_FromStack(source, nil)
	for _, r := range *template.FindResources(jsii.String("Custom::AmiLaunchPermission"), nil) {
		props := (*r)["Properties"].(map[string]interface{})
		fmt.Println(props["ImageId"], props["AccountIds"], "ShareSnapshots:", props["ShareSnapshots"])
	}
	// Output: ami-0123456789abcdef0 [222222222222 333333333333] ShareSnapshots: true
}

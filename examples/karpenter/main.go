// Command karpenter is an example app: a source account that owns an
// encrypted AMI's KMS key, and a destination account whose Karpenter
// controller (of an existing cluster) launches that AMI.
//
//	npx cdk synth                                   # placeholder accounts and role
//	npx cdk deploy --all -c sourceAccount=... -c destinationAccount=... -c controllerRoleArn=...
//
// Karpenter launches nodes with CreateFleet of type instant, as its
// controller's own IAM role: that role, imported by ARN, gets the grant
// (LauncherRoles); its own policies are not changed. No service-linked role
// is involved, so Launchers is empty.
//
// Karpenter's side, in the cluster (an EC2NodeClass; the stacks' outputs
// AmiId and KmsKeyArn give the values):
//
//	spec:
//	  amiSelectorTerms:
//	    - id: <AmiId>
//	  blockDeviceMappings:
//	    - deviceName: /dev/xvda
//	      ebs:
//	        encrypted: true
//	        kmsKeyID: <KmsKeyArn>
//
// It uses only the library's public API: copy main.go into a module of your own.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
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
// (AmiKarpenter) to app.
func build(app awscdk.App) {
	region := context(app, "region", "us-east-1")
	destinationAccount := context(app, "destinationAccount", "222222222222")
	imageID := context(app, "imageId", "ami-0123456789abcdef0")

	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(context(app, "sourceAccount", "111111111111")), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami Karpenter example: the source account's AMI key"),
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the shared AMI's snapshots"),
		EnableKeyRotation: jsii.Bool(true),
	})
	// The destination reads the key ARN across accounts, through a role
	// CDK adds to this stack: say why cdk-nag's finding on it is accepted.
	nagsuppress.CrossAccountReference(source)

	destination := awscdk.NewStack(app, jsii.String("AmiKarpenter"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(destinationAccount), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami Karpenter example: the controller role's grant on the shared AMI's key"),
	})
	// The controller's role of the existing cluster, by its literal ARN:
	// the key policy names it. Mutable false: this app adds nothing to it.
	controller := awsiam.Role_FromRoleArn(destination, jsii.String("KarpenterController"),
		jsii.String(context(app, "controllerRoleArn", "arn:aws:iam::"+destinationAccount+":role/KarpenterController-shared")),
		&awsiam.FromRoleArnOptions{Mutable: jsii.Bool(false)})
	encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key:           key,
		ImageId:       jsii.String(imageID),
		Launchers:     &[]encryptedami.LauncherKind{},
		LauncherRoles: &[]awsiam.IRole{controller},
	})
	awscdk.NewCfnOutput(destination, jsii.String("AmiId"), &awscdk.CfnOutputProps{
		Value: jsii.String(imageID), Description: jsii.String("EC2NodeClass amiSelectorTerms id"),
	})
	// The key's stack owns its ARN: the output is there.
	awscdk.NewCfnOutput(source, jsii.String("KmsKeyArn"), &awscdk.CfnOutputProps{
		Value: key.KeyArn(), Description: jsii.String("EC2NodeClass blockDeviceMappings ebs.kmsKeyID"),
	})
}

// context reads a cdk context value (-c key=value, cdk.json) as a string,
// or def when it is not set.
func context(scope constructs.IConstruct, key, def string) string {
	if v, ok := scope.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}

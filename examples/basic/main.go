// Command basic is the example app: a source account that owns an encrypted
// AMI's KMS key, and a destination account whose Auto Scaling group launches
// that AMI.
//
//	npx cdk synth                                   # placeholder accounts
//	npx cdk deploy --all -c sourceAccount=... -c destinationAccount=...
//
// Context keys (all optional): sourceAccount (default 111111111111),
// destinationAccount (default 222222222222), region (default us-east-1),
// imageId (default ami-0123456789abcdef0).
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
)

func main() {
	defer jsii.Close()
	defer func() {
		// A construct rejects a bad prop with a panic; show its message
		// without a Go stack trace. No cloud assembly has been written.
		if r := recover(); r != nil {
			fmt.Fprintln(os.Stderr, "synth failed:", r)
			jsii.Close()
			os.Exit(1)
		}
	}()
	app := awscdk.NewApp(nil)
	NewExample(app)
	app.Synth(nil)
}

// Stacks are the example's stacks.
type Stacks struct {
	Source, Destination awscdk.Stack
	Ami                 encryptedami.CrossAccountEncryptedAmi
}

// NewExample adds the example's stacks to app.
func NewExample(app awscdk.App) *Stacks {
	ctx := func(key, def string) string {
		if v, ok := app.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
			return v
		}
		return def
	}
	region := ctx("region", "us-east-1")
	sourceAccount := ctx("sourceAccount", "111111111111")
	destinationAccount := ctx("destinationAccount", "222222222222")

	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(sourceAccount), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami example: the source account's AMI key"),
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the shared AMI's snapshots"),
		EnableKeyRotation: jsii.Bool(true),
	})

	destination := awscdk.NewStack(app, jsii.String("AmiDestination"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(destinationAccount), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami example: the destination account's grant for Auto Scaling"),
	})
	ami := encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key:     key,
		ImageId: jsii.String(ctx("imageId", "ami-0123456789abcdef0")),
	})
	return &Stacks{Source: source, Destination: destination, Ami: ami}
}

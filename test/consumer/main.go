// Command consumer is a CDK app in a module of its own that uses
// crossaccountami as a dependency, as a user would after `go get` and
// `go mod tidy`. test/consumer_test.go synthesizes it; the output directory
// comes from CDK_OUTDIR.
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Consumer"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("us-east-1")},
	})
	key := awskms.NewKey(stack, jsii.String("Key"), nil)
	kmsgrant.NewGrant(stack, jsii.String("Grant"), &kmsgrant.GrantProps{
		Key:        key,
		Grantee:    awsiam.NewArnPrincipal(jsii.String("arn:aws:iam::111111111111:role/consumer")),
		Operations: jsii.Strings("Decrypt"),
	})
	app.Synth(nil)
}

// Command importedkey is the example app for an AMI and a KMS key that the
// app does not own: an image pipeline's key, created long ago outside CDK,
// imported by ARN. The source stack (in the key's account) keeps the
// destinations' statements in that key's policy and shares the AMI; each
// destination stack launches it. One `cdk deploy --all` deploys everything,
// the source stack first.
//
//	npx cdk synth --app 'go run ./examples/importedkey'
//	npx cdk deploy --all --app 'go run ./examples/importedkey' -c keyArn=arn:aws:kms:... -c imageId=ami-...
//
// Context keys (all optional): keyArn (default a placeholder key in account
// 111111111111, us-east-1; the source stack's account and region are the
// key's), imageId (default ami-0123456789abcdef0), destinationAccount
// (default 222222222222), destinations (default 1: destinationAccount, +1,
// ...), shareSnapshots (default false).
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/crossaccountami/crossaccountami/examples/importedkey/app"
	"github.com/crossaccountami/crossaccountami/examples/internal/run"
)

func main() {
	run.Synth(func(a awscdk.App) { app.New(a, app.ConfigFromContext(a)) })
}

// Command basic is the example app: a source account that owns an encrypted
// AMI's KMS key, and destination accounts whose Auto Scaling groups launch
// that AMI.
//
//	npx cdk synth                                   # placeholder accounts
//	npx cdk deploy --all -c sourceAccount=... -c destinationAccount=...
//
// Context keys (all optional): sourceAccount (default 111111111111),
// destinationAccount (default 222222222222), destinations (how many
// destination accounts, default 1: destinationAccount, +1, +2, ...), region
// (default us-east-1), imageId (default ami-0123456789abcdef0),
// organizationId (default none: per-destination statements; set it to use
// organization mode, whose key policy statements keep a constant size).
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/crossaccountami/crossaccountami/examples/basic/app"
	"github.com/crossaccountami/crossaccountami/examples/internal/run"
)

func main() {
	run.Synth(func(a awscdk.App) { app.New(a, app.ConfigFromContext(a)) })
}

// Command pipeline deploys the same job as examples/basic through a CDK
// Pipelines CodePipeline: a source-account stage (the key), then a wave of
// destination-account stages (grant and Auto Scaling group), one per account.
//
// It synthesizes offline: the CodeStar connection ARN is a placeholder
// (context connectionArn) and nothing needs a context lookup.
//
// Context keys (all optional): toolsAccount (the pipeline's account, default
// 000000000000), sourceAccount (111111111111), destinationAccount
// (222222222222), destinations (1), region (us-east-1), repository
// (example-org/crossaccountami), branch (main), connectionArn (a placeholder).
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/crossaccountami/crossaccountami/examples/internal/run"
	"github.com/crossaccountami/crossaccountami/examples/pipeline/app"
)

func main() {
	run.Synth(func(a awscdk.App) { app.New(a) })
}

// Command pipeline deploys the same job as examples/basic through a CDK
// Pipelines CodePipeline: a source-account stage (the key), then a wave of
// destination-account stages (grant and Auto Scaling group), one per account.
//
// It synthesizes offline: the CodeStar connection ARN is a placeholder
// (context connectionArn) and nothing needs a context lookup.
//
//	npx cdk synth --app 'go run ./examples/pipeline'
//
// Context keys (all optional): toolsAccount (the pipeline's account, default
// 000000000000), sourceAccount (111111111111), destinationAccount
// (222222222222), destinations (1), region (us-east-1), repository
// (example-org/crossaccountami), branch (main), connectionArn (a placeholder),
// imageId (ami-0123456789abcdef0).
//
// It uses only the library's public API: copy this directory (main.go and
// fleet.go) into a module of your own, and change the synth step's
// command to your app's path.
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/pipelines"
	"github.com/aws/aws-cdk-go/awscdk/v2/regioninfo"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
)

func main() {
	defer jsii.Close()
	// A construct rejects a bad prop or context value with a panic that
	// names it: print that as one line, without a Go stack trace, and exit
	// 1 before any cloud assembly is written.
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

// build adds the pipeline stack (AmiPipeline) and its stages to app.
func build(app awscdk.App) {
	region := context(app, "region", "us-east-1")
	env := func(account string) *awscdk.Environment {
		return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
	}
	accounts := destinationAccounts(app)

	pipelineStack := awscdk.NewStack(app, jsii.String("AmiPipeline"), &awscdk.StackProps{
		Env:         env(context(app, "toolsAccount", "000000000000")),
		Description: jsii.String("crossaccountami example: the pipeline that deploys the source and destination stages"),
	})
	pipeline := pipelines.NewCodePipeline(pipelineStack, jsii.String("Pipeline"), &pipelines.CodePipelineProps{
		CrossAccountKeys:  jsii.Bool(true),
		EnableKeyRotation: jsii.Bool(true),
		Synth: pipelines.NewShellStep(jsii.String("Synth"), &pipelines.ShellStepProps{
			Input: pipelines.CodePipelineSource_Connection(
				jsii.String(context(app, "repository", "example-org/crossaccountami")),
				jsii.String(context(app, "branch", "main")),
				&pipelines.ConnectionSourceOptions{
					ConnectionArn: jsii.String(context(app, "connectionArn",
						"arn:aws:codeconnections:us-east-1:000000000000:connection/00000000-0000-0000-0000-000000000000")),
				}),
			// This app's path in its repository.
			Commands: jsii.Strings("npm ci", "npx cdk synth --app 'go run ./examples/pipeline'"),
		}),
	})

	// The key's stage deploys first: the destinations' grants need its policy.
	source := awscdk.NewStage(app, jsii.String("KeyOwner"), &awscdk.StageProps{Env: env(context(app, "sourceAccount", "111111111111"))})
	sourceStack := awscdk.NewStack(source, jsii.String("AmiSource"), &awscdk.StackProps{
		Description: jsii.String("crossaccountami example: the source account's AMI key"),
		Synthesizer: synthesizer(region),
	})
	key := awskms.NewKey(sourceStack, jsii.String("AmiKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the shared AMI's snapshots"),
		EnableKeyRotation: jsii.Bool(true),
	})
	// The destinations read the key ARN across accounts, through a role
	// CDK adds to this stack: say why cdk-nag's finding on it is accepted.
	nagsuppress.CrossAccountReference(sourceStack)

	imageID := context(app, "imageId", "ami-0123456789abcdef0")
	destinations := make([]awscdk.Stage, len(accounts))
	for i, account := range accounts {
		destinations[i] = awscdk.NewStage(app, jsii.String("Destination-"+account), &awscdk.StageProps{Env: env(account)})
		stack := newDestinationStack(destinations[i], "AmiDestination", &awscdk.StackProps{
			Description: jsii.String("crossaccountami example: an Auto Scaling group that launches the shared, encrypted AMI"),
			Synthesizer: synthesizer(region),
		})
		ami := encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key:     key,
			ImageId: jsii.String(imageID),
		})
		newFleet(stack, ami, region)
		// pipelines synthesizes a stage as soon as it is added. A
		// destination's reference to the key (Fn::GetStackOutput) adds an
		// output to the source stack, so each destination is synthesized
		// before the source stage is; adding it later reuses that assembly.
		destinations[i].Synth(nil)
	}
	pipeline.AddStage(source, nil)
	wave := pipeline.AddWave(jsii.String("Destinations"), nil)
	for _, stage := range destinations {
		wave.AddStage(stage, nil)
	}
	// Build the pipeline now (instead of at synth) so that its generated
	// roles and bucket exist to carry their cdk-nag suppressions.
	pipeline.BuildPipeline()
	suppressPipelineFindings(pipeline)
}

// synthesizer is CDK's default synthesizer with the partition of region
// written out in the CloudFormation execution role, so the pipeline's deploy
// actions carry a literal role ARN rather than an Fn::Join over
// AWS::Partition (which cfn-lint rejects in action configurations, E3703).
func synthesizer(region string) awscdk.IStackSynthesizer {
	// aws-cdk-lib's region facts know each region's partition.
	partition := "aws"
	if p := regioninfo.RegionInfo_Get(jsii.String(region)).Partition(); p != nil {
		partition = *p
	}
	return awscdk.NewDefaultStackSynthesizer(&awscdk.DefaultStackSynthesizerProps{
		CloudFormationExecutionRole: jsii.String("arn:" + partition +
			":iam::${AWS::AccountId}:role/cdk-${Qualifier}-cfn-exec-role-${AWS::AccountId}-${AWS::Region}"),
	})
}

// suppressPipelineFindings records, on every resource of the pipeline
// construct whose generated resources they concern, why cdk-nag's findings
// are accepted. Each IAM5 finding is named (applies_to), so a new wildcard
// still fails.
func suppressPipelineFindings(pipeline pipelines.CodePipeline) {
	iam5 := "Generated by CDK Pipelines for its own roles: read/write of the pipeline's artifact bucket (objects under it) and its KMS key " +
		"(s3:GetObject*, s3:List*, kms:GenerateDataKey*, kms:ReEncrypt* ...), CodeBuild report groups and log groups of its own projects, " +
		"cloudformation:DescribeStacks and s3:ListBucket and codebuild build control on '*' (no resource-level scoping for these calls in the " +
		"pipeline's design), and sts:AssumeRole on the target accounts' roles limited by the condition iam:ResourceTag/aws-cdk:bootstrap-role."
	iam5AppliesTo := []interface{}{
		nagsuppress.Regex(`/^Action::s3:(GetBucket|GetObject|List|Abort|DeleteObject)\*$/`),
		nagsuppress.Regex(`/^Action::kms:(GenerateDataKey|ReEncrypt)\*$/`),
		nagsuppress.Regex(`/^Resource::<PipelineArtifactsBucket[0-9A-F]+\.Arn>\/\*$/`),
		nagsuppress.Regex(`/^Resource::arn:<AWS::Partition>:(codebuild|logs):[^:]+:[0-9]+:(report-group\/|log-group:\/aws\/codebuild\/)/`),
		nagsuppress.Regex(`/^Resource::arn:\*:iam::[0-9]+:role\/\*$/`),
		"Resource::*",
	}
	s1 := "The artifact bucket is CDK Pipelines' own: encrypted with the pipeline's KMS key (rotated), public access blocked, SSL enforced. " +
		"Server access logs would need a second bucket; CloudTrail data events are the audit source for it."
	// As cdk-nag's NagSuppressions.addResourceSuppressions(pipeline, ..., true):
	// every CloudFormation resource under the pipeline carries them.
	for _, c := range *pipeline.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		if *awscdk.CfnResource_IsCfnResource(c) {
			resource := c.(awscdk.CfnResource)
			nagsuppress.Add(resource, "AwsSolutions-IAM5", iam5, iam5AppliesTo...)
			nagsuppress.Add(resource, "AwsSolutions-S1", s1)
		}
	}
}

// context reads a cdk context value (-c key=value, cdk.json) as a string,
// or def when it is not set. JSON numbers and booleans in cdk.json read as
// their text.
func context(scope constructs.IConstruct, key, def string) string {
	switch v := scope.Node().TryGetContext(jsii.String(key)).(type) {
	case string:
		if v != "" {
			return v
		}
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return def
}

// destinationAccounts reads context destinations (how many, default 1)
// consecutive account ids from destinationAccount (default 222222222222).
// A bad value panics with the context key and the value, before any stack
// exists.
func destinationAccounts(scope constructs.IConstruct) []string {
	count := context(scope, "destinations", "1")
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		panic(fmt.Errorf("context destinations: expected a positive integer, got %q", count))
	}
	first := context(scope, "destinationAccount", "222222222222")
	base, err := strconv.ParseInt(first, 10, 64)
	if err != nil || len(first) != 12 {
		panic(fmt.Errorf("context destinationAccount: expected a 12-digit account id, got %q", first))
	}
	accounts := make([]string, n)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%012d", base+int64(i))
	}
	return accounts
}

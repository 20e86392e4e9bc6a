package organization

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
)

// codeKeyPrefix is where the handler objects sit in a code bucket: the
// bucket policy lets the organization read this prefix only.
const codeKeyPrefix = "handlers/"

var (
	stackSetNameRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{0,127}$`)
	bucketNameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`)
)

// validateBucketPrefix checks that <prefix>-<account>-<region> is a valid
// S3 bucket name for every region.
func validateBucketPrefix(prefix, account string, regions []string) error {
	for _, r := range regions {
		name := prefix + "-" + account + "-" + r
		if len(name) > 63 || !bucketNameRe.MatchString(name) {
			return fmt.Errorf("the bucket name %q (<prefix>-<account>-<region>) is not a valid S3 bucket name (3 to 63 lowercase letters, digits and hyphens); got prefix %q", name, prefix)
		}
	}
	return nil
}

// codeStackScope is where the code stacks go: next to the StackSet's stack,
// in its stage (an App is the stage of its top-level stacks).
func codeStackScope(stackSetStack awscdk.Stack) constructs.Construct {
	return awscdk.Stage_Of(stackSetStack)
}

// codeStackID is the construct id of a region's code stack.
func codeStackID(stackSetStack awscdk.Stack, region string) string {
	return *stackSetStack.Node().Id() + "-HandlerCode-" + region
}

type codeStackSpec struct {
	orgID, bucketName, account string
	handlerDir, handlerHash    string
}

// newCodeStack adds, next to the StackSet's stack, a stack in the deploying
// account and region that holds the region's code bucket and publishes the
// handler to it: the CDK asset (in that region's bootstrap bucket of the
// deploying account) copied as is by a BucketDeployment.
func newCodeStack(stackSetStack awscdk.Stack, region string, spec codeStackSpec) awscdk.Stack {
	stack := awscdk.NewStack(codeStackScope(stackSetStack), jsii.String(codeStackID(stackSetStack, region)), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(spec.account), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami: the grant handler's code, readable by the organization's accounts, for the StackSet of " + *stackSetStack.StackName()),
	})
	bucket := awss3.NewBucket(stack, jsii.String("Bucket"), &awss3.BucketProps{
		BucketName:        jsii.String(spec.bucketName),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		// The deployment below removes the object on delete, so the
		// bucket is empty and goes with its stack.
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	// Only principals of the organization, only the handler objects, only
	// reading. (EnforceSSL denies every request without TLS.)
	bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OrganizationReadsHandlerCode"),
		Effect:     awsiam.Effect_ALLOW,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("s3:GetObject"),
		Resources:  jsii.Strings(*bucket.ArnForObjects(jsii.String(codeKeyPrefix + "*"))),
		Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:PrincipalOrgID": spec.orgID}},
	}))
	nagsuppress.Add(bucket.Node().DefaultChild().(awscdk.CfnResource), "AwsSolutions-S1",
		"The bucket holds one content-addressed object, this library's handler, which the bucket policy lets only the organization's principals read; CloudTrail records the StackSet operations that read it. Access logs would need a second bucket per region for no added audit value.")

	asset := awss3assets.NewAsset(stack, jsii.String("HandlerAsset"), &awss3assets.AssetProps{
		Path:          jsii.String(spec.handlerDir),
		AssetHash:     jsii.String(spec.handlerHash),
		AssetHashType: awscdk.AssetHashType_CUSTOM,
	})
	awss3deployment.NewBucketDeployment(stack, jsii.String("Handler"), &awss3deployment.BucketDeploymentProps{
		Sources:              &[]awss3deployment.ISource{awss3deployment.Source_Bucket(asset.Bucket(), asset.S3ObjectKey())},
		DestinationBucket:    bucket,
		DestinationKeyPrefix: jsii.String(codeKeyPrefix),
		// Copy the zip as is: it is the Lambda code package.
		Extract:        jsii.Bool(false),
		Prune:          jsii.Bool(false),
		RetainOnDelete: jsii.Bool(false),
	})
	suppressBucketDeployment(stack)
	return stack
}

// bucketDeploymentID is the construct id of the function aws-cdk-lib's
// BucketDeployment shares within a stack (a SingletonFunction).
const bucketDeploymentID = "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C"

// suppressBucketDeployment records why cdk-nag's findings on aws-cdk-lib's
// BucketDeployment function are accepted: it is CDK's own, its role and
// runtime are CDK's choice.
func suppressBucketDeployment(stack awscdk.Stack) {
	fn := stack.Node().TryFindChild(jsii.String(bucketDeploymentID))
	if fn == nil {
		panic(fmt.Errorf("organization: aws-cdk-lib's BucketDeployment function %s is not in %s: its construct id changed", bucketDeploymentID, *stack.Node().Path()))
	}
	role := fn.Node().FindChild(jsii.String("ServiceRole"))
	nagsuppress.Add(role.Node().DefaultChild().(awscdk.CfnResource), "AwsSolutions-IAM4",
		"aws-cdk-lib's BucketDeployment function uses AWSLambdaBasicExecutionRole for its logs.", nagsuppress.Regex("/^Policy::arn:<AWS::Partition>:iam::aws:policy\\/service-role\\/AWSLambdaBasicExecutionRole$/"))
	nagsuppress.Add(role.Node().FindChild(jsii.String("DefaultPolicy")).Node().DefaultChild().(awscdk.CfnResource), "AwsSolutions-IAM5",
		"aws-cdk-lib's BucketDeployment reads the CDK asset (s3:GetObject*, s3:List* on the bootstrap bucket's objects) and writes the handler under its prefix of the code bucket; these are CDK's own grants.")
	nagsuppress.Add(fn.Node().DefaultChild().(awscdk.CfnResource), "AwsSolutions-L1",
		"The runtime of aws-cdk-lib's BucketDeployment function is chosen by aws-cdk-lib and moves with its releases.")
}

// Package sourcehandler wires the source-side custom resource handler of
// this library: real KMS and EC2 clients under a customresource.Router that
// serves Custom::KmsKeyPolicyStatements and Custom::AmiLaunchPermission. Its
// bootstrap package is the Lambda function the source-side constructs deploy
// in the account that owns the key and the AMI.
//
// It is a binary of its own, apart from the destination's grant handler, so
// that the EC2 SDK (a large package) stays out of the destination's zip. The
// plumbing is shared: lambdaenv (configuration, the SDK's
// AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL_EC2 overrides), awserr's retryer,
// customresource.
package sourcehandler

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/crossaccountami/crossaccountami/internal/amipermissionlifecycle"
	"github.com/crossaccountami/crossaccountami/internal/amipermissionspec"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/keypolicylifecycle"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
	"github.com/crossaccountami/crossaccountami/internal/lambdaenv"
)

// ResourceTypes are the types this handler serves.
var ResourceTypes = []string{keypolicyspec.ResourceType, amipermissionspec.ResourceType}

// Main runs the Lambda function. It never returns (lambda.Start does not).
func Main() {
	lambda.Start(mainRouter().LambdaHandler())
}

// mainRouter is the router Main serves: NewRouter over the configuration of
// the environment or, when that cannot be loaded, a router that still
// answers every event (FAILED, naming the error), so that CloudFormation
// does not wait an hour for a function that cannot start.
func mainRouter() *customresource.Router {
	cfg, err := lambdaenv.Load()
	if err != nil {
		return lambdaenv.FailingRouter(err, ResourceTypes...)
	}
	return NewRouter(cfg)
}

// KMS is what the source resources need of KMS; *kms.Client has it.
type KMS interface {
	keypolicylifecycle.KMS
	amipermissionlifecycle.KMS
}

// Register adds the source-side resource types to router.
func Register(router *customresource.Router, kmsClient KMS, ec2Client amipermissionlifecycle.EC2) {
	router.Handle(keypolicyspec.ResourceType, keypolicylifecycle.New(kmsClient))
	router.Handle(amipermissionspec.ResourceType, amipermissionlifecycle.New(ec2Client, kmsClient))
}

// NewRouter is the router Main serves, over KMS and EC2 clients made from
// cfg and the endpoint overrides of the environment.
func NewRouter(cfg aws.Config) *customresource.Router {
	kmsClient := kms.NewFromConfig(cfg, func(o *kms.Options) {
		if e := lambdaenv.Endpoint("KMS"); e != "" {
			o.BaseEndpoint = aws.String(e)
		}
	})
	ec2Client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if e := lambdaenv.Endpoint("EC2"); e != "" {
			o.BaseEndpoint = aws.String(e)
		}
	})
	router := customresource.NewRouter()
	Register(router, kmsClient, ec2Client)
	return router
}

// Package destinationhandler wires the custom resource handler of the
// destination side (its twin in the source account is sourcehandler): real
// KMS and IAM clients (with awserr's retryer) under a
// customresource.Router that serves Custom::KmsGrant,
// Custom::AutoScalingServiceLinkedRole and Custom::ServiceLinkedRole, the
// scheduled check of a grant (grantspec.HealEvent, the constant Input of an
// EventBridge rule), which writes its metric to stdout in CloudWatch's
// embedded metric format, and Custom::CrossAccountAmiCopy
// (copylifecycle.Machine, with EC2 and Lambda clients), which answers
// CloudFormation itself, possibly from a later invocation the function
// hands the request over to (RegisterCopy). Its
// bootstrap package is the Lambda function (provided.al2023, arm64) the
// constructs deploy; its role keeps the name GrantHandler-<stack>-<hash>,
// which deployed key policies name.
//
// The clients are configured from the Lambda environment (LoadConfig), the
// SDK's endpoint variables AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_IAM,
// AWS_ENDPOINT_URL_CLOUDFORMATION, AWS_ENDPOINT_URL_EC2 and
// AWS_ENDPOINT_URL_LAMBDA included: the tests point them at moto_server (and
// Lambda at a fake that queues the hand-overs). CloudFormation is asked only by the scheduled check, whether
// the grant's resource still exists (DescribeStackResource).
package destinationhandler

import (
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	lambdasvc "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/crossaccountami/crossaccountami/internal/copylifecycle"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/grantlifecycle"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/lambdaenv"
	"github.com/crossaccountami/crossaccountami/internal/slrlifecycle"
	"github.com/crossaccountami/crossaccountami/internal/slrspec"
)

// Main runs the Lambda function. It never returns (lambda.Start does not).
func Main() {
	lambda.Start(mainRouter().LambdaHandler())
}

// mainRouter is the router Main serves: NewRouter over the configuration of
// the environment or, when that cannot be loaded, a router that still
// answers every event (FAILED, naming the error), so that CloudFormation
// does not wait an hour for a function that cannot start.
func mainRouter() *customresource.Router {
	cfg, err := LoadConfig()
	if err != nil {
		router := lambdaenv.FailingRouter(err, append([]string{grantspec.ResourceType, copyspec.ResourceType}, slrspec.ResourceTypes...)...)
		router.HandleEvent(grantspec.HealEventKey, grantspec.HealEventKind, grantlifecycle.FailingHeal(nil, err))
		router.HandleSelfAnsweringEvent(ContinuationKey, copylifecycle.ContinuationKind, continuationEvent, failingContinuation(err))
		return router
	}
	return NewRouter(cfg)
}

// Config is what the handler needs to reach AWS.
type Config struct {
	AWS aws.Config
	// KMSEndpoint, IAMEndpoint, CloudFormationEndpoint, EC2Endpoint and
	// LambdaEndpoint override the services' endpoints when set.
	KMSEndpoint, IAMEndpoint, CloudFormationEndpoint, EC2Endpoint, LambdaEndpoint string
	// Role is the ARN of the function's role (grantspec.HandlerRoleEnv): the
	// retiring principal of the grants the handler owns.
	Role string
	// Metrics receives the scheduled check's metric lines. Nil: os.Stdout,
	// where Lambda collects them and CloudWatch extracts the metrics.
	Metrics io.Writer
}

// LoadConfig reads the configuration from the environment Lambda gives a
// function (lambdaenv.Load) and the SDK's standard endpoint overrides
// (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_IAM,
// AWS_ENDPOINT_URL_CLOUDFORMATION, AWS_ENDPOINT_URL_EC2,
// AWS_ENDPOINT_URL_LAMBDA, else AWS_ENDPOINT_URL; none when
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), and the function's role from
// grantspec.HandlerRoleEnv, which the construct sets.
func LoadConfig() (Config, error) {
	awsCfg, err := lambdaenv.Load()
	if err != nil {
		return Config{}, err
	}
	return Config{AWS: awsCfg, KMSEndpoint: lambdaenv.Endpoint("KMS"), IAMEndpoint: lambdaenv.Endpoint("IAM"),
		CloudFormationEndpoint: lambdaenv.Endpoint("CLOUDFORMATION"), EC2Endpoint: lambdaenv.Endpoint("EC2"), LambdaEndpoint: lambdaenv.Endpoint("LAMBDA"),
		Role: os.Getenv(grantspec.HandlerRoleEnv)}, nil
}

// Register adds this library's resource types and the scheduled check of a
// grant to router; role is the function's role ARN, stacks what the check
// asks whether a grant's resource still exists, metrics where the check
// writes its metric lines (nil: stdout). A new resource type is one more
// Handle call.
func Register(router *customresource.Router, kmsClient grantlifecycle.KMS, iamClient slrlifecycle.IAM, stacks grantlifecycle.CloudFormation, role string, metrics io.Writer) {
	grants := grantlifecycle.New(kmsClient, role)
	grants.Metrics = metrics
	grants.CloudFormation = stacks
	router.Handle(grantspec.ResourceType, grants)
	router.HandleEvent(grantspec.HealEventKey, grantspec.HealEventKind, grants.Heal)
	roles := slrlifecycle.New(iamClient)
	for _, t := range slrspec.ResourceTypes {
		router.Handle(t, roles)
	}
}

// NewRouter is the router Main serves, over KMS, IAM, CloudFormation, EC2
// and Lambda clients made from cfg.
func NewRouter(cfg Config) *customresource.Router {
	kmsClient := kms.NewFromConfig(cfg.AWS, func(o *kms.Options) {
		if cfg.KMSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.KMSEndpoint)
		}
	})
	iamClient := iam.NewFromConfig(cfg.AWS, func(o *iam.Options) {
		if cfg.IAMEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.IAMEndpoint)
		}
	})
	stacks := cloudformation.NewFromConfig(cfg.AWS, func(o *cloudformation.Options) {
		if cfg.CloudFormationEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.CloudFormationEndpoint)
		}
	})
	ec2Client := ec2.NewFromConfig(cfg.AWS, func(o *ec2.Options) {
		if cfg.EC2Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.EC2Endpoint)
		}
	})
	lambdaClient := lambdasvc.NewFromConfig(cfg.AWS, func(o *lambdasvc.Options) {
		if cfg.LambdaEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.LambdaEndpoint)
		}
	})
	router := customresource.NewRouter()
	Register(router, kmsClient, iamClient, stacks, cfg.Role, cfg.Metrics)
	RegisterCopy(router, newCopyMachine(ec2Client, lambdaClient, cfg.AWS.Region, router.Logger))
	return router
}

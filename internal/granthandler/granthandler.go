// Package granthandler wires the custom resource handler of this library:
// real KMS and IAM clients (with the awsretry retryer) under a
// customresource.Router that serves Custom::KmsGrant and
// Custom::AutoScalingServiceLinkedRole. Its bootstrap package is the Lambda
// function (provided.al2023, arm64) the constructs deploy.
//
// The clients come from config.LoadDefaultConfig, so the standard
// environment applies, AWS_ENDPOINT_URL_KMS and AWS_ENDPOINT_URL_IAM
// included (the tests point them at moto_server).
package granthandler

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/crossaccountami/crossaccountami/internal/awsretry"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/grantlifecycle"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/slrlifecycle"
	"github.com/crossaccountami/crossaccountami/internal/slrspec"
)

// Main runs the Lambda function. It never returns.
func Main() {
	router := customresource.NewRouter()
	cfg, err := LoadConfig(context.Background())
	if err != nil {
		// Still answer every event (FAILED), so that CloudFormation does not
		// wait an hour for a function that cannot start.
		router.Logger.Error("loading the AWS configuration", "error", err.Error())
		Register(router, broken{err}, broken{err})
	} else {
		Register(router, kms.NewFromConfig(cfg), iam.NewFromConfig(cfg))
	}
	lambda.Start(router.LambdaHandler())
}

// LoadConfig loads the default AWS configuration with the awsretry
// retryer, which reports retried errors to the router for timeout reasons.
func LoadConfig(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return awsretry.New(awsretry.Options{OnRetry: customresource.RecordRetry})
	}))
}

// Register adds this library's resource types to router. A new resource
// type is one more Handle call.
func Register(router *customresource.Router, kmsClient grantlifecycle.KMS, iamClient slrlifecycle.IAM) {
	router.Handle(grantspec.ResourceType, grantlifecycle.New(kmsClient))
	router.Handle(slrspec.ResourceType, slrlifecycle.New(iamClient))
}

// NewRouter is the router Main serves, over clients made from cfg.
func NewRouter(cfg aws.Config) *customresource.Router {
	router := customresource.NewRouter()
	Register(router, kms.NewFromConfig(cfg), iam.NewFromConfig(cfg))
	return router
}

// broken answers every call with the configuration error.
type broken struct{ err error }

func (b broken) fail() error {
	return fmt.Errorf("the handler could not load its AWS configuration: %v", b.err)
}

func (b broken) CreateGrant(context.Context, *kms.CreateGrantInput, ...func(*kms.Options)) (*kms.CreateGrantOutput, error) {
	return nil, b.fail()
}
func (b broken) ListGrants(context.Context, *kms.ListGrantsInput, ...func(*kms.Options)) (*kms.ListGrantsOutput, error) {
	return nil, b.fail()
}
func (b broken) RevokeGrant(context.Context, *kms.RevokeGrantInput, ...func(*kms.Options)) (*kms.RevokeGrantOutput, error) {
	return nil, b.fail()
}
func (b broken) RetireGrant(context.Context, *kms.RetireGrantInput, ...func(*kms.Options)) (*kms.RetireGrantOutput, error) {
	return nil, b.fail()
}
func (b broken) CreateServiceLinkedRole(context.Context, *iam.CreateServiceLinkedRoleInput, ...func(*iam.Options)) (*iam.CreateServiceLinkedRoleOutput, error) {
	return nil, b.fail()
}

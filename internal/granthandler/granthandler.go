// Package granthandler wires the custom resource handler of this library:
// real KMS and IAM clients (with the awsretry retryer) under a
// customresource.Router that serves Custom::KmsGrant and
// Custom::AutoScalingServiceLinkedRole. Its bootstrap package is the Lambda
// function (provided.al2023, arm64) the constructs deploy.
//
// The clients are configured from the Lambda environment (LoadConfig), the
// SDK's endpoint variables AWS_ENDPOINT_URL_KMS and AWS_ENDPOINT_URL_IAM
// included: the tests point them at moto_server.
package granthandler

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
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
	var router *customresource.Router
	cfg, err := LoadConfig()
	if err != nil {
		// Still answer every event (FAILED), so that CloudFormation does not
		// wait an hour for a function that cannot start.
		router = customresource.NewRouter()
		router.Logger.Error("loading the AWS configuration", "error", err.Error())
		Register(router, broken{err}, broken{err})
	} else {
		router = NewRouter(cfg)
	}
	lambda.Start(router.LambdaHandler())
}

// Config is what the handler needs to reach AWS.
type Config struct {
	AWS aws.Config
	// KMSEndpoint and IAMEndpoint override the services' endpoints when set.
	KMSEndpoint, IAMEndpoint string
}

// LoadConfig reads the configuration from the environment Lambda gives a
// function: the region (AWS_REGION, else AWS_DEFAULT_REGION), the function
// role's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN) and the SDK's standard endpoint overrides
// (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_IAM, else AWS_ENDPOINT_URL; none
// when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true). Clients get the awsretry
// retryer, which reports retried errors to the router for timeout reasons.
//
// config.LoadDefaultConfig reads the same variables and much more (shared
// files, SSO, IMDS, process credentials), none of which a Lambda function
// uses; it adds about 640 KB to the zipped bootstrap (3.76 MB instead of
// 3.12 MB for linux/arm64), over the 3.5 MB budget.
func LoadConfig() (Config, error) {
	region := firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	if region == "" {
		return Config{}, errors.New("AWS_REGION is not set (Lambda sets it for every function)")
	}
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return Config{}, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them to the function role's credentials)")
	}
	cfg := Config{AWS: aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN")),
		Retryer: func() aws.Retryer {
			return awsretry.New(awsretry.Options{OnRetry: customresource.RecordRetry})
		},
	}}
	if os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") != "true" {
		cfg.KMSEndpoint = firstEnv("AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL")
		cfg.IAMEndpoint = firstEnv("AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL")
	}
	return cfg, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// Register adds this library's resource types to router. A new resource
// type is one more Handle call.
func Register(router *customresource.Router, kmsClient grantlifecycle.KMS, iamClient slrlifecycle.IAM) {
	router.Handle(grantspec.ResourceType, grantlifecycle.New(kmsClient))
	router.Handle(slrspec.ResourceType, slrlifecycle.New(iamClient))
}

// NewRouter is the router Main serves, over KMS and IAM clients made from cfg.
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
	router := customresource.NewRouter()
	Register(router, kmsClient, iamClient)
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

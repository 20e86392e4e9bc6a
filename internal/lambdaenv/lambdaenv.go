// Package lambdaenv reads the AWS configuration that the Lambda environment
// gives a custom resource handler, and serves a customresource.Router (or,
// when the configuration cannot be read, a router that answers every event
// FAILED with the reason). Every handler binary of this library starts with it.
package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// Load reads the configuration from the environment Lambda gives a
// function: the region (AWS_REGION, else AWS_DEFAULT_REGION) and the
// function role's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN). Clients get awserr's retryer, which reports
// retried errors to the router for timeout reasons. Endpoint gives the
// endpoint overrides.
//
// config.LoadDefaultConfig reads the same variables and much more (shared
// files, SSO, IMDS, process credentials), none of which a Lambda function
// uses; it adds about 640 KB to a zipped bootstrap.
func Load() (aws.Config, error) {
	region := firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	if region == "" {
		return aws.Config{}, errors.New("AWS_REGION is not set (Lambda sets it for every function)")
	}
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return aws.Config{}, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them to the function role's credentials)")
	}
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN")),
		Retryer: func() aws.Retryer {
			return awserr.NewRetryer(awserr.RetryOptions{OnRetry: customresource.RecordRetry})
		},
	}, nil
}

// Endpoint is the SDK's standard endpoint override for a service
// (AWS_ENDPOINT_URL_<SERVICE>, such as AWS_ENDPOINT_URL_KMS, else
// AWS_ENDPOINT_URL), or "" when none is set or
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true. The tests point it at moto_server.
func Endpoint(service string) string {
	if os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") == "true" {
		return ""
	}
	return firstEnv("AWS_ENDPOINT_URL_"+strings.ToUpper(service), "AWS_ENDPOINT_URL")
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// FailingRouter answers every event of the given resource types FAILED with
// err: a function that cannot load its configuration must still answer, or
// CloudFormation waits an hour.
func FailingRouter(err error, resourceTypes ...string) *customresource.Router {
	router := customresource.NewRouter()
	router.Logger.Error("loading the AWS configuration", "error", err.Error())
	for _, t := range resourceTypes {
		router.Handle(t, failing{err})
	}
	return router
}

type failing struct{ err error }

func (f failing) fail() error {
	return fmt.Errorf("the handler could not load its AWS configuration: %v", f.err)
}

func (f failing) Create(context.Context, customresource.Request) (customresource.Result, error) {
	return customresource.Result{}, f.fail()
}

func (f failing) Update(context.Context, customresource.Request) (customresource.Result, error) {
	return customresource.Result{}, f.fail()
}

func (f failing) Delete(context.Context, customresource.Request) error { return f.fail() }

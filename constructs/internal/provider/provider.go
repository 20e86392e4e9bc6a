// Package provider holds the one Lambda function per stack that serves this
// library's destination-side custom resources (Custom::KmsGrant and
// Custom::AutoScalingServiceLinkedRole), and the role it runs as.
//
// The role has a fixed, deterministic name so that the source account's key
// policy can name it before it exists (through aws:PrincipalArn), without a
// reference from the source stack to the destination stack.
package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/constructs/internal/tokens"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
)

// ID is the construct id of the provider under its stack. It is part of the
// API: changing it would replace the function and its role on deploy.
const ID = "CrossAccountAmiGrantHandler"

// RolePath is the IAM path of every handler role, so that one ArnLike
// pattern (arn:aws:iam::*:role/crossaccountami/*) names them all in
// organization-wide key policies.
const RolePath = "/crossaccountami/"

// FunctionTimeout is the handler's Lambda timeout. A grant for a service-linked
// role created moments earlier fails with InvalidArnException until IAM
// propagates the role (seconds, sometimes minutes); the handler keeps
// retrying until shortly before this deadline and then answers FAILED itself.
// Ten minutes covers the slow cases and still answers CloudFormation long
// before its one-hour custom resource timeout.
const FunctionTimeout = 10

// ServiceTimeoutMinutes bounds how long CloudFormation waits for an answer
// if the function dies without one (out of memory, killed): the function's
// timeout plus room for Lambda's queueing, instead of CloudFormation's one hour.
const ServiceTimeoutMinutes = FunctionTimeout + 5

// Provider is the per-stack handler.
type Provider struct {
	Function awslambda.Function
	Role     awsiam.Role

	mu       sync.Mutex
	keyArns  map[string]bool
	slrGrant bool
}

// Of returns the handler of scope's stack, creating it on first use. Every
// grant in a stack shares it, however many there are.
func Of(scope constructs.IConstruct) *Provider {
	return registry.Get(scope, "provider", func() *Provider { return newProvider(awscdk.Stack_Of(scope)) })
}

func newProvider(stack awscdk.Stack) *Provider {
	scope := constructs.NewConstruct(stack, jsii.String(ID))
	name := RoleName(stack)
	role := awsiam.NewRole(scope, jsii.String("Role"), &awsiam.RoleProps{
		RoleName:    jsii.String(name),
		Path:        jsii.String(RolePath),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Creates and removes KMS grants for crossaccountami custom resources"),
	})
	logs := awslogs.NewLogGroup(scope, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_YEAR,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	fn := awslambda.NewFunction(scope, jsii.String("Function"), &awslambda.FunctionProps{
		Description:  jsii.String("crossaccountami: KMS grants and the Auto Scaling service-linked role"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         handlerCode(),
		Role:         role,
		Timeout:      awscdk.Duration_Minutes(jsii.Number(FunctionTimeout)),
		MemorySize:   jsii.Number(256),
		LogGroup:     logs,
		// CloudFormation invokes the function asynchronously. A retried
		// invocation would answer the same request twice; the handler
		// answers every request itself, failures included.
		RetryAttempts: jsii.Number(0),
	})
	return &Provider{Function: fn, Role: role, keyArns: map[string]bool{}}
}

var (
	assetOnce sync.Once
	assetDir  string
	assetHash string
)

// handlerCode builds the handler once per process (handlerbuild caches it
// across processes) and names the asset by the binary's SHA-256. The build
// is reproducible, so the hash is the same on every machine; giving it to
// CDK spares CDK from fingerprinting the binary again for every stack.
func handlerCode() awslambda.Code {
	assetOnce.Do(func() {
		assetDir = handlerbuild.MustBuild(handlerbuild.Options{Package: handlerbuild.GrantHandler})
		f, err := os.Open(filepath.Join(assetDir, handlerbuild.BinaryName))
		if err != nil {
			panic(fmt.Errorf("reading the built grant handler: %w", err))
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			panic(fmt.Errorf("hashing the built grant handler: %w", err))
		}
		assetHash = hex.EncodeToString(h.Sum(nil))
	})
	return awslambda.Code_FromAsset(jsii.String(assetDir), &awss3assets.AssetOptions{
		AssetHash:     jsii.String(assetHash),
		AssetHashType: awscdk.AssetHashType_CUSTOM,
	})
}

// RoleName is the deterministic name of the handler role of stack. Role names
// are global in an account, so it depends on the stack name and region; the
// hash keeps it unique when the stack name is truncated.
func RoleName(stack awscdk.Stack) string {
	stackName := *stack.StackName()
	region := *stack.Region()
	sum := sha256.Sum256([]byte(stackName + "\x00" + region))
	short := stackName
	if len(short) > 36 {
		short = short[:36]
	}
	return fmt.Sprintf("GrantHandler-%s-%s", short, hex.EncodeToString(sum[:])[:10])
}

// RoleArn is the ARN of the handler role of stack, known at synth time. It
// needs a concrete account and region on the stack.
func RoleArn(stack awscdk.Stack) (string, error) {
	account, region := stack.Account(), stack.Region()
	if tokens.IsUnresolved(account) || tokens.IsUnresolved(region) {
		return "", fmt.Errorf("stack %s has no concrete account and region (got account %q, region %q): set env on the stack so the source key policy can name the grant handler's role", *stack.Node().Path(), *account, *region)
	}
	return awsid.RoleARN(awsid.PartitionOfRegion(*region), *account, RolePath, RoleName(stack)), nil
}

// AllowGrantsOn lets the handler create, list, revoke (and retire) grants on
// one key, adding the key ARN to the role's policy once however many grants use it.
func (p *Provider) AllowGrantsOn(keyArn *string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	resolved := *keyArn
	if p.keyArns[resolved] {
		return
	}
	p.keyArns[resolved] = true
	p.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant", "kms:RetireGrant"),
		Resources: &[]*string{keyArn},
	}))
}

// AllowCreateAutoScalingSLR lets the handler create the Auto Scaling
// service-linked role, and no other.
func (p *Provider) AllowCreateAutoScalingSLR() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slrGrant {
		return
	}
	p.slrGrant = true
	stack := awscdk.Stack_Of(p.Role)
	p.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iam:CreateServiceLinkedRole"),
		Resources: jsii.Strings(fmt.Sprintf("arn:%s:iam::%s:role/aws-service-role/%s/AWSServiceRoleForAutoScaling*",
			*stack.Partition(), *stack.Account(), awsid.AutoScalingService)),
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"iam:AWSServiceName": awsid.AutoScalingService},
		},
	}))
}

// ServiceTimeout is the custom resources' ServiceTimeout.
func ServiceTimeout() awscdk.Duration {
	return awscdk.Duration_Minutes(jsii.Number(ServiceTimeoutMinutes))
}

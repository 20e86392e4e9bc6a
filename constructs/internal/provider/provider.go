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
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
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
	// RoleArn is the role's ARN: a literal when the stack's account and
	// region are known (the key policy names it), else the role's Arn
	// attribute. It is every owned grant's RetiringPrincipal, and the
	// handler learns it from grantspec.HandlerRoleEnv.
	RoleArn string

	env           *StackEnv
	mu            sync.Mutex
	slrGrant      bool
	retirableList bool
}

// Of returns the handler of scope's stack, creating it on first use. Every
// grant in a stack shares it, however many there are.
func Of(scope constructs.IConstruct) *Provider {
	return registry.Get(scope, "provider", newProvider)
}

func newProvider(stack awscdk.Stack) *Provider {
	env := EnvOf(stack)
	fn, role := newHandler(stack, handlerSpec{
		id:       ID,
		roleName: env.RoleName(), rolePath: RolePath,
		roleDescription: "Creates and retires KMS grants for crossaccountami custom resources",
		description:     "crossaccountami: KMS grants and the Auto Scaling service-linked role",
		pkg:             handlerbuild.GrantHandler,
	})
	roleArn, err := env.RoleArn()
	if err != nil {
		roleArn = *role.RoleArn()
	}
	fn.AddEnvironment(jsii.String(grantspec.HandlerRoleEnv), jsii.String(roleArn), nil)
	return &Provider{Function: fn, Role: role, RoleArn: roleArn, env: env}
}

// handlerSpec says what differs between this library's handlers.
type handlerSpec struct {
	id, roleName, rolePath, roleDescription, description, pkg string
}

// newHandler creates a handler's role, log group and Lambda function under
// a construct spec.id of stack.
func newHandler(stack awscdk.Stack, spec handlerSpec) (awslambda.Function, awsiam.Role) {
	scope := constructs.NewConstruct(stack, jsii.String(spec.id))
	role := awsiam.NewRole(scope, jsii.String("Role"), &awsiam.RoleProps{
		RoleName:    jsii.String(spec.roleName),
		Path:        jsii.String(spec.rolePath),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(spec.roleDescription),
	})
	logs := awslogs.NewLogGroup(scope, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_YEAR,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	// The role is ours, so Lambda's basic execution policy is not attached:
	// the function may write to its own log group and nowhere else.
	logs.GrantWrite(role)
	fn := awslambda.NewFunction(scope, jsii.String("Function"), &awslambda.FunctionProps{
		Description:  jsii.String(spec.description),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         handlerCode(spec.pkg),
		Role:         role,
		Timeout:      awscdk.Duration_Minutes(jsii.Number(FunctionTimeout)),
		MemorySize:   jsii.Number(256),
		LogGroup:     logs,
		// CloudFormation invokes the function asynchronously. A retried
		// invocation would answer the same request twice; the handler
		// answers every request itself, failures included.
		RetryAttempts: jsii.Number(0),
	})
	return fn, role
}

type builtAsset struct{ dir, hash string }

var (
	assetsMu sync.Mutex
	assets   = map[string]builtAsset{}
)

// handlerCode builds a handler once per process (handlerbuild caches it
// across processes) and names the asset by the binary's SHA-256. The build
// is reproducible, so the hash is the same on every machine; giving it to
// CDK spares CDK from fingerprinting the binary again for every stack.
func handlerCode(pkg string) awslambda.Code {
	assetsMu.Lock()
	a, ok := assets[pkg]
	if !ok {
		a.dir = handlerbuild.MustBuild(handlerbuild.Options{Package: pkg})
		a.hash = fileSHA256(filepath.Join(a.dir, handlerbuild.BinaryName))
		assets[pkg] = a
	}
	assetsMu.Unlock()
	return awslambda.Code_FromAsset(jsii.String(a.dir), &awss3assets.AssetOptions{
		AssetHash:     jsii.String(a.hash),
		AssetHashType: awscdk.AssetHashType_CUSTOM,
	})
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		panic(fmt.Errorf("reading the built handler: %w", err))
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		panic(fmt.Errorf("hashing the built handler %s: %w", path, err))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// StackEnv is what this library reads of a stack, read once per stack: each
// read is a round trip to the jsii runtime.
type StackEnv struct {
	Stack                       awscdk.Stack
	Path, Name, Account, Region string
	Partition                   string
	// Concrete is false when the account or the region is a token
	// (an environment-agnostic stack).
	Concrete bool
}

// EnvOf returns the StackEnv of scope's stack.
func EnvOf(scope constructs.IConstruct) *StackEnv {
	return registry.Get(scope, "env", func(stack awscdk.Stack) *StackEnv {
		e := &StackEnv{Stack: stack, Path: *stack.Node().Path(), Name: *stack.StackName(),
			Account: *stack.Account(), Region: *stack.Region()}
		e.Concrete = !tokens.IsUnresolved(&e.Account) && !tokens.IsUnresolved(&e.Region)
		if tokens.IsUnresolved(&e.Region) {
			e.Partition = *stack.Partition()
		} else {
			e.Partition = awsid.PartitionOfRegion(e.Region)
		}
		return e
	})
}

// RoleName is the deterministic name of the handler role of a stack. Role
// names are global in an account, so it depends on the stack name and
// region; the hash keeps it unique when the stack name is truncated.
func (e *StackEnv) RoleName() string { return e.roleName("GrantHandler") }

func (e *StackEnv) roleName(prefix string) string {
	sum := sha256.Sum256([]byte(e.Name + "\x00" + e.Region))
	short := e.Name
	if len(short) > 36 {
		short = short[:36]
	}
	return fmt.Sprintf("%s-%s-%s", prefix, short, hex.EncodeToString(sum[:])[:10])
}

// RoleArn is the ARN of the handler role of the stack, known at synth time.
// It needs a concrete account and region on the stack.
func (e *StackEnv) RoleArn() (string, error) {
	if !e.Concrete {
		return "", fmt.Errorf("stack %s has no concrete account and region (got account %q, region %q): set env on the stack so the source key policy can name the grant handler's role", e.Path, e.Account, e.Region)
	}
	return awsid.RoleARN(e.Partition, e.Account, RolePath, e.RoleName()), nil
}

// AllowGrant lets the handler create exactly the grant spec defines, in a
// policy of the resource's own: kms:CreateGrant on the key only with that
// grantee, within those operations and with that retiring principal (none
// when spec has none).
//
// A grant the handler owns (its RetiringPrincipal is RoleArn) needs nothing
// more on the key: KMS lets the retiring principal retire it, and the
// handler finds it with kms:ListRetirableGrants, an IAM permission of this
// account (AllowListRetirable). Any other grant is revoked, and looked up,
// through the key: kms:RevokeGrant and kms:ListGrants on the key, which the
// key policy must allow too.
func (p *Provider) AllowGrant(scope constructs.Construct, resource awscdk.CustomResource, spec grantspec.Properties) {
	equals := map[string]interface{}{"kms:GranteePrincipal": spec.GranteePrincipal}
	if spec.RetiringPrincipal != "" {
		equals["kms:RetiringPrincipal"] = spec.RetiringPrincipal
	}
	statements := []awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kms:CreateGrant"),
		Resources: jsii.Strings(spec.KeyArn),
		Conditions: &map[string]interface{}{
			"StringEquals":              equals,
			"ForAllValues:StringEquals": map[string]interface{}{"kms:GrantOperations": spec.Operations},
		},
	})}
	if spec.RetiringPrincipal == p.RoleArn {
		p.AllowListRetirable()
	} else {
		statements = append(statements, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("kms:ListGrants", "kms:RevokeGrant"),
			Resources: jsii.Strings(spec.KeyArn),
		}))
	}
	resourcePolicy(scope, p.Role, resource, statements...)
}

// AllowListRetirable lets the handler list the grants its own role may
// retire, in the role's default policy, once per stack. CloudFormation
// deletes that policy after every grant (each grant depends on the
// function, which depends on the policy), so cleanups can still list.
func (p *Provider) AllowListRetirable() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retirableList {
		return
	}
	p.retirableList = true
	p.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("kms:ListRetirableGrants"),
		Resources: jsii.Strings("*"),
	}))
	policy := p.Role.Node().FindChild(jsii.String("DefaultPolicy")).Node().DefaultChild().(awscdk.CfnResource)
	nagsuppress.Add(policy, "AwsSolutions-IAM5",
		"kms:ListRetirableGrants only: it lists the grants whose retiring principal is this role (the handler asks only for its own role) "+
			"and reveals nothing else; KMS authorizes it with an IAM policy of this account and the Service Authorization Reference gives it no resource type, so IAM requires Resource *",
		"Resource::*")
}

// resourcePolicy gives role the permissions one custom resource needs, in an
// AWS::IAM::Policy of its own (under scope) that the resource depends on,
// as AwsCustomResource does. CloudFormation then deletes the resource before
// its permissions: when a change removes the resource, or moves it to
// another key, the handler still may clean up. Statements shared in the
// role's default policy would go first, with the update, and the cleanup
// Delete would be denied.
func resourcePolicy(scope constructs.Construct, role awsiam.IRole, resource awscdk.CustomResource, statements ...awsiam.PolicyStatement) awsiam.Policy {
	policy := awsiam.NewPolicy(scope, jsii.String("HandlerPolicy"), &awsiam.PolicyProps{
		Roles:      &[]awsiam.IRole{role},
		Statements: &statements,
	})
	resource.Node().AddDependency(policy)
	return policy
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
	p.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("iam:CreateServiceLinkedRole"),
		Resources: jsii.Strings(awsid.RoleARN(p.env.Partition, p.env.Account,
			"/aws-service-role/"+awsid.AutoScalingService+"/", "AWSServiceRoleForAutoScaling*")),
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"iam:AWSServiceName": awsid.AutoScalingService},
		},
	}))
	// The statement above lives in the role's default policy.
	policy := p.Role.Node().FindChild(jsii.String("DefaultPolicy")).Node().DefaultChild().(awscdk.CfnResource)
	nagsuppress.Add(policy, "AwsSolutions-IAM5",
		"iam:CreateServiceLinkedRole only, only for the Auto Scaling service (condition iam:AWSServiceName = autoscaling.amazonaws.com), "+
			"only on role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling*: the wildcard covers the custom-suffix "+
			"roles (AWSServiceRoleForAutoScaling_<suffix>) of this account, which the handler may create and never deletes",
		nagsuppress.Regex(`/^Resource::arn:[^:]+:iam::[^:]+:role\/aws-service-role\/autoscaling\.amazonaws\.com\/AWSServiceRoleForAutoScaling\*$/`))
}

var serviceTimeout = sync.OnceValue(func() awscdk.Duration {
	return awscdk.Duration_Minutes(jsii.Number(ServiceTimeoutMinutes))
})

// ServiceTimeout is the custom resources' ServiceTimeout (one jsii value,
// shared by every resource).
func ServiceTimeout() awscdk.Duration { return serviceTimeout() }

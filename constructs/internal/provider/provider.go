// Package provider holds the one Lambda function per stack that serves this
// library's destination-side custom resources (Custom::KmsGrant,
// Custom::AutoScalingServiceLinkedRole and Custom::CrossAccountAmiCopy),
// and the role it runs as.
//
// The role has a fixed, deterministic name so that the source account's key
// policy can name it before it exists (through aws:PrincipalArn), without a
// reference from the source stack to the destination stack.
package provider

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild/prebuilt"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/names"
)

// ID is the construct id of the provider under its stack. It is part of the
// API: changing it would replace the function and its role on deploy.
const ID = "CrossAccountAmiGrantHandler"

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

// MaxEventAgeSeconds is the functions' MaximumEventAgeInSeconds: how long
// Lambda may keep an asynchronous event (CloudFormation's requests, the
// scheduled check's) before it drops it. Without it Lambda retries a
// throttled event, or one that met a Lambda 5xx, for up to 6 hours, and may
// deliver an event more than once ("How Lambda handles errors and retries
// with asynchronous invocation",
// https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html);
// MaximumRetryAttempts bounds only function errors.
//
// The number is chosen from CloudFormation's wait: it stops waiting
// ServiceTimeout after it sends the request ("Response timeout",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-custom-resources.html#response-timeout),
// and a request must never act after that. An event delivered at this age
// on a cold start (the Init phase takes at most 10 s, "Understanding the
// Lambda execution environment lifecycle",
// https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html)
// answers by 240 + 10 + 600 (FunctionTimeout) = 850 s of CloudFormation's
// 900: the minute kept in reserve covers the Init and the time between
// CloudFormation's clock and Lambda's queue. Lambda accepts 60 to 21600.
const MaxEventAgeSeconds = (ServiceTimeoutMinutes-FunctionTimeout)*60 - eventAgeReserveSeconds

// eventAgeReserveSeconds is the reserve MaxEventAgeSeconds keeps (see there).
const eventAgeReserveSeconds = 60

// Provider is the per-stack handler.
type Provider struct {
	*handler
	env *StackEnv
	has map[Need]bool // what the role's own policy allows already
	// slrServices are the services whose service-linked roles the role may
	// create (NeedSLR's statement), sorted; slrStatement is that statement.
	slrServices  []string
	slrStatement map[string]interface{}
	// slrSuppression is the cdk-nag suppression of slrStatement.
	slrSuppression map[string]interface{}
	// copierPolicy holds the statements every copy of the stack shares
	// (amipolicy.CopierSharedStatements), created with the first copy;
	// copies and grants count the resources with a policy of their own,
	// for the role's size check (roleSizeCheck).
	copierPolicy   awsiam.CfnPolicy
	copierPolicyAt int   // its index in inline
	copyPolicyAt   []int // the copies' own policies' indices in inline
	copies, grants int
}

// Need is a permission of the role's own policy that a caller will need.
type Need int

const (
	// NeedSLR: iam:CreateServiceLinkedRole for the Auto Scaling
	// service-linked role, and no other (AllowServiceLinkedRole adds the
	// other services a stack uses to the same statement).
	NeedSLR Need = iota
	// NeedListRetirable: kms:ListRetirableGrants, to find the grants the
	// handler's role may retire. CloudFormation deletes the role's own
	// policy after every grant (each grant depends on the function, which
	// depends on the policy), so cleanups can still list.
	NeedListRetirable
	// NeedDescribeOwnStack: cloudformation:DescribeStackResource on the
	// handler's own stack, for the scheduled check to ask whether a grant's
	// resource still exists before it re-creates the grant.
	NeedDescribeOwnStack
	// NeedCopyDescribe: ec2:DescribeImages and ec2:DescribeSnapshots, for
	// the copy handler (Custom::CrossAccountAmiCopy) to look up its copies.
	// The rest of what a copy needs is in the copy's own policy
	// (CopyResource).
	NeedCopyDescribe
)

// Of returns the handler of scope's stack, creating it on first use. Every
// grant in a stack shares it, however many there are. needs are written
// into the role's policy as it is created (or added to it later), which
// spares a jsii call per need compared with adding them one by one.
func Of(scope constructs.IConstruct, needs ...Need) *Provider {
	p := registry.Get(scope, "provider", func(stack awscdk.Stack) *Provider { return newProvider(stack, needs) })
	for _, n := range needs {
		p.allow(n)
	}
	return p
}

// allow adds what n needs to the role's policy, unless it has it.
func (p *Provider) allow(n Need) {
	if pn, ok := p.take(n); ok {
		p.addToRolePolicy(pn)
	}
}

// take returns the statement n needs, unless the role's policy has it.
func (p *Provider) take(n Need) (policyNeed, bool) {
	if p.has[n] {
		return policyNeed{}, false
	}
	p.has[n] = true
	switch n {
	case NeedSLR:
		return p.addSLRService(awsid.AutoScalingService)
	case NeedDescribeOwnStack:
		n := describeOwnStackNeed()
		// arn:<partition>:cloudformation:<region>:<account>:stack/<name>/*
		p.tokenChars[n.statement["Resource"].(string)] = len("arn::cloudformation:::stack//*") + maxPartitionChars + maxRegionChars + 12 + maxStackNameChars
		return n, true
	case NeedCopyDescribe:
		return copyDescribeNeed(), true
	}
	return listRetirableNeed, true
}

func newProvider(stack awscdk.Stack, needs []Need) *Provider {
	env := EnvOf(stack)
	p := &Provider{env: env, has: map[Need]bool{}}
	var initial []policyNeed
	for _, n := range needs {
		if pn, ok := p.take(n); ok {
			initial = append(initial, pn)
		}
	}
	p.handler = newHandler(env, handlerSpec{
		id:       ID,
		roleName: env.RoleName(), rolePath: names.GrantHandlerRolePath,
		roleDescription: "Creates and retires KMS grants for crossaccountami custom resources",
		description:     "crossaccountami: KMS grants and the Auto Scaling service-linked role",
		pkg:             handlerbuild.DestinationHandler,
		// The handler learns its own role from the environment: the
		// retiring principal of the grants it owns.
		environment: func(roleArn string) map[string]interface{} {
			return map[string]interface{}{grantspec.HandlerRoleEnv: roleArn}
		},
	}, initial...)
	p.noteTokens()
	p.policy.Node().AddValidation(&roleSizeCheck{p})
	return p
}

// RoleArn is the role's ARN: a literal when the stack's account and region
// are known (the key policy names it), else the role's Arn attribute. It is
// every owned grant's RetiringPrincipal, and the handler learns it from
// grantspec.HandlerRoleEnv.
func (p *Provider) RoleArn() string { return p.roleArn }

// FunctionArn is the handler function's ARN (every resource's ServiceToken).
func (p *Provider) FunctionArn() *string { return p.handler.ServiceToken }

// handlerSpec says what differs between this library's handlers.
type handlerSpec struct {
	id, roleName, rolePath, roleDescription, description, pkg string
	// environment, when set, gives the function's environment variables
	// from the role's ARN.
	environment func(roleArn string) map[string]interface{}
}

// handler is one Lambda function of this library in a stack: its role, the
// role's own policy, its log group, the function and its asynchronous
// invoke configuration.
//
// They are CloudFormation (L1) resources with their properties given in one
// call each: every jsii call is a round trip to the Node process, and an app
// with hundreds of destination stacks makes these calls for each. Each sits
// at the construct path its L2 construct gave it (Role/Resource,
// Role/DefaultPolicy/Resource, Logs/Resource, Function/Resource,
// Function/EventInvokeConfig/Resource), so CloudFormation sees the same
// logical ids as before: the role and its policies have fixed names, and a
// new logical id would make CloudFormation create a second resource of the
// same name before deleting the first.
type handler struct {
	// ServiceToken is the function's ARN, read once.
	ServiceToken *string
	// roleArn is the role's ARN: a literal when the stack's account and
	// region are known, else the role's Arn attribute.
	roleArn   string
	stackPath string
	roleRef   string
	policy    awsiam.CfnPolicy
	// invokeConfig bounds the age of the function's events; every custom
	// resource the function serves depends on it.
	invokeConfig awslambda.CfnEventInvokeConfig
	statements   []interface{}
	suppressions []map[string]interface{}
	// scope is the handler's construct (its id under the stack).
	scope constructs.Construct
	// inline are the statements of the role's other inline policies (the
	// resources' own, in the order they were made), and tokenChars the
	// most characters each deploy-time value in them can resolve to: what
	// the role's size check counts.
	inline     [][]interface{}
	tokenChars map[string]int
	mu         sync.Mutex
}

// newHandler creates a handler's resources under a construct spec.id of the
// stack. needs are statements (and their cdk-nag suppressions) the role's
// own policy gets from the start.
func newHandler(env *StackEnv, spec handlerSpec, needs ...policyNeed) *handler {
	scope := registry.Child(env.Stack, spec.id)
	at := registry.Child
	roleScope := at(scope, "Role")
	role := awsiam.NewCfnRole(roleScope, jsii.String("Resource"), &awsiam.CfnRoleProps{
		RoleName:    jsii.String(spec.roleName),
		Path:        jsii.String(spec.rolePath),
		Description: jsii.String(spec.roleDescription),
		AssumeRolePolicyDocument: map[string]interface{}{
			"Statement": []interface{}{map[string]interface{}{
				"Action": "sts:AssumeRole", "Effect": "Allow",
				"Principal": map[string]interface{}{"Service": "lambda.amazonaws.com"},
			}},
			"Version": "2012-10-17",
		},
	})
	logs := awslogs.NewCfnLogGroup(at(scope, "Logs"), jsii.String("Resource"), &awslogs.CfnLogGroupProps{RetentionInDays: jsii.Number(365)})
	logs.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	h := &handler{stackPath: env.Path, roleRef: *role.Ref(), scope: scope, tokenChars: map[string]int{}}
	// The role is ours, so Lambda's basic execution policy is not attached:
	// the function may write to its own log group and nowhere else.
	h.statements = []interface{}{map[string]interface{}{
		"Action": []interface{}{"logs:CreateLogStream", "logs:PutLogEvents"}, "Effect": "Allow",
		"Resource": *logs.AttrArn(),
	}}
	for _, n := range needs {
		h.statements = append(h.statements, n.statement)
		h.suppressions = append(h.suppressions, n.suppression)
	}
	h.policy = awsiam.NewCfnPolicy(at(roleScope, "DefaultPolicy"), jsii.String("Resource"), &awsiam.CfnPolicyProps{
		// The name CDK's Role gave its default policy: its logical id.
		PolicyName:     jsii.String(logicalID(spec.id, "Role", "DefaultPolicy", "Resource")),
		Roles:          jsii.Strings(h.roleRef),
		PolicyDocument: policyDocument(h.statements),
	})
	if len(h.suppressions) > 0 {
		nagsuppress.Set(h.policy, h.suppressions...)
	}
	fnScope := at(scope, "Function")
	var bucket, key *string
	if loc := codeLocationOf(env.Stack); loc.Bucket != nil {
		// A stack deployed where there is no CDK bootstrap (a StackSet's
		// instance) reads the code from a bucket the caller publishes it to.
		bucket, key = loc.Bucket, jsii.String(loc.Key)
	} else {
		bucket, key = handlerCode(fnScope, spec.pkg)
	}
	// With a known account and region the role's ARN is a literal: the
	// function still waits for the role, through its policy.
	if env.Concrete {
		h.roleArn = awsid.RoleARN(env.Partition, env.Account, spec.rolePath, spec.roleName)
	} else {
		h.roleArn = *role.AttrArn()
	}
	props := &awslambda.CfnFunctionProps{
		Description:   jsii.String(spec.description),
		Runtime:       jsii.String("provided.al2023"),
		Architectures: jsii.Strings("arm64"),
		Handler:       jsii.String("bootstrap"),
		Code:          &awslambda.CfnFunction_CodeProperty{S3Bucket: bucket, S3Key: key},
		Role:          jsii.String(h.roleArn),
		Timeout:       jsii.Number(FunctionTimeout * 60),
		MemorySize:    jsii.Number(256),
		LoggingConfig: &awslambda.CfnFunction_LoggingConfigProperty{LogGroup: logs.Ref()},
	}
	if spec.environment != nil {
		props.Environment = &awslambda.CfnFunction_EnvironmentProperty{Variables: spec.environment(h.roleArn)}
	}
	fn := awslambda.NewCfnFunction(fnScope, jsii.String("Resource"), props)
	// The function may run only once it may write its logs (and the
	// policy waits for the role).
	fn.AddResourceDependency(h.policy, nil)
	// CloudFormation invokes the function asynchronously. A retried
	// invocation would answer the same request twice; the handler answers
	// every request itself, failures included. An event older than
	// MaxEventAgeSeconds is dropped: CloudFormation would have stopped
	// waiting before its answer.
	h.invokeConfig = awslambda.NewCfnEventInvokeConfig(at(fnScope, "EventInvokeConfig"), jsii.String("Resource"), &awslambda.CfnEventInvokeConfigProps{
		FunctionName:             fn.Ref(),
		Qualifier:                jsii.String("$LATEST"),
		MaximumRetryAttempts:     jsii.Number(0),
		MaximumEventAgeInSeconds: jsii.Number(MaxEventAgeSeconds),
	})
	h.ServiceToken = fn.AttrArn()
	return h
}

// policyNeed is a statement of the role's own policy, with the cdk-nag
// suppression its wildcard needs.
type policyNeed struct {
	statement   map[string]interface{}
	suppression map[string]interface{}
}

// logicalID is the logical id CDK allocates to a resource at path (construct
// ids from the stack down), as aws-cdk-lib's makeUniqueId makes it: the ids
// without "Default", without a component the previous one ends with, and
// without "Resource", stripped to letters and digits and cut to 240
// characters; then the first 8 hex digits of the MD5 of the path without
// "Default", in upper case. Only names use it (the policies' names, which
// CDK derived from their logical ids); references go through CDK's tokens.
func logicalID(path ...string) string {
	var hashed []string
	for _, c := range path {
		if c != "Default" {
			hashed = append(hashed, c)
		}
	}
	var human []string
	for _, c := range hashed {
		if len(human) > 0 && strings.HasSuffix(human[len(human)-1], c) {
			continue
		}
		human = append(human, c)
	}
	var b strings.Builder
	for _, c := range human {
		if c != "Resource" {
			b.WriteString(nonAlnum.ReplaceAllString(c, ""))
		}
	}
	h := b.String()
	if len(h) > 240 {
		h = h[:240]
	}
	sum := md5.Sum([]byte(strings.Join(hashed, "/")))
	return h + strings.ToUpper(hex.EncodeToString(sum[:])[:8])
}

var nonAlnum = regexp.MustCompile(`[^A-Za-z0-9]`)

// maxPolicyName is IAM's limit on a policy name; CDK's Policy keeps the
// last characters of a longer logical id.
const maxPolicyName = 128

// policyName names a resource's own policy as CDK's Policy did, after its
// logical id, so that an existing policy keeps its name.
func (h *handler) policyName(policyScope constructs.Construct) *string {
	rel := strings.TrimPrefix(registry.Path(policyScope), h.stackPath+"/")
	name := logicalID(append(strings.Split(rel, "/"), "Resource")...)
	if len(name) > maxPolicyName {
		name = name[len(name)-maxPolicyName:]
	}
	return jsii.String(name)
}

func policyDocument(statements []interface{}) map[string]interface{} {
	return map[string]interface{}{"Statement": statements, "Version": "2012-10-17"}
}

// addToRolePolicy adds a statement to the role's own policy, with the
// cdk-nag suppression its wildcard needs. The whole statement list is
// written again (one call), as are the suppressions.
func (h *handler) addToRolePolicy(n policyNeed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.statements = append(h.statements, n.statement)
	h.policy.AddPropertyOverride(jsii.String("PolicyDocument.Statement"), h.statements)
	h.suppressions = append(h.suppressions, n.suppression)
	nagsuppress.Set(h.policy, h.suppressions...)
}

// rewriteRolePolicy writes the role's own statements again, after one of
// them changed, and their cdk-nag suppressions (which may have changed
// with it).
func (h *handler) rewriteRolePolicy() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.policy.AddPropertyOverride(jsii.String("PolicyDocument.Statement"), h.statements)
	if len(h.suppressions) > 0 {
		nagsuppress.Set(h.policy, h.suppressions...)
	}
}

// Resource creates, under scope with the id "Resource", a custom resource of
// resourceType that the handler serves, with the properties props.
// CloudFormation waits ServiceTimeout for its answer.
func (h *handler) Resource(scope constructs.Construct, resourceType string, props map[string]interface{}) awscdk.CustomResource {
	return h.resource(scope, resourceType, props, "")
}

// RetainedResource is Resource, kept when it leaves the stack.
func (h *handler) RetainedResource(scope constructs.Construct, resourceType string, props map[string]interface{}) awscdk.CustomResource {
	return h.resource(scope, resourceType, props, awscdk.RemovalPolicy_RETAIN)
}

func (h *handler) resource(scope constructs.Construct, resourceType string, props map[string]interface{}, removal awscdk.RemovalPolicy) awscdk.CustomResource {
	cr := awscdk.NewCustomResource(scope, jsii.String("Resource"), &awscdk.CustomResourceProps{
		ResourceType:   jsii.String(resourceType),
		ServiceToken:   h.ServiceToken,
		ServiceTimeout: ServiceTimeout(),
		Properties:     &props,
		RemovalPolicy:  removal,
	})
	// The ServiceToken orders the resource after the function only: without
	// this, CloudFormation may send a new stack's first requests before the
	// invoke configuration exists, with Lambda's defaults (6 hours, 2
	// retries). It also keeps the configuration until the resource's Delete.
	cr.Node().AddDependency(h.invokeConfig)
	return cr
}

// resourcePolicy gives the role the permissions one custom resource needs,
// in an AWS::IAM::Policy of its own (under scope) that the resource depends
// on, as AwsCustomResource does. CloudFormation then deletes the resource
// before its permissions: when a change removes the resource, or moves it to
// another key, the handler still may clean up. Statements shared in the
// role's own policy would go first, with the update, and the cleanup Delete
// would be denied.
func (h *handler) resourcePolicy(scope constructs.Construct, resource awscdk.CustomResource, statements []interface{}, deps ...constructs.IDependable) awsiam.CfnPolicy {
	policyScope := registry.Child(scope, "HandlerPolicy")
	policy := h.inlinePolicy(policyScope, statements)
	resource.Node().AddDependency(append([]constructs.IDependable{policy}, deps...)...)
	return policy
}

// inlinePolicy creates, under policyScope, an AWS::IAM::Policy of the
// role with statements, and records them for the role's size check.
func (h *handler) inlinePolicy(policyScope constructs.Construct, statements []interface{}) awsiam.CfnPolicy {
	policy := awsiam.NewCfnPolicy(policyScope, jsii.String("Resource"), &awsiam.CfnPolicyProps{
		PolicyName:     h.policyName(policyScope),
		Roles:          jsii.Strings(h.roleRef),
		PolicyDocument: policyDocument(statements),
	})
	h.mu.Lock()
	h.inline = append(h.inline, statements)
	h.mu.Unlock()
	return policy
}

// handlerCode builds a handler once per process (handlerbuild caches it
// across processes), stages it as a zip asset under scope (as a Function's
// Code does, at Function/Code) and returns its S3 location. The asset is
// named by the binary's SHA-256: the build is reproducible, so the hash is
// the same on every machine, and CDK need not fingerprint the binary again
// for every stack.
func handlerCode(scope constructs.Construct, pkg string) (bucket, key *string) {
	a := built(pkg)
	asset := awss3assets.NewAsset(scope, jsii.String("Code"), &awss3assets.AssetProps{
		Path:          jsii.String(a.dir),
		AssetHash:     jsii.String(a.hash),
		AssetHashType: awscdk.AssetHashType_CUSTOM,
	})
	return asset.S3BucketName(), asset.S3ObjectKey()
}

// CodeLocation is where a stack's handler code is read from instead of a
// CDK asset: Bucket (a name, which may hold tokens such as AWS::Region) and
// Key.
type CodeLocation struct {
	Bucket *string
	Key    string
}

// UseCode makes the handlers created later in stack read their code from
// loc instead of a CDK asset; the caller publishes BuiltHandler's zip there.
// A stack without CDK bootstrap (a StackSet's instance) has no asset bucket.
func UseCode(stack awscdk.Stack, loc CodeLocation) { *codeLocationOf(stack) = loc }

func codeLocationOf(stack awscdk.Stack) *CodeLocation {
	return registry.Get(stack, "code-location", func(awscdk.Stack) *CodeLocation { return &CodeLocation{} })
}

// DestinationHandler is the destination handler's build: a directory that
// holds only its bootstrap, and the bootstrap's SHA-256 (the asset hash).
func DestinationHandler() (dir, hash string) {
	a := built(handlerbuild.DestinationHandler)
	return a.dir, a.hash
}

type builtAsset struct{ dir, hash string }

var (
	assetsMu sync.Mutex
	assets   = map[string]builtAsset{}
)

// built builds pkg's handler once per process.
func built(pkg string) builtAsset {
	assetsMu.Lock()
	defer assetsMu.Unlock()
	a, ok := assets[pkg]
	if !ok {
		// The prebuilt binary, when it was built from this source, spares
		// a cold synth the compilation of the SDK for arm64.
		a.dir = handlerbuild.MustBuild(handlerbuild.Options{Package: pkg, Prebuilt: prebuilt.For(pkg, prebuilt.GOARCH)})
		a.hash = fileSHA256(filepath.Join(a.dir, handlerbuild.BinaryName))
		assets[pkg] = a
	}
	return a
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
	Node                        constructs.Node
	Path, Name, Account, Region string
	Partition                   string
	// Concrete is false when the account or the region is a token
	// (an environment-agnostic stack).
	Concrete bool
}

// EnvOf returns the StackEnv of scope's stack.
func EnvOf(scope constructs.IConstruct) *StackEnv {
	return registry.Get(scope, "env", func(stack awscdk.Stack) *StackEnv {
		node := stack.Node()
		e := &StackEnv{Stack: stack, Node: node, Path: *node.Path(), Name: *stack.StackName(),
			Account: *stack.Account(), Region: *stack.Region()}
		registry.RememberStack(stack, e.Path)
		e.Concrete = !jsiivalue.IsUnresolved(&e.Account) && !jsiivalue.IsUnresolved(&e.Region)
		if jsiivalue.IsUnresolved(&e.Region) {
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
func (e *StackEnv) RoleName() string { return e.roleName(names.GrantHandlerRolePrefix) }

func (e *StackEnv) roleName(prefix string) string {
	if jsiivalue.IsUnresolved(&e.Region) {
		// A stack deployed to many regions of one account (a StackSet's
		// instances): the region is known only at deploy time, and a role
		// name is global in the account, so the region is part of it.
		sum := sha256.Sum256([]byte(e.Name))
		return *awscdk.Fn_Join(jsii.String(""), jsii.Strings(prefix+"-", e.Region, "-"+hex.EncodeToString(sum[:])[:10]))
	}
	sum := sha256.Sum256([]byte(e.Name + "\x00" + e.Region))
	short := e.Name
	if len(short) > 36 {
		short = short[:36]
	}
	return fmt.Sprintf("%s-%s-%s", prefix, short, hex.EncodeToString(sum[:])[:10])
}

// Where is the stack's account and region as a message shows them (a
// token, in an environment-agnostic stack, in words).
func (e *StackEnv) Where() string {
	return fmt.Sprintf("account %s and region %s", jsiivalue.Show(e.Account), jsiivalue.Show(e.Region))
}

// RoleArn is the ARN of the handler role of the stack, known at synth time.
// It needs a concrete account and region on the stack.
func (e *StackEnv) RoleArn() (string, error) {
	if !e.Concrete {
		return "", fmt.Errorf("stack %s has no concrete account and region (got %s): set env on the stack so the source key policy can name the grant handler's role", e.Path, e.Where())
	}
	return awsid.RoleARN(e.Partition, e.Account, names.GrantHandlerRolePath, e.RoleName()), nil
}

// AllowGrant lets the handler create exactly the grant spec defines, in a
// policy of the resource's own: kms:CreateGrant on the key only with that
// grantee, within those operations and with that retiring principal (none
// when spec has none).
//
// A grant the handler owns (its RetiringPrincipal is RoleArn) needs nothing
// more on the key: KMS lets the retiring principal retire it, and the
// handler finds it with kms:ListRetirableGrants, an IAM permission of this
// account (NeedListRetirable). Any other grant is revoked, and looked up,
// through the key: kms:RevokeGrant and kms:ListGrants on the key, which the
// key policy must allow too.
// deps are more constructs the resource depends on (added in the same call).
func (p *Provider) AllowGrant(scope constructs.Construct, resource awscdk.CustomResource, spec grantspec.Properties, deps ...constructs.IDependable) {
	equals := map[string]interface{}{"kms:GranteePrincipal": spec.GranteePrincipal}
	if spec.RetiringPrincipal != "" {
		equals["kms:RetiringPrincipal"] = spec.RetiringPrincipal
	}
	statements := []interface{}{map[string]interface{}{
		"Action": "kms:CreateGrant", "Effect": "Allow", "Resource": spec.KeyArn,
		"Condition": map[string]interface{}{
			"StringEquals":              equals,
			"ForAllValues:StringEquals": map[string]interface{}{"kms:GrantOperations": spec.Operations},
		},
	}}
	if spec.RetiringPrincipal == p.roleArn {
		p.allow(NeedListRetirable)
	} else {
		statements = append(statements, map[string]interface{}{
			"Action": []interface{}{"kms:ListGrants", "kms:RevokeGrant"}, "Effect": "Allow", "Resource": spec.KeyArn,
		})
	}
	p.noteKeyArn(spec.KeyArn)
	p.grants++
	p.resourcePolicy(scope, resource, statements, deps...)
}

var listRetirableNeed = policyNeed{
	statement: map[string]interface{}{"Action": "kms:ListRetirableGrants", "Effect": "Allow", "Resource": "*"},
	suppression: nagsuppress.Rule("AwsSolutions-IAM5",
		"kms:ListRetirableGrants only: it lists the grants whose retiring principal is this role (the handler asks only for its own role) "+
			"and reveals nothing else; KMS authorizes it with an IAM policy of this account and the Service Authorization Reference gives it no resource type, so IAM requires Resource *",
		"Resource::*"),
}

// describeOwnStackNeed lets the handler describe the resources of its own
// stack, and of no other. The stack's ARN ends in an id CloudFormation picks
// (arn:...:stack/<name>/<uuid>, the Service Authorization Reference's
// "stack" resource type), hence the wildcard; the stack's name is the
// AWS::StackName pseudo parameter because a StackSet names its stacks itself.
// The same name's later stack (deleted, created again) matches too: it is
// this handler's stack all the same.
func describeOwnStackNeed() policyNeed {
	return policyNeed{
		statement: map[string]interface{}{
			"Action": "cloudformation:DescribeStackResource", "Effect": "Allow",
			"Resource": *awscdk.Fn_Join(jsii.String(""), jsii.Strings("arn:", *awscdk.Aws_PARTITION(), ":cloudformation:", *awscdk.Aws_REGION(), ":",
				*awscdk.Aws_ACCOUNT_ID(), ":stack/", *awscdk.Aws_STACK_NAME(), "/*")),
		},
		suppression: nagsuppress.Rule("AwsSolutions-IAM5",
			"cloudformation:DescribeStackResource only, only on this handler's own stack (arn:...:stack/<this stack's name>/*): the wildcard is the stack id CloudFormation "+
				"appends to the name. The scheduled check asks whether the grant's resource still exists, so that a late check never re-creates a grant after the resource's Delete",
			nagsuppress.Regex(`/^Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack\/<AWS::StackName>\/\*$/`)),
	}
}

// AllowServiceLinkedRole lets the handler create the service-linked role
// of service (a launcher.ServiceLinkedRoles key) too: the one
// iam:CreateServiceLinkedRole statement of the role's own policy then names
// exactly the services the stack uses, in iam:AWSServiceName and in its
// Resource. Auto Scaling is NeedSLR.
func (p *Provider) AllowServiceLinkedRole(service string) {
	if service == awsid.AutoScalingService {
		p.allow(NeedSLR)
		return
	}
	if pn, ok := p.addSLRService(service); ok {
		p.addToRolePolicy(pn)
	}
}

// addSLRService adds service to the iam:CreateServiceLinkedRole statement.
// It returns the statement when the policy has none yet (the caller places
// it); else it changes the statement in place and writes the policy again.
func (p *Provider) addSLRService(service string) (policyNeed, bool) {
	if slices.Contains(p.slrServices, service) {
		return policyNeed{}, false
	}
	p.slrServices = append(p.slrServices, service)
	sort.Strings(p.slrServices)
	pn := slrNeed(p.env, p.slrServices)
	if p.slrStatement == nil {
		p.slrStatement, p.slrSuppression = pn.statement, pn.suppression
		return pn, true
	}
	// In place: the role's policy and its cdk-nag metadata hold these maps.
	maps.Copy(p.slrStatement, pn.statement)
	maps.Copy(p.slrSuppression, pn.suppression)
	p.rewriteRolePolicy()
	return policyNeed{}, false
}

// slrNeed lets the handler create the service-linked roles of services,
// and no other: with Auto Scaling alone, the statement of the releases
// before other services (a string each); with more, lists.
func slrNeed(env *StackEnv, services []string) policyNeed {
	var resources []string
	for _, s := range services {
		if s == awsid.AutoScalingService {
			// The wildcard covers the custom-suffix roles.
			resources = append(resources, awsid.RoleARN(env.Partition, env.Account, "/aws-service-role/"+awsid.AutoScalingService+"/", "AWSServiceRoleForAutoScaling*"))
		} else {
			resources = append(resources, launcher.ServiceLinkedRoles[s].ARN(env.Partition, env.Account, ""))
		}
	}
	var resource, name interface{} = resources, services
	// The reason cdk-nag's IAM5 finding (the one wildcard resource) is
	// accepted; with Auto Scaling alone, the text of the releases before
	// other services, so their templates stay the same.
	const wildcard = "only on role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling*: the wildcard covers the custom-suffix " +
		"roles (AWSServiceRoleForAutoScaling_<suffix>) of this account, which the handler may create and never deletes"
	which := "iam:CreateServiceLinkedRole only, only for the services of this stack's launchers (condition iam:AWSServiceName = " + strings.Join(services, ", ") + "), each on its own role"
	if slices.Contains(services, awsid.AutoScalingService) {
		which += "; Auto Scaling's " + wildcard
	} else {
		which += ", no wildcard"
	}
	if len(services) == 1 {
		resource, name = resources[0], services[0]
		if services[0] == awsid.AutoScalingService {
			which = "iam:CreateServiceLinkedRole only, only for the Auto Scaling service (condition iam:AWSServiceName = autoscaling.amazonaws.com), " + wildcard
		}
	}
	return policyNeed{
		statement: map[string]interface{}{
			"Action": "iam:CreateServiceLinkedRole", "Effect": "Allow",
			"Resource": resource,
			"Condition": map[string]interface{}{
				"StringEquals": map[string]interface{}{"iam:AWSServiceName": name},
			},
		},
		suppression: nagsuppress.Rule("AwsSolutions-IAM5", which,
			// The partition and account are literals, or pseudo parameters
			// (<AWS::Partition>, <AWS::AccountId>) in a StackSet's template.
			nagsuppress.Regex(`/^Resource::arn:(<AWS::Partition>|[^:<]+):iam::(<AWS::AccountId>|[^:<]+):role\/aws-service-role\/autoscaling\.amazonaws\.com\/AWSServiceRoleForAutoScaling\*$/`)),
	}
}

var serviceTimeout = sync.OnceValue(func() awscdk.Duration {
	return awscdk.Duration_Minutes(jsii.Number(ServiceTimeoutMinutes))
})

// ServiceTimeout is the custom resources' ServiceTimeout (one jsii value,
// shared by every resource).
func ServiceTimeout() awscdk.Duration { return serviceTimeout() }

// Package organization deploys the destination side of crossaccountami (the
// Auto Scaling service-linked role, the grant handler, the KMS grant and
// its scheduled check) to every account of some organizational units, in
// several regions, now and later: one CloudFormation StackSet with
// service-managed permissions and automatic deployment, placed in the
// management account or a delegated administrator account. An account that
// joins an OU gets its grant with nobody running anything; one that leaves
// has its stack deleted, which retires its grant.
//
// The StackSet's template (the "inner" template) is synthesized from this
// library's constructs (autoscalingrole, kmsgrant) in an app of its own,
// with no CDK bootstrap reference: no bootstrap version parameter or rule,
// no asset parameter. Target accounts are not bootstrapped, so the
// handler's code cannot come from a CDK asset bucket. It comes from a
// bucket per region owned by the deploying account,
// <CodeBucketPrefix>-<account>-<region>, which the same `cdk deploy`
// creates and fills (a stack per region, "<stack>-HandlerCode-<region>").
// Its policy lets only principals of the organization (aws:PrincipalOrgID)
// s3:GetObject the handler objects, only over TLS; public access is
// blocked.
//
// How this differs from cdklabs' cdk-stacksets (not published for Go):
// that library publishes a StackSet stack's assets to buckets the user
// names and shares, and leaves their policies to the user. Here the only
// asset is this library's handler, so the buckets, their names, their
// organization-only policy and the object key (the handler's SHA-256, the
// same on every machine) are fixed by the construct, and one
// `cdk deploy --all` creates and publishes everything in order: the code
// stacks first, the StackSet after them.
//
// The runnable ExampleNewDeployment (go doc -all) deploys to two OUs in two
// regions; examples/organization in the repository is a whole app.
package organization

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudformation"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/autoscalingrole"
	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// CallAs says whose StackSet this is.
type CallAs string

const (
	// CallAs_SELF: the deploying account is the organization's management account.
	CallAs_SELF CallAs = "SELF"
	// CallAs_DELEGATED_ADMIN: the deploying account is a delegated
	// administrator for CloudFormation StackSets.
	CallAs_DELEGATED_ADMIN CallAs = "DELEGATED_ADMIN"
)

// DefaultHealSchedule is how often each destination checks its grant.
const DefaultHealSchedule = "rate(1 day)"

// DefaultCodeBucketPrefix starts the name of the handler code buckets.
const DefaultCodeBucketPrefix = "crossaccountami-handlers"

// MaxTemplateBodyBytes is CloudFormation's limit on a TemplateBody.
const MaxTemplateBodyBytes = 51200

// DeploymentProps configures an organization deployment.
type DeploymentProps struct {
	// The organization, o-xxxxxxxxxx: the only principals that may read the
	// handler code.
	OrganizationId *string `field:"required"`
	// The OUs (ou-xxxx-xxxxxxxx) or root (r-xxxx) whose accounts, now and
	// later, get the destination side. Child OUs are included.
	OrganizationalUnitIds *[]*string `field:"required"`
	// The regions of the Auto Scaling groups.
	Regions *[]*string `field:"required"`
	// The source key of each region (region -> key ARN), such as keys
	// imported from an image pipeline. The key account may be any account.
	// Each key's policy needs the organization's statements
	// (encryptedami.NewOrganizationKeyAccess). Not with MultiRegionKeyArn.
	// Default: - MultiRegionKeyArn.
	KeyArns *map[string]*string `field:"optional"`
	// A multi-region key (key/mrk-...) whose replicas, of the same id, exist
	// in every region of Regions. Not with KeyArns.
	// Default: - KeyArns.
	MultiRegionKeyArn *string `field:"optional"`
	// The suffix of a custom-suffix Auto Scaling service-linked role (list
	// it in OrganizationKeyAccessProps.ServiceLinkedRoleSuffixes too).
	// Default: - the default role, AWSServiceRoleForAutoScaling.
	ServiceLinkedRoleSuffix *string `field:"optional"`
	// The StackSet's name, unique in the deploying account and region.
	// Default: - "crossaccountami-" followed by this construct's id.
	StackSetName *string `field:"optional"`
	// Whose StackSet this is.
	// Default: CallAs_SELF.
	CallAs CallAs `field:"optional"`
	// The share of a region's accounts deployed at once, 1 to 100.
	// Default: 25.
	MaxConcurrentPercentage *float64 `field:"optional"`
	// The share of a region's accounts that may fail before the operation
	// stops in that region, 0 to 100.
	// Default: 10.
	FailureTolerancePercentage *float64 `field:"optional"`
	// The order of the regions; they are deployed in parallel, so the
	// order only decides which starts first.
	// Default: - the order of Regions.
	RegionOrder *[]*string `field:"optional"`
	// How often each destination checks that its grant exists and
	// re-creates it if it was revoked: an EventBridge schedule, such as
	// awsevents.Schedule_Rate(awscdk.Duration_Hours(jsii.Number(6))) or
	// awsevents.Schedule_Expression(jsii.String("rate(12 hours)")).
	// Default: - once a day, awsevents.Schedule_Expression of
	// DefaultHealSchedule ("rate(1 day)").
	HealSchedule awsevents.Schedule `field:"optional"`
	// Turn the scheduled check off.
	// Default: false.
	DisableHealing *bool `field:"optional"`
	// The start of the code buckets' names: <prefix>-<account>-<region>.
	// Default: "crossaccountami-handlers".
	CodeBucketPrefix *string `field:"optional"`
}

// Deployment is the StackSet and the code buckets it reads.
type Deployment interface {
	constructs.Construct
	// The StackSet.
	StackSet() awscloudformation.CfnStackSet
	// The template every account's stack is made of (JSON).
	TemplateBody() *string
	// The stacks of the deploying account that hold each region's code
	// bucket, by region.
	CodeStacks() *map[string]awscdk.Stack
}

type deployment struct {
	constructs.Construct
	stackSet   awscloudformation.CfnStackSet
	template   string
	codeStacks map[string]awscdk.Stack
}

func (d *deployment) StackSet() awscloudformation.CfnStackSet { return d.stackSet }
func (d *deployment) TemplateBody() *string                   { return jsii.String(d.template) }
func (d *deployment) CodeStacks() *map[string]awscdk.Stack {
	out := make(map[string]awscdk.Stack, len(d.codeStacks))
	for k, v := range d.codeStacks {
		out[k] = v
	}
	return &out
}

// NewDeployment places the StackSet in scope's stack (the management or a
// delegated administrator account, with a concrete env) and a code stack
// per region next to it. It panics with an error naming the construct path,
// the prop and the value when a prop is invalid, before it creates anything.
func NewDeployment(scope constructs.Construct, id *string, props *DeploymentProps) Deployment {
	fail := func(err error) {
		panic(fmt.Errorf("organization.NewDeployment %s/%s: %w", *scope.Node().Path(), *id, err))
	}
	if props == nil {
		fail(fmt.Errorf("props: required, got nil"))
	}
	stack := awscdk.Stack_Of(scope)
	in := planInput{
		orgID:             jsiivalue.String(props.OrganizationId),
		ouIDs:             jsiivalue.Strings(props.OrganizationalUnitIds),
		regions:           jsiivalue.Strings(props.Regions),
		regionOrder:       jsiivalue.Strings(props.RegionOrder),
		keyArns:           jsiivalue.StringMap(props.KeyArns),
		multiRegionKeyArn: jsiivalue.String(props.MultiRegionKeyArn),
		maxConcurrent:     props.MaxConcurrentPercentage,
		failureTolerance:  props.FailureTolerancePercentage,
		callAs:            string(props.CallAs),
		deployAccount:     *stack.Account(),
	}
	p, err := newPlan(in)
	if err != nil {
		fail(err)
	}
	suffix := jsiivalue.String(props.ServiceLinkedRoleSuffix)
	if props.ServiceLinkedRoleSuffix != nil {
		if err := awsid.ValidateSLRSuffix(suffix); err != nil {
			fail(fmt.Errorf("ServiceLinkedRoleSuffix: %v", err))
		}
	}
	name := "crossaccountami-" + *id
	if props.StackSetName != nil {
		name = *props.StackSetName
	}
	if !stackSetNameRe.MatchString(name) {
		fail(fmt.Errorf("StackSetName: expected a letter, then up to 127 letters, digits or hyphens, got %q", name))
	}
	prefix := DefaultCodeBucketPrefix
	if props.CodeBucketPrefix != nil {
		prefix = *props.CodeBucketPrefix
	}
	if err := validateBucketPrefix(prefix, in.deployAccount, p.regions); err != nil {
		fail(fmt.Errorf("CodeBucketPrefix: %v", err))
	}
	if existing := codeStackScope(stack).Node().TryFindChild(jsii.String(codeStackID(stack, p.regions[0]))); existing != nil {
		fail(fmt.Errorf("the stack %s has an organization.NewDeployment already (its code stacks, such as %s, are named after the stack): place one per stack", *stack.Node().Path(), *existing.Node().Path()))
	}
	schedule := DefaultHealSchedule
	if props.HealSchedule != nil {
		schedule = *props.HealSchedule.ExpressionString()
	}
	heal := props.DisableHealing == nil || !*props.DisableHealing

	// The handler is built once; its SHA-256 names the object in every
	// region's bucket.
	dir, hash := provider.DestinationHandler()
	objectKey := codeKeyPrefix + hash + ".zip"
	template, err := innerTemplate(innerSpec{
		name: name, keyArns: p.keyArns, slrSuffix: suffix,
		bucket: prefix + "-" + in.deployAccount + "-", objectKey: objectKey,
		healSchedule: schedule, heal: heal,
	})
	if err != nil {
		fail(err)
	}

	c := constructs.NewConstruct(scope, id)
	d := &deployment{Construct: c, template: template, codeStacks: map[string]awscdk.Stack{}}
	for _, region := range p.regions {
		cs := newCodeStack(stack, region, codeStackSpec{
			orgID: p.orgID, bucketName: prefix + "-" + in.deployAccount + "-" + region,
			handlerDir: dir, handlerHash: hash, account: in.deployAccount,
		})
		d.codeStacks[region] = cs
		stack.AddStackDependency(cs, jsii.String("the StackSet's instances read the handler code from this region's bucket"))
	}

	d.stackSet = awscloudformation.NewCfnStackSet(c, jsii.String("StackSet"), &awscloudformation.CfnStackSetProps{
		StackSetName:    jsii.String(name),
		Description:     jsii.String("crossaccountami: the Auto Scaling service-linked role, the KMS grant for it on the source key of the region, and the grant's scheduled check"),
		PermissionModel: jsii.String("SERVICE_MANAGED"),
		CallAs:          jsii.String(p.callAs),
		AutoDeployment: &awscloudformation.CfnStackSet_AutoDeploymentProperty{
			Enabled: jsii.Bool(true),
			// An account that leaves the OUs has its stack deleted: the
			// Delete retires its grant.
			RetainStacksOnAccountRemoval: jsii.Bool(false),
		},
		// Operations on the StackSet run concurrently where they can
		// instead of queueing one by one (AWS recommends it with
		// automatic deployment in large organizations).
		ManagedExecution: map[string]interface{}{"Active": true},
		Capabilities:     jsii.Strings("CAPABILITY_NAMED_IAM"),
		OperationPreferences: &awscloudformation.CfnStackSet_OperationPreferencesProperty{
			MaxConcurrentPercentage:    jsii.Number(p.maxConcurrent),
			FailureTolerancePercentage: jsii.Number(p.failureTolerance),
			RegionConcurrencyType:      jsii.String("PARALLEL"),
			RegionOrder:                jsii.Strings(p.regionOrder...),
		},
		StackInstancesGroup: []interface{}{&awscloudformation.CfnStackSet_StackInstancesProperty{
			DeploymentTargets: &awscloudformation.CfnStackSet_DeploymentTargetsProperty{
				OrganizationalUnitIds: jsii.Strings(p.ouIDs...),
			},
			Regions: jsii.Strings(p.regions...),
		}},
		TemplateBody: jsii.String(template),
	})
	return d
}

// innerSpec is what the StackSet's template is made of.
type innerSpec struct {
	name              string
	keyArns           map[string]string
	slrSuffix         string
	bucket, objectKey string // bucket: the name up to the region
	healSchedule      string
	heal              bool
}

// The inner stack's id is the StackSet's name: the handler role's name is
// made from it (and the region, at deploy time), so that two StackSets
// that reach one account and region make two roles, not one name twice.

// keyMapping is the inner template's mapping of region to key ARN.
const keyMapping = "SourceKeys"

// innerTemplate synthesizes the StackSet's template from this library's
// constructs, in an app of its own: a stack with no bootstrap reference
// (awscdk.BootstraplessSynthesizer, no asset), whose handler reads its code
// from the region's code bucket.
func innerTemplate(spec innerSpec) (string, error) {
	out, err := os.MkdirTemp("", "crossaccountami-stackset-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(out)
	app := awscdk.NewApp(&awscdk.AppProps{
		Outdir: jsii.String(out), AnalyticsReporting: jsii.Bool(false),
		// The CLI passes its settings to every app of the process through
		// CDK_CONTEXT_JSON; these must not change the template every
		// account gets (path metadata alone adds about 900 bytes towards
		// the TemplateBody limit). Post-CLI context overrides them.
		PostCliContext: &map[string]interface{}{
			"aws:cdk:enable-path-metadata":  false,
			"aws:cdk:enable-asset-metadata": false,
			"aws:cdk:version-reporting":     false,
		},
	})
	stack := awscdk.NewStack(app, jsii.String(spec.name), &awscdk.StackProps{
		Synthesizer: awscdk.NewBootstraplessSynthesizer(&awscdk.BootstraplessSynthesizerProps{}),
		Description: jsii.String("crossaccountami destination (StackSet " + spec.name + "): the Auto Scaling service-linked role and the KMS grant for it on this region's source key"),
	})
	provider.UseCode(stack, provider.CodeLocation{
		Bucket: awscdk.Fn_Join(jsii.String(""), jsii.Strings(spec.bucket, *awscdk.Aws_REGION())),
		Key:    spec.objectKey,
	})
	mapping := map[string]*map[string]interface{}{}
	for region, arn := range spec.keyArns {
		mapping[region] = &map[string]interface{}{"Arn": arn}
	}
	awscdk.NewCfnMapping(stack, jsii.String(keyMapping), &awscdk.CfnMappingProps{Mapping: &mapping})
	keyArn := awscdk.Fn_FindInMap(jsii.String(keyMapping), awscdk.Aws_REGION(), jsii.String("Arn"), nil)

	var slrProps *autoscalingrole.ServiceLinkedRoleProps
	if spec.slrSuffix != "" {
		slrProps = &autoscalingrole.ServiceLinkedRoleProps{CustomSuffix: jsii.String(spec.slrSuffix)}
	}
	slr := autoscalingrole.NewServiceLinkedRole(stack, jsii.String("ServiceLinkedRole"), slrProps)
	slrArn := awscdk.Fn_Join(jsii.String(""), jsii.Strings(
		"arn:", *awscdk.Aws_PARTITION(), ":iam::", *awscdk.Aws_ACCOUNT_ID(), ":role/aws-service-role/"+awsid.AutoScalingService+"/"+awsid.AutoScalingSLRName(spec.slrSuffix)))
	grantProps := &kmsgrant.GrantProps{
		Key:        awskms.Key_FromKeyArn(stack, jsii.String("SourceKey"), keyArn),
		Grantee:    awsiam.NewArnPrincipal(slrArn),
		Operations: jsii.Strings(grantspec.AutoScalingOperations...),
	}
	if spec.heal {
		grantProps.HealSchedule = awsevents.Schedule_Expression(jsii.String(spec.healSchedule))
	}
	grant := kmsgrant.NewGrant(stack, jsii.String("Grant"), grantProps)
	grant.Resource().Node().AddDependency(slr.Resource())

	asm := app.Synth(nil)
	tmpl := asm.GetStackArtifact(jsii.String(spec.name)).Template()
	body, err := json.Marshal(tmpl)
	if err != nil {
		return "", err
	}
	if len(body) > MaxTemplateBodyBytes {
		return "", fmt.Errorf("the StackSet's template is %d bytes, over CloudFormation's TemplateBody limit of %d", len(body), MaxTemplateBodyBytes)
	}
	if leftover := bootstrapReferences(string(body)); leftover != "" {
		return "", fmt.Errorf("the StackSet's template refers to the CDK bootstrap (%s): target accounts are not bootstrapped", leftover)
	}
	return string(body), nil
}

// bootstrapReferences names the first CDK bootstrap or asset reference in a
// template, or "".
func bootstrapReferences(template string) string {
	for _, ref := range []string{"BootstrapVersion", "cdk-hnb659fds", "AssetParameters", "CheckBootstrapVersion"} {
		if strings.Contains(template, ref) {
			return ref
		}
	}
	return ""
}

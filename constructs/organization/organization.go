// Package organization deploys the destination side of crossaccountami (the
// Auto Scaling service-linked role, the grant handler, the KMS grant and
// its scheduled check) to every account of some organizational units, in
// several regions, now and later: one CloudFormation StackSet with
// service-managed permissions and automatic deployment, placed in the
// management account or a delegated administrator account. An account that
// joins an OU gets its grant with nobody running anything; one that leaves
// has its stack deleted, which retires its grant. With Launchers and
// LauncherRoleNames, each account's stack ensures every launcher's
// service-linked role and grants each launching principal instead.
//
// The StackSet's template (the "inner" template) is synthesized from this
// library's constructs (autoscalingrole, kmsgrant) in an app of its own,
// with no CDK bootstrap reference: no bootstrap version parameter or rule,
// no asset parameter (its only parameters are the ARNs of keys made in
// this app, which the StackSet passes). Target accounts are not bootstrapped, so the
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
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudformation"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/slrres"
	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
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
	// The accounts that, now and later, get the destination side: those of
	// the OUs (ou-xxxx-xxxxxxxx) or root (r-xxxx) in OrganizationalUnitIds
	// (at least one) and of every OU below them. Pass the same value to the
	// keys' encryptedami.NewOrganizationKeyAccess. Its organization's
	// principals are the only ones that may read the handler code.
	Target *encryptedami.OrganizationTarget `field:"required"`
	// The regions of the Auto Scaling groups.
	Regions *[]*string `field:"required"`
	// The organization's statements on the source key of each region, made
	// in this app (encryptedami.NewOrganizationKeyAccess, one per region, on
	// a key of this app or on one imported by ARN): each region's grants go
	// on its key, and the StackSet's stack deploys after the stacks that
	// hold the statements. Their Target must be this Target. Not with
	// KeyArns or MultiRegionKeyArn.
	// Default: - KeyArns or MultiRegionKeyArn.
	KeyAccess *[]encryptedami.OrganizationKeyAccess `field:"optional"`
	// The source key of each region (region -> key ARN) when another app
	// keeps the organization's statements in its policy (deploy that app
	// first: nothing here orders this one after it). The key account may be
	// any account. Not with KeyAccess or MultiRegionKeyArn.
	// Default: - KeyAccess or MultiRegionKeyArn.
	KeyArns *map[string]*string `field:"optional"`
	// A multi-region key (key/mrk-...) whose replicas, of the same id, exist
	// in every region of Regions, their policies kept by another app. Not
	// with KeyAccess or KeyArns.
	// Default: - KeyAccess or KeyArns.
	MultiRegionKeyArn *string `field:"optional"`
	// The suffix of a custom-suffix Auto Scaling service-linked role (list
	// it in OrganizationKeyAccessProps.ServiceLinkedRoleSuffixes too). For
	// LauncherKind_AUTO_SCALING only: with Launchers that lack it, an error.
	// Default: - the default role, AWSServiceRoleForAutoScaling.
	ServiceLinkedRoleSuffix *string `field:"optional"`
	// The launch paths through a service-linked role that every target
	// account uses, as CrossAccountEncryptedAmiProps.Launchers: each
	// account's stack ensures the path's service-linked role (created when
	// missing, never deleted) and creates a grant for it. With KeyAccess,
	// list them in each OrganizationKeyAccessProps.Launchers too (an error
	// names a KeyAccess that lacks one).
	// Default: []encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING}
	// (the StackSet of the releases before launchers, unchanged).
	Launchers *[]encryptedami.LauncherKind `field:"optional"`
	// Launching roles present under one path and name in every target
	// account, "path/name" or "name" (such as
	// "karpenter/KarpenterController"), as
	// OrganizationKeyAccessProps.LauncherRoleNames (list them there too):
	// each account's stack creates a grant for its role of that name; the
	// role must exist before the stack, and its own policies are not
	// changed.
	// Default: - none.
	LauncherRoleNames *[]*string `field:"optional"`
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
// per region next to it. Given KeyAccess, that stack also deploys after
// the stacks that hold the organization's statements. It panics with an error naming the construct path,
// the prop and the value when a prop is invalid, before it creates anything.
func NewDeployment(scope constructs.Construct, id *string, props *DeploymentProps) Deployment {
	fail := func(err error) {
		panic(fmt.Errorf("organization.NewDeployment %s/%s: %w", *scope.Node().Path(), *id, err))
	}
	if props == nil {
		fail(fmt.Errorf("props: required, got nil"))
	}
	if props.Target == nil {
		fail(fmt.Errorf("Target: required, got nil"))
	}
	stack := awscdk.Stack_Of(scope)
	access, accessStacks := readKeyAccess(props.KeyAccess)
	in := planInput{
		target:            targetOf(props.Target),
		keyAccess:         access,
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
		if err := awsid.CheckSLRSuffixMistakes(suffix); err != nil {
			fail(fmt.Errorf("ServiceLinkedRoleSuffix: %v", err))
		}
	}
	launchers, err := resolveLaunchers(props.Launchers, jsiivalue.Strings(props.LauncherRoleNames), suffix)
	if err != nil {
		fail(err)
	}
	if err := checkCoverage(access, launchers); err != nil {
		fail(err)
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
		name: name, keyArns: p.keyArns, launchers: launchers,
		bucket: prefix + "-" + in.deployAccount + "-", objectKey: objectKey,
		healSchedule: schedule, heal: heal,
	})
	if err != nil {
		fail(err)
	}

	c := constructs.NewConstruct(scope, id)
	d := &deployment{Construct: c, template: template.body, codeStacks: map[string]awscdk.Stack{}}
	for _, s := range accessStacks {
		// A key of this app in another account is a weak reference
		// (Fn::GetStackOutput), which CDK does not order; an imported key
		// is no reference at all. The grants need the statements first.
		if s != stack {
			stack.AddStackDependency(s, jsii.String("the StackSet's grants need the organization's statements in the key policy"))
		}
	}
	for _, region := range p.regions {
		cs := newCodeStack(stack, region, codeStackSpec{
			orgID: p.orgID, bucketName: prefix + "-" + in.deployAccount + "-" + region,
			handlerDir: dir, handlerHash: hash, account: in.deployAccount,
		})
		d.codeStacks[region] = cs
		stack.AddStackDependency(cs, jsii.String("the StackSet's instances read the handler code from this region's bucket"))
	}

	description := "crossaccountami: the Auto Scaling service-linked role, the KMS grant for it on the source key of the region, and the grant's scheduled check"
	if !isDefault(launchers) {
		description = "crossaccountami: the launchers' service-linked roles, a KMS grant for each launcher on the source key of the region, and the grants' scheduled check"
	}
	d.stackSet = awscloudformation.NewCfnStackSet(c, jsii.String("StackSet"), &awscloudformation.CfnStackSetProps{
		StackSetName:    jsii.String(name),
		Description:     jsii.String(description),
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
		TemplateBody: jsii.String(template.body),
		Parameters:   template.parameters(p.keyArns),
	})
	return d
}

// targetOf reads t's jsii values.
func targetOf(t *encryptedami.OrganizationTarget) orgtarget.Target {
	return orgtarget.Target{OrganizationID: jsiivalue.String(t.OrganizationId), UnitIDs: jsiivalue.Strings(t.OrganizationalUnitIds)}
}

// readKeyAccess reads what the plan needs of each KeyAccess item, and the
// stacks that hold their statements.
func readKeyAccess(in *[]encryptedami.OrganizationKeyAccess) ([]accessKey, []awscdk.Stack) {
	if in == nil {
		return nil, nil
	}
	var out []accessKey
	var stacks []awscdk.Stack
	for _, a := range *in {
		if a == nil {
			continue
		}
		key := a.Key()
		arn := *key.KeyArn()
		region := ""
		if parsed, err := awsid.ParseKeyARN(arn); err == nil {
			region = parsed.Region
		} else if r := *awscdk.Stack_Of(key).Region(); jsiivalue.IsUnresolved(&arn) && !jsiivalue.IsUnresolved(&r) {
			region = r // a key of this app: its stack's
		}
		coverage, _ := a.(launcherCoverage)
		out = append(out, accessKey{path: *a.Node().Path(), keyArn: arn, region: region, target: targetOf(a.Target()), coverage: coverage})
		// Its parent, not a itself: a Go type embedding a construct cannot
		// be handed back to jsii (NOTES.md, "jsii and Go structs").
		stacks = append(stacks, awscdk.Stack_Of(a.Node().Scope()))
	}
	return out, stacks
}

// innerSpec is what the StackSet's template is made of.
type innerSpec struct {
	name              string
	keyArns           map[string]string
	launchers         []targetLauncher
	bucket, objectKey string // bucket: the name up to the region
	healSchedule      string
	heal              bool
}

// The inner stack's id is the StackSet's name: the handler role's name is
// made from it (and the region, at deploy time), so that two StackSets
// that reach one account and region make two roles, not one name twice.

// keyMapping is the inner template's mapping of region to key ARN.
const keyMapping = "SourceKeys"

// inner is the StackSet's template, and the parameters it declares for the
// keys of this app: the ARN of a key made in this app is known only at
// deploy time, so it cannot be written in the template (a literal, the
// same for every account); the StackSet passes it as a stack set
// parameter, which applies to every stack instance, those that automatic
// deployment adds later included.
type inner struct {
	body      string
	keyParams map[string]string // region -> parameter name, for the keys whose ARN is a token
}

// parameters are the StackSet's Parameters: each token key's ARN, as is.
func (t inner) parameters(keyArns map[string]string) interface{} {
	if len(t.keyParams) == 0 {
		return nil
	}
	var out []interface{}
	for _, region := range slices.Sorted(maps.Keys(t.keyParams)) {
		out = append(out, &awscloudformation.CfnStackSet_ParameterProperty{
			ParameterKey: jsii.String(t.keyParams[region]), ParameterValue: jsii.String(keyArns[region]),
		})
	}
	return out
}

// keyParameter is the name of the inner template's parameter for the key
// of region: SourceKeyArnUsEast1 for us-east-1.
func keyParameter(region string) string {
	var b strings.Builder
	b.WriteString("SourceKeyArn")
	for _, part := range strings.Split(region, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// innerTemplate synthesizes the StackSet's template from this library's
// constructs, in an app of its own: a stack with no bootstrap reference
// (awscdk.BootstraplessSynthesizer, no asset), whose handler reads its code
// from the region's code bucket.
func innerTemplate(spec innerSpec) (inner, error) {
	out, err := os.MkdirTemp("", "crossaccountami-stackset-")
	if err != nil {
		return inner{}, err
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
	description := "crossaccountami destination (StackSet " + spec.name + "): the Auto Scaling service-linked role and the KMS grant for it on this region's source key"
	if !isDefault(spec.launchers) {
		description = "crossaccountami destination (StackSet " + spec.name + "): the launchers' service-linked roles and a KMS grant for each launcher on this region's source key"
	}
	stack := awscdk.NewStack(app, jsii.String(spec.name), &awscdk.StackProps{
		Synthesizer: awscdk.NewBootstraplessSynthesizer(&awscdk.BootstraplessSynthesizerProps{}),
		Description: jsii.String(description),
	})
	provider.UseCode(stack, provider.CodeLocation{
		Bucket: awscdk.Fn_Join(jsii.String(""), jsii.Strings(spec.bucket, *awscdk.Aws_REGION())),
		Key:    spec.objectKey,
	})
	keyArn, keyParams := innerKeyArn(stack, spec.keyArns)

	key := awskms.Key_FromKeyArn(stack, jsii.String("SourceKey"), keyArn)
	for _, g := range innerGrantees(spec.launchers) {
		var slr constructs.IDependable
		if g.hasSLR {
			slr = slrres.New(stack, "ServiceLinkedRole"+g.id, g.slr, g.suffix)
		}
		// The grantee in each stack instance's account and partition.
		granteeArn := awscdk.Fn_Join(jsii.String(""), jsii.Strings(
			"arn:", *awscdk.Aws_PARTITION(), ":iam::", *awscdk.Aws_ACCOUNT_ID(), ":role"+g.path+g.name))
		grantProps := &kmsgrant.GrantProps{
			Key:        key,
			Grantee:    awsiam.NewArnPrincipal(granteeArn),
			Operations: jsii.Strings(grantspec.AutoScalingOperations...),
			// The OrganizationKeyAccess on each region's key lets every
			// target account's handler create this grant.
			KeyPolicyCovered: jsii.Bool(true),
		}
		if spec.heal {
			grantProps.HealSchedule = awsevents.Schedule_Expression(jsii.String(spec.healSchedule))
		}
		grant := kmsgrant.NewGrant(stack, jsii.String("Grant"+g.id), grantProps)
		if slr != nil {
			grant.Resource().Node().AddDependency(slr)
		}
	}

	asm := app.Synth(nil)
	tmpl := asm.GetStackArtifact(jsii.String(spec.name)).Template()
	body, err := json.Marshal(tmpl)
	if err != nil {
		return inner{}, err
	}
	if len(body) > MaxTemplateBodyBytes {
		return inner{}, fmt.Errorf("the StackSet's template is %d bytes, over CloudFormation's TemplateBody limit of %d", len(body), MaxTemplateBodyBytes)
	}
	if leftover := bootstrapReferences(string(body)); leftover != "" {
		return inner{}, fmt.Errorf("the StackSet's template refers to the CDK bootstrap (%s): target accounts are not bootstrapped", leftover)
	}
	return inner{body: string(body), keyParams: keyParams}, nil
}

// innerKeyArn is the key ARN of the stack's region in the inner template.
// With literal ARNs only, a mapping of region to ARN. With a key of this
// app (its ARN a token of the outer app, which the inner app cannot hold),
// a parameter for each such key, and the ARN chosen by region with Fn::If
// over every region, its leaves the literal ARNs and the parameters.
func innerKeyArn(stack awscdk.Stack, keyArns map[string]string) (*string, map[string]string) {
	regions := slices.Sorted(maps.Keys(keyArns))
	params := map[string]string{}
	for _, region := range regions {
		arn := keyArns[region]
		if jsiivalue.IsUnresolved(&arn) {
			params[region] = keyParameter(region)
		}
	}
	if len(params) == 0 {
		mapping := map[string]*map[string]interface{}{}
		for region, arn := range keyArns {
			mapping[region] = &map[string]interface{}{"Arn": arn}
		}
		awscdk.NewCfnMapping(stack, jsii.String(keyMapping), &awscdk.CfnMappingProps{Mapping: &mapping})
		return awscdk.Fn_FindInMap(jsii.String(keyMapping), awscdk.Aws_REGION(), jsii.String("Arn"), nil), nil
	}
	leaf := func(region string) interface{} {
		if name, ok := params[region]; ok {
			p := awscdk.NewCfnParameter(stack, jsii.String(name), &awscdk.CfnParameterProps{
				Type:           jsii.String("String"),
				Description:    jsii.String("The ARN of the source key in " + region + " (the StackSet passes it)"),
				AllowedPattern: jsii.String(`^arn:aws[a-z-]*:kms:` + region + `:[0-9]{12}:key/.+$`),
			})
			return p.ValueAsString()
		}
		return jsii.String(keyArns[region])
	}
	// The StackSet deploys only to these regions: the last is the chain's
	// final else.
	var arn interface{} = leaf(regions[len(regions)-1])
	for i := len(regions) - 2; i >= 0; i-- {
		region := regions[i]
		cond := "In" + strings.TrimPrefix(keyParameter(region), "SourceKeyArn")
		awscdk.NewCfnCondition(stack, jsii.String(cond), &awscdk.CfnConditionProps{
			Expression: awscdk.Fn_ConditionEquals(awscdk.Aws_REGION(), jsii.String(region)),
		})
		arn = awscdk.Fn_ConditionIf(jsii.String(cond), leaf(region), arn)
	}
	return awscdk.Token_AsString(arn, nil), params
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

// Package amicopy provides CopiedAmi: in the destination stack, a copy of
// an AMI that a source account shared, encrypted with a key of the
// destination (or the account's aws/ebs key). Launches then never touch
// the source key: every launcher of the destination (Auto Scaling, EKS,
// Karpenter, Fleet) works with the destination's own key, without any
// cross-account grant. AWS's troubleshooting page for
// "Client.InternalError: Client error on launch" names this fix: "copy and
// re-encrypt the snapshot with another customer managed key that belongs
// to the same account as the Auto Scaling group"
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ts-as-instancelaunchfailure.html).
//
// The copy is a Custom::CrossAccountAmiCopy served by
// the stack's destination handler, whose role (the copier) calls
// ec2:CopyImage and waits, across invocations, until the copy is
// available, up to ServiceTimeout (docs/copy-design.md). A new
// SourceImageId is a replacement: a new copy; CloudFormation's Delete of
// the old one, after the update succeeds, deregisters it and deletes its
// snapshots.
//
// The source's side, before the destination deploys:
//   - the source key's policy lets exactly the copier role read the
//     snapshots during the copy (DescribeKey, Decrypt, ReEncryptFrom, and
//     CreateGrant only with kms:GrantIsForAWSResource): placed
//     on a key of this app, returned by SourceKeyPolicyStatements and
//     printed in a synth warning for an imported key (KeyPolicyStyle_SCOPED);
//     or NewCopySourceKeyAccess, next to the key, covers the copiers of
//     listed accounts or of an organization with two statements of one
//     size (SourceKeyAccess links a copy to it);
//   - the AMI is shared with the destination account, and so are its
//     snapshots: "to copy an AMI that was shared with you from another
//     account, the owner of the source AMI must grant you read permissions
//     for the storage that backs the AMI" (Copy an AMI,
//     https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html).
//     amipermission.NewLaunchPermission with Accounts and ShareSnapshots
//     true, in the AMI's account, does both (examples/copy).
//
// The runnable ExampleNewCopiedAmi (go doc -all) copies an AMI shared by
// another account into a key of the destination.
//
// The source AMI must be in this stack's region: the copier may call
// ec2:CopyImage only on the images and snapshots of its own region, and a
// SourceKey known to be of another region is refused at synth
// ("SourceKey: the key is in region ..."). Copying from another region is
// not supported (the resource's SourceRegion property is reserved).
//
// The copy does not depend on the source after it exists: the source may
// remove the key policy statements and the launch permission then, and a
// copy cannot be revoked by the source.
package amicopy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keybudget"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/launchtemplate"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
)

// CopiedAmiProps configures the copy.
type CopiedAmiProps struct {
	// The shared AMI to copy, in this stack's region: ami- followed by 8 or
	// 17 hex digits. Changing it makes a new copy (a replacement).
	SourceImageId *string `field:"required"`
	// The source account's key that encrypts the AMI's snapshots: a key of
	// another stack of this app (its policy is then edited), or an imported
	// key (awskms.Key_FromKeyArn; the statements are then returned by
	// SourceKeyPolicyStatements and a synth warning prints them). Not an
	// alias. It must be in this stack's region.
	SourceKey awskms.IKey `field:"required"`
	// The key the copy is encrypted with: a key of this app in this stack's
	// account and region. Its policy gets statements that let the
	// account's launchers (DestinationKeyLaunchers, DestinationKeyLauncherRoles)
	// launch with it.
	// Default: - the account's default EBS key (aws/ebs, unless the account
	// changed its default), which every principal of the account may use
	// through EC2, and no other account.
	DestinationKey awskms.IKey `field:"optional"`
	// The launch paths of this account that launch the copy through a
	// service-linked role: the destination key's policy lets their roles
	// use it (an EKS managed node group launches with the default Auto
	// Scaling role). Only with DestinationKey.
	// Default: []encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING}.
	DestinationKeyLaunchers *[]encryptedami.LauncherKind `field:"optional"`
	// Roles of this account that launch the copy themselves (RunInstances,
	// CreateFleet type instant: Karpenter's controller, a custom-suffix Auto
	// Scaling role), by literal ARN: the destination key's policy lets them
	// use it. Only with DestinationKey.
	// Default: - none.
	DestinationKeyLauncherRoles *[]awsiam.IRole `field:"optional"`
	// The copy's name prefix; the handler appends - and 12 hex digits, so
	// that a replacement's copy and the old one have distinct names.
	// Changing it makes a new copy.
	// Default: - copy-of-<SourceImageId>.
	Name *string `field:"optional"`
	// The copy's description. Changing it makes a new copy.
	// Default: - none.
	Description *string `field:"optional"`
	// How long CloudFormation waits for the copy: 1 to 3600 seconds
	// (CloudFormation's limit for a custom resource; "Response timeout",
	// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-custom-resources.html#response-timeout).
	// A copy that is not available by then is removed, with its snapshots,
	// and the resource fails.
	// Default: 3600 seconds.
	ServiceTimeout awscdk.Duration `field:"optional"`
	// How the source key policy statements are scoped:
	// KeyPolicyStyle_SCOPED (two statements for this destination: its
	// account as principal, the copier role pinned by aws:PrincipalArn),
	// KeyPolicyStyle_ACCOUNTS or KeyPolicyStyle_ORGANIZATION (no statement
	// for this destination: a CopySourceKeyAccess on the key's side covers
	// it; required as SourceKeyAccess for a key of this app).
	// KeyPolicyStyle_SEED_ARTICLE is not implemented for copies.
	// Default: - the style of SourceKeyAccess when it is set, else
	// KeyPolicyStyle_SCOPED.
	KeyPolicyStyle encryptedami.KeyPolicyStyle `field:"optional"`
	// The CopySourceKeyAccess placed on SourceKey that covers this
	// destination (its Accounts list this stack's account, or its
	// organization holds it): the typed link KeyPolicyStyle_ACCOUNTS and
	// KeyPolicyStyle_ORGANIZATION need for a key of this app.
	// Default: - none.
	SourceKeyAccess CopySourceKeyAccess `field:"optional"`
	// The source key's policy already lets the copier role read the
	// snapshots (its owner applied SourceKeyPolicyStatements, or a
	// statement of wider scope covers it): no statement is placed and no
	// warning printed.
	// Default: false.
	KeyPolicyCovered *bool `field:"optional"`
}

// LaunchTemplateProps configures CopiedAmi.NewLaunchTemplate.
type LaunchTemplateProps struct {
	// The launch template's own props. Its MachineImage must be unset (the
	// template launches the copy); when its BlockDevices are unset, the
	// root volume mapping is added.
	// Default: - a launch template with only the copy and its root volume.
	LaunchTemplate *awsec2.LaunchTemplateProps `field:"optional"`
	// The AMI's root device name.
	// Default: "/dev/xvda" (Amazon Linux).
	RootDeviceName *string `field:"optional"`
}

// CopiedAmi is a copy, in this stack's account, of a shared AMI.
type CopiedAmi interface {
	constructs.Construct
	// The copy's AMI id (the resource's ImageId attribute, known at deploy time).
	ImageId() *string
	// The copy as a machine image for a launch template or an instance.
	MachineImage() awsec2.IMachineImage
	// The Custom::CrossAccountAmiCopy resource; depend on it to order a
	// resource after the copy exists.
	Resource() awscdk.CustomResource
	// The ARN of the role that copies (the stack's handler role): what the
	// source key's policy names.
	CopierRoleArn() *string
	// The statements the source key's policy needs for the copy (none with
	// KeyPolicyCovered). Marshal them with encoding/json to paste into a key policy.
	SourceKeyPolicyStatements() *[]awsiam.PolicyStatement
	// Whether the source key's policy gets the statements from this app:
	// true for a key of this app, with KeyPolicyCovered; false for an
	// imported key (a synth warning prints them).
	SourceKeyPolicyManaged() bool
	// The ARN of the key the copy is encrypted with; nil for the account's
	// default EBS key.
	DestinationKeyArn() *string
	// NewLaunchTemplate creates a launch template that launches the copy
	// with its root volume encrypted by the destination key (or the
	// account's default EBS key). props may be nil.
	NewLaunchTemplate(scope constructs.Construct, id *string, props *LaunchTemplateProps) awsec2.LaunchTemplate
	// ConfigureAutoScalingGroup makes asg wait for the copy. asg must be
	// in this construct's region.
	ConfigureAutoScalingGroup(asg awsautoscaling.AutoScalingGroup)
}

type copiedAmi struct {
	constructs.Construct
	region     string
	resource   awscdk.CustomResource
	copierArn  string
	destKeyArn string // "" for aws/ebs
	statements []amipolicy.Statement
	managed    bool
}

// NewCopiedAmi places the copy in the destination stack. It panics with an
// error naming the construct path, the prop and the value when a prop is
// invalid, before it creates anything; values that are deploy-time tokens
// are checked by the handler instead.
func NewCopiedAmi(scope constructs.Construct, id *string, props *CopiedAmiProps) CopiedAmi {
	fail := func(err error) {
		panic(fmt.Errorf("amicopy.NewCopiedAmi %s/%s: %w", *scope.Node().Path(), *id, err))
	}
	env := provider.EnvOf(scope)
	plan, err := planCopy(env, props)
	if err != nil {
		fail(err)
	}
	if err := keybudget.Of(env, props.SourceKey, plan.sourceKeyArn).Claim(plan.sourceStatements); err != nil {
		fail(fmt.Errorf("SourceKey: %w", err))
	}
	if plan.destStatements != nil {
		if err := keybudget.Of(env, props.DestinationKey, plan.spec.KmsKeyId).Claim(plan.destStatements); err != nil {
			fail(fmt.Errorf("DestinationKey: %w", err))
		}
	}
	c := registry.Child(scope, *id)
	p := provider.Of(env.Stack, provider.NeedCopyDescribe)
	a := &copiedAmi{Construct: c, region: env.Region, copierArn: plan.copierArn, destKeyArn: plan.spec.KmsKeyId, statements: plan.sourceStatements, managed: true}
	a.resource = p.CopyResource(c, plan.spec, plan.serviceTimeout, plan.sourceKeyArn, plan.spec.KmsKeyId)
	if len(plan.sourceStatements) > 0 {
		a.managed = keystatements.AddToKeyPolicy(c, props.SourceKey, plan.sourceKeyArn, plan.sourceStatements,
			"Place a keypolicy.NewManagedStatements with these statements in a stack of the key's account and region to have a custom resource there keep them in the key policy (then set KeyPolicyCovered to true, which silences this warning)")
		if a.managed {
			keystatements.DependOnKeyPolicy(env.Stack, awscdk.Stack_Of(props.SourceKey), "the source key policy must let the copier read the snapshots before it copies the AMI")
		}
	}
	if plan.destStatements != nil {
		keystatements.AddToKeyPolicy(c, props.DestinationKey, plan.spec.KmsKeyId, plan.destStatements,
			"Place a keypolicy.NewManagedStatements with these statements in this stack to have a custom resource keep them in the key policy (without them the launchers cannot launch the copy: Client.InternalError on launch)")
		keystatements.DependOnKeyPolicy(env.Stack, awscdk.Stack_Of(props.DestinationKey), "the destination key policy must let the launchers use the copy's key")
	}
	return a
}

// copyPlan is what props resolve to, worked out before anything is created.
type copyPlan struct {
	spec             copyspec.Properties
	serviceTimeout   int
	sourceKeyArn     string
	copierArn        string
	sourceStatements []amipolicy.Statement
	destStatements   []amipolicy.Statement // nil for aws/ebs
}

func planCopy(env *provider.StackEnv, props *CopiedAmiProps) (copyPlan, error) {
	var plan copyPlan
	if props == nil {
		return plan, fmt.Errorf("props: required, got nil")
	}
	if props.SourceImageId == nil {
		return plan, fmt.Errorf("SourceImageId: required, got nil")
	}
	if props.SourceKey == nil {
		return plan, fmt.Errorf("SourceKey: required, got nil")
	}
	if !env.Concrete {
		return plan, fmt.Errorf("the destination stack %s needs a concrete account and region (env), got %s: the source key policy names the copier role of this account", env.Name, env.Where())
	}
	for prop, key := range map[string]awskms.IKey{"SourceKey": props.SourceKey, "DestinationKey": props.DestinationKey} {
		if key == nil {
			continue
		}
		if _, ok := key.(awskms.IAlias); ok {
			return plan, fmt.Errorf("%s: expected the key itself, got an alias (%s): EBS and the key policy need the key's ARN (...:key/<key id>)", prop, registry.Path(key))
		}
	}
	plan.spec = copyspec.Properties{SourceImageId: *props.SourceImageId, Name: jsiivalue.String(props.Name), Description: jsiivalue.String(props.Description)}
	plan.serviceTimeout = copyspec.MaxServiceTimeout
	if props.ServiceTimeout != nil {
		seconds := props.ServiceTimeout.ToSeconds(nil)
		if seconds == nil || *seconds < 1 || *seconds > copyspec.MaxServiceTimeout || *seconds != float64(int(*seconds)) {
			return plan, fmt.Errorf("ServiceTimeout: expected 1 to %d whole seconds (CloudFormation's limit for a custom resource), got %s", copyspec.MaxServiceTimeout, *props.ServiceTimeout.ToHumanString())
		}
		plan.serviceTimeout = int(*seconds)
	}
	// The source key: in this region (the copy is made from an AMI of this
	// region; its snapshots' key is in the AMI's region).
	plan.sourceKeyArn = *props.SourceKey.KeyArn()
	if region, known := keyRegion(props.SourceKey, plan.sourceKeyArn); known && region != env.Region {
		return plan, fmt.Errorf("SourceKey: the key is in region %q but the destination stack %s is in %q; the copy is made from an AMI of the stack's region, whose snapshots are encrypted with a key of that region", region, env.Name, env.Region)
	}
	if props.DestinationKey != nil {
		plan.spec.KmsKeyId = *props.DestinationKey.KeyArn()
		if err := checkDestinationKey(env, props.DestinationKey, plan.spec.KmsKeyId); err != nil {
			return plan, err
		}
	}
	grantees, err := destinationGrantees(env, props)
	if err != nil {
		return plan, err
	}
	if grantees != nil {
		plan.destStatements = amipolicy.LauncherKeyStatements(env.Partition, env.Account, grantees)
	}
	if err := validateKnown(plan.spec); err != nil {
		return plan, err
	}
	roleArn, err := env.RoleArn()
	if err != nil {
		return plan, err
	}
	plan.copierArn = roleArn
	style, err := styleOf(env, props, plan.sourceKeyArn)
	if err != nil {
		return plan, err
	}
	if style == encryptedami.KeyPolicyStyle_SCOPED && (props.KeyPolicyCovered == nil || !*props.KeyPolicyCovered) {
		plan.sourceStatements = amipolicy.CopySourceStatements(amipolicy.CopySource{Partition: env.Partition, Account: env.Account, CopierArn: roleArn})
	}
	return plan, nil
}

// styleOf is the key policy style props ask for, with the typed link to a
// CopySourceKeyAccess checked: ACCOUNTS and ORGANIZATION add no statement
// for this destination, so for a key of this app they must name the
// construct that does.
func styleOf(env *provider.StackEnv, props *CopiedAmiProps, sourceKeyArn string) (encryptedami.KeyPolicyStyle, error) {
	style := props.KeyPolicyStyle
	_, ownKey := props.SourceKey.(awskms.Key)
	if props.SourceKeyAccess != nil {
		access, ok := props.SourceKeyAccess.(*copySourceKeyAccess)
		if !ok {
			return "", fmt.Errorf("SourceKeyAccess: expected the value NewCopySourceKeyAccess returned, got %T", props.SourceKeyAccess)
		}
		own := encryptedami.KeyPolicyStyle_ACCOUNTS
		if access.scope.OrganizationID != "" {
			own = encryptedami.KeyPolicyStyle_ORGANIZATION
		}
		if style == "" {
			style = own
		}
		if style != own {
			return "", fmt.Errorf("SourceKeyAccess: %s covers this destination with the statements of KeyPolicyStyle_%s; got KeyPolicyStyle %s with it (unset KeyPolicyStyle, or SourceKeyAccess)", registry.Path(access), own, style)
		}
		if err := access.covers(sourceKeyArn, env.Account); err != nil {
			return "", err
		}
		return style, nil
	}
	switch style {
	case "":
		return encryptedami.KeyPolicyStyle_SCOPED, nil
	case encryptedami.KeyPolicyStyle_SCOPED:
		return style, nil
	case encryptedami.KeyPolicyStyle_ACCOUNTS, encryptedami.KeyPolicyStyle_ORGANIZATION:
		if ownKey {
			return "", fmt.Errorf("SourceKeyAccess: required with KeyPolicyStyle %s for a key of this app (%s): nothing else would put the copiers' statements on its policy; pass the CopySourceKeyAccess placed on that key, got nil", style, registry.Path(props.SourceKey))
		}
		// An imported key whose policy another app keeps.
		return style, nil
	}
	return "", fmt.Errorf("KeyPolicyStyle: expected %s, %s or %s for a copy, got %q", encryptedami.KeyPolicyStyle_SCOPED, encryptedami.KeyPolicyStyle_ACCOUNTS, encryptedami.KeyPolicyStyle_ORGANIZATION, style)
}

// checkDestinationKey refuses a key the copy cannot be encrypted with: one
// of another account or region (CopyImage writes the copy with a key of
// the copy's own account and region).
func checkDestinationKey(env *provider.StackEnv, key awskms.IKey, keyArn string) error {
	account, region := "", ""
	if !jsiivalue.IsUnresolved(&keyArn) {
		arn, err := awsid.ParseKeyARN(keyArn)
		if err != nil {
			return fmt.Errorf("DestinationKey: %v", err)
		}
		account, region = arn.Account, arn.Region
	} else if _, own := key.(awskms.Key); own {
		if owner := provider.EnvOf(key); owner.Concrete {
			account, region = owner.Account, owner.Region
		}
	}
	if account == "" {
		return fmt.Errorf("DestinationKey: %s has an account and region known only at deploy time; use a key of a stack with env, or import it by its literal ARN", registry.Path(key))
	}
	if account != env.Account || region != env.Region {
		which := keyArn
		if jsiivalue.IsUnresolved(&which) {
			which = registry.Path(key)
		}
		return fmt.Errorf("DestinationKey: the key %s is in account %s and region %s, but the copy is made in the stack %s's account %s and region %s; the copy is encrypted with a key of its own account and region", which, account, region, env.Name, env.Account, env.Region)
	}
	return nil
}

// keyRegion is key's region, when it is known at synth time.
func keyRegion(key awskms.IKey, keyArn string) (string, bool) {
	if !jsiivalue.IsUnresolved(&keyArn) {
		if arn, err := awsid.ParseKeyARN(keyArn); err == nil {
			return arn.Region, true
		}
		return "", false
	}
	if _, own := key.(awskms.Key); own {
		if owner := provider.EnvOf(key); owner.Concrete {
			return owner.Region, true
		}
	}
	return "", false
}

// validateKnown applies copyspec's rules to the values known at synth
// time; a token gets a stand-in that passes, and the handler checks it.
func validateKnown(spec copyspec.Properties) error {
	probe := spec
	if jsiivalue.IsUnresolved(&probe.SourceImageId) {
		probe.SourceImageId = "ami-00000000"
	}
	if jsiivalue.IsUnresolved(&probe.KmsKeyId) {
		probe.KmsKeyId = "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000"
	}
	if jsiivalue.IsUnresolved(&probe.Name) {
		probe.Name = "token"
	}
	if jsiivalue.IsUnresolved(&probe.Description) {
		probe.Description = ""
	}
	if err := probe.Validate(); err != nil {
		// copyspec names the template's properties; KmsKeyId is the
		// DestinationKey prop.
		return errors.New(strings.ReplaceAll(err.Error(), copyspec.PropKmsKeyId+":", "DestinationKey:"))
	}
	return nil
}

func (a *copiedAmi) ImageId() *string {
	return a.resource.GetAttString(jsii.String(copyspec.AttrImageId))
}

func (a *copiedAmi) MachineImage() awsec2.IMachineImage {
	return awsec2.MachineImage_GenericLinux(&map[string]*string{a.region: a.ImageId()}, nil)
}

func (a *copiedAmi) Resource() awscdk.CustomResource { return a.resource }
func (a *copiedAmi) CopierRoleArn() *string          { return jsii.String(a.copierArn) }
func (a *copiedAmi) SourceKeyPolicyStatements() *[]awsiam.PolicyStatement {
	out := keystatements.ToCDK(a.statements)
	return &out
}
func (a *copiedAmi) SourceKeyPolicyManaged() bool { return a.managed }
func (a *copiedAmi) DestinationKeyArn() *string {
	if a.destKeyArn == "" {
		return nil
	}
	return jsii.String(a.destKeyArn)
}

// DefaultRootDeviceName is the root device of Amazon Linux AMIs.
const DefaultRootDeviceName = launchtemplate.DefaultRootDeviceName

func (a *copiedAmi) NewLaunchTemplate(scope constructs.Construct, id *string, props *LaunchTemplateProps) awsec2.LaunchTemplate {
	spec := launchtemplate.Spec{Method: "CopiedAmi.NewLaunchTemplate", Image: a.MachineImage(), Describe: "the copy of " + registry.Path(a)}
	if a.destKeyArn != "" {
		spec.KmsKeyId = a.destKeyArn
	}
	if props == nil {
		props = &LaunchTemplateProps{}
	}
	// The template's ImageId (the copy's attribute) orders it after the copy.
	return launchtemplate.New(scope, id, spec, props.LaunchTemplate, props.RootDeviceName)
}

func (a *copiedAmi) ConfigureAutoScalingGroup(asg awsautoscaling.AutoScalingGroup) {
	asgRegion := awscdk.Stack_Of(asg).Region()
	if !jsiivalue.IsUnresolved(asgRegion) && *asgRegion != a.region {
		panic(fmt.Errorf("CopiedAmi.ConfigureAutoScalingGroup %s: asg: the Auto Scaling group %s is in region %q, the copy in %q; they must share one region",
			registry.Path(a), *asg.Node().Path(), *asgRegion, a.region))
	}
	asg.Node().AddDependency(a.resource)
}

// Package encryptedami provides CrossAccountEncryptedAmi: it makes an AMI
// encrypted with a KMS key of another account (the source) launchable by the
// Auto Scaling groups of this stack's account (the destination).
//
// Placed in the destination stack, it
//   - adds the statements the destination needs to the source key's policy
//     (in the key's own stack), or, for an imported key it cannot edit,
//     returns them and warns at synth time;
//   - makes sure the destination's Auto Scaling service-linked role exists;
//   - creates the KMS grant on the source key for that role.
//
// Deploy order: the key's stack first (its policy must allow the grant),
// then the destination stack. The construct adds that stack dependency, so
// `cdk deploy --all` follows it.
//
// Runnable examples (go doc -all, or the package's page on pkg.go.dev):
// ExampleNewCrossAccountEncryptedAmi (a key, a destination and its Auto
// Scaling group), ExampleNewOrganizationKeyAccess (every account of an
// organization) and ExampleNewAccountsKeyAccess (a list of accounts, no
// organization needed). README.md's "Use it in your own app" is a complete main.go.
package encryptedami

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseks"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/grantres"
	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keybudget"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/launchtemplate"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/constructs/internal/slrres"
	"github.com/crossaccountami/crossaccountami/constructs/keypolicy"
	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// KeyPolicyStyle selects how the source key policy statements are scoped.
type KeyPolicyStyle string

const (
	// KeyPolicyStyle_SCOPED names the destination account as principal and
	// pins the exact roles with aws:PrincipalArn; CreateGrant only for the
	// service-linked role and only with the Auto Scaling operations. Valid
	// before the destination's roles exist.
	KeyPolicyStyle_SCOPED KeyPolicyStyle = KeyPolicyStyle(amipolicy.Scoped)
	// KeyPolicyStyle_SEED_ARTICLE reproduces the statements of the AWS
	// knowledge-center article (the roles as principals, no conditions).
	// KMS rejects a key policy that names a role that does not exist yet, so
	// it cannot be deployed on fresh accounts: synth fails unless the context
	// value crossaccountami:seedArticleRolesExist is "true" (see
	// SeedArticleContextKey).
	KeyPolicyStyle_SEED_ARTICLE KeyPolicyStyle = KeyPolicyStyle(amipolicy.SeedArticle)
	// KeyPolicyStyle_ORGANIZATION adds no statement for this destination:
	// an OrganizationKeyAccess on the key's side covers every account of the
	// organization with statements of constant size.
	KeyPolicyStyle_ORGANIZATION KeyPolicyStyle = "ORGANIZATION"
)

// SeedArticleContextKey is the context key that says the roles
// KeyPolicyStyle_SEED_ARTICLE names (the destination's Auto Scaling
// service-linked role and its grant handler role) exist already, such as
// after a first deploy with KeyPolicyStyle_SCOPED. Without it that style is
// a synth error.
const SeedArticleContextKey = "crossaccountami:seedArticleRolesExist"

// CrossAccountEncryptedAmiProps configures the construct.
type CrossAccountEncryptedAmiProps struct {
	// The source account's customer-managed key that encrypts the AMI's
	// snapshots: a key of another stack of this app (its policy is then
	// edited), or an imported key (awskms.Key_FromKeyArn; the statements are
	// then returned by KeyPolicyStatements and a warning says where to apply
	// them). Not an alias.
	Key awskms.IKey `field:"required"`
	// The AMI id, ami- followed by 8 or 17 hex digits.
	ImageId *string `field:"required"`
	// The suffix of a custom-suffix Auto Scaling service-linked role used by
	// your Auto Scaling groups (AWSServiceRoleForAutoScaling_<suffix>).
	// Default: - the default role, AWSServiceRoleForAutoScaling.
	ServiceLinkedRoleSuffix *string `field:"optional"`
	// Create the service-linked role when the account does not have it yet.
	// The role is never deleted.
	// Default: true.
	CreateServiceLinkedRole *bool `field:"optional"`
	// How tightly the source key policy statements are scoped.
	// Default: KeyPolicyStyle_ORGANIZATION when OrganizationKeyAccess is set,
	// KeyPolicyStyle_ACCOUNTS when AccountsKeyAccess is set, else
	// KeyPolicyStyle_SCOPED.
	KeyPolicyStyle KeyPolicyStyle `field:"optional"`
	// For an imported key (awskms.Key_FromKeyArn), whose policy this app does
	// not own: a scope in the key's account (a stack of this app) where a
	// custom resource keeps this destination's statements in the key policy
	// (keypolicy.ManagedStatements, construct id "KeyPolicy-<this construct's
	// path, / as ->"). This construct's stack then depends on that scope's
	// stack, so `cdk deploy --all` writes the statements before the grant.
	// Not for a key of this app (its policy is edited directly) nor with
	// KeyPolicyStyle_ORGANIZATION or KeyPolicyStyle_ACCOUNTS (no statements
	// to keep).
	// Default: - an imported key's statements are returned by
	// KeyPolicyStatements and a synth warning says where to apply them.
	KeyPolicyScope constructs.Construct `field:"optional"`
	// The OrganizationKeyAccess placed on Key, which covers this destination:
	// the typed link KeyPolicyStyle_ORGANIZATION needs when Key is a key of
	// this app. It must be on the same key. Setting it implies
	// KeyPolicyStyle_ORGANIZATION.
	// Default: - none; KeyPolicyStyle_ORGANIZATION is then accepted only for
	// an imported key, whose policy another app keeps.
	OrganizationKeyAccess OrganizationKeyAccess `field:"optional"`
	// The AccountsKeyAccess placed on Key, whose Accounts list this
	// destination's account: the typed link KeyPolicyStyle_ACCOUNTS needs
	// when Key is a key of this app. It must be on the same key and list this
	// stack's account (a synth error names an account it does not list).
	// Setting it implies KeyPolicyStyle_ACCOUNTS.
	// Default: - none; KeyPolicyStyle_ACCOUNTS is then accepted only for an
	// imported key, whose policy another app keeps.
	AccountsKeyAccess AccountsKeyAccess `field:"optional"`
	// Check on this schedule that the grant exists, and re-create it under
	// its name if someone revoked it (kmsgrant.GrantProps.HealSchedule):
	// an EventBridge rule invokes the stack's handler, which logs the result
	// and writes the metrics CrossAccountAmi/GrantRecreated and
	// CrossAccountAmi/GrantCheckFailed (dimension GrantName).
	// Default: - no scheduled check (organization.NewDeployment checks daily by default).
	HealSchedule awsevents.Schedule `field:"optional"`
	// Which launch paths of this account launch the AMI through a
	// service-linked role. Each distinct role gets one grant (an Auto
	// Scaling group and an EKS managed node group share the default Auto
	// Scaling role's), the key policy statements name every one, and the
	// roles are created when missing (CreateServiceLinkedRole). Empty is
	// allowed with LauncherRoles.
	// Default: []LauncherKind{LauncherKind_AUTO_SCALING} (today's templates, unchanged).
	Launchers *[]LauncherKind `field:"optional"`
	// Roles that launch instances themselves (RunInstances, CreateFleet type
	// instant): Karpenter's controller, a Lambda function, a CI runner. Each
	// gets its own grant; the role's own policies are not changed. Its ARN
	// must be known at synth (imported by ARN, or a role of this stack with
	// a RoleName), in this stack's account.
	// Default: - none.
	LauncherRoles *[]awsiam.IRole `field:"optional"`
}

// LaunchTemplateProps configures CrossAccountEncryptedAmi.NewLaunchTemplate.
type LaunchTemplateProps struct {
	// The launch template's own props. Its MachineImage must be unset (the
	// template launches the shared AMI); when its BlockDevices are unset,
	// the root volume mapping is added.
	// Default: - a launch template with only the AMI and its root volume.
	LaunchTemplate *awsec2.LaunchTemplateProps `field:"optional"`
	// The AMI's root device name, whose volume is encrypted with the source key.
	// Default: "/dev/xvda" (Amazon Linux).
	RootDeviceName *string `field:"optional"`
}

// CrossAccountEncryptedAmi is a shared, encrypted AMI made launchable in this stack's account.
type CrossAccountEncryptedAmi interface {
	constructs.Construct
	// The AMI as a machine image for a launch template or an instance.
	MachineImage() awsec2.IMachineImage
	// The grant for the Auto Scaling service-linked role (its GrantId, its
	// resource); without LauncherKind_AUTO_SCALING, the first of Grants.
	Grant() kmsgrant.Grant
	// One grant per distinct grantee of the launchers, sorted by grantee ARN.
	Grants() *[]kmsgrant.Grant
	// The grantees' ARNs, sorted, in the order of Grants.
	GranteeArns() *[]*string
	// The ARN of the Auto Scaling service-linked role that receives the
	// grant; without LauncherKind_AUTO_SCALING, the service-linked role of
	// the first of Launchers, or nil when only roles launch.
	ServiceLinkedRoleArn() *string
	// Something to depend on so that a resource (an Auto Scaling group) is
	// created only after the service-linked role and the grant exist.
	GrantDependency() constructs.IDependable
	// The statements the source key's policy needs for this destination
	// (none with KeyPolicyStyle_ORGANIZATION or KeyPolicyStyle_ACCOUNTS). Marshal them with
	// encoding/json (PolicyStatement.ToJSON) to paste into a key policy.
	KeyPolicyStatements() *[]awsiam.PolicyStatement
	// Whether this app keeps the statements in the key's policy: true for a
	// key of this app, for an imported key with KeyPolicyScope, and when
	// there are no statements; false for an imported key whose statements
	// you apply by hand (a synth warning prints them).
	KeyPolicyManaged() bool
	// The custom resource that keeps the statements in an imported key's
	// policy, placed in KeyPolicyScope; nil without KeyPolicyScope.
	ManagedKeyPolicy() keypolicy.ManagedStatements
	// NewLaunchTemplate creates a launch template that launches the AMI with
	// its root volume encrypted by the source key. props may be nil.
	//
	// An EKS managed node group takes it (awseks.LaunchTemplateSpec with
	// the template's LaunchTemplateId and LatestVersionNumber, or the L1's
	// LaunchTemplate) when the template sets nothing EKS forbids: no Role
	// (an IAM instance profile; the node group's NodeRole replaces it), no
	// subnet in network interfaces, no shutdown or hibernation behaviour;
	// and the node group sets no AmiType, InstanceTypes in the template or
	// the node group but not both. With a custom AMI EKS merges no user data
	// of its own: give LaunchTemplate.UserData that joins the node to the
	// cluster (nodeadm's NodeConfig, or bootstrap.sh), or the nodes never
	// register ("Customize managed nodes with launch templates",
	// https://docs.aws.amazon.com/eks/latest/userguide/launch-templates.html).
	NewLaunchTemplate(scope constructs.Construct, id *string, props *LaunchTemplateProps) awsec2.LaunchTemplate
	// ConfigureAutoScalingGroup makes asg wait for the service-linked role
	// and the grant, and sets its ServiceLinkedRoleARN when a custom-suffix
	// role is used. asg must be in this construct's stack region.
	ConfigureAutoScalingGroup(asg awsautoscaling.AutoScalingGroup)
	// ConfigureNodegroup makes an EKS managed node group wait for the
	// default Auto Scaling service-linked role and its grant (the role the
	// group EKS creates launches with). ng must be in this construct's
	// region, and Launchers must grant that role (EKS_MANAGED_NODE_GROUP,
	// or AUTO_SCALING without ServiceLinkedRoleSuffix).
	ConfigureNodegroup(ng awseks.Nodegroup)
	// ConfigureCfnNodegroup is ConfigureNodegroup for the L1 awseks.CfnNodegroup.
	ConfigureCfnNodegroup(ng awseks.CfnNodegroup)
}

type crossAccountEncryptedAmi struct {
	constructs.Construct
	props      *CrossAccountEncryptedAmiProps
	keyArn     string // read once: every read is a jsii round trip
	region     string
	grant      kmsgrant.Grant
	slrArn     string
	statements []amipolicy.Statement
	managed    bool
	keyPolicy  keypolicy.ManagedStatements // with KeyPolicyScope
	// owner holds the grant and the service-linked role resource of slrArn:
	// this construct, or the first one of the stack for the same key and role.
	owner constructs.Construct
	// launchers are the destination's launch paths; grantees their
	// distinct principals (sorted), each with its grant and the construct
	// that holds it (this one, or the first of the stack for the same key
	// and grantee).
	launchers []launcher.Launcher
	grantees  []string
	grants    map[string]kmsgrant.Grant
	owners    map[string]constructs.Construct
	// ownRoles are the LauncherRoles defined in this app, by ARN: their
	// grants wait for them.
	ownRoles map[string]awsiam.Role
	// defaultASGRole is the default AWSServiceRoleForAutoScaling's ARN (what
	// an EKS managed node group launches with).
	defaultASGRole string
}

// NewCrossAccountEncryptedAmi places the construct in the destination stack.
// It panics with an error naming the construct path, the prop and the value
// when a prop is invalid, before it creates anything; values that are
// unresolved tokens are checked by the handler at deploy time instead.
// Every answer of the returned construct is final.
func NewCrossAccountEncryptedAmi(scope constructs.Construct, id *string, props *CrossAccountEncryptedAmiProps) CrossAccountEncryptedAmi {
	env := provider.EnvOf(scope)
	fail := func(err error) {
		panic(fmt.Errorf("encryptedami.NewCrossAccountEncryptedAmi %s/%s: %w", *scope.Node().Path(), *id, err))
	}
	dest, keyArn, err := resolveDestination(env, props)
	if err != nil {
		fail(err)
	}
	launchers, err := resolveLaunchers(env, dest.Partition, props)
	if err != nil {
		fail(err)
	}
	dest.Launchers = launchers
	style, err := styleOf(props, keyArn, dest.Account)
	if err != nil {
		fail(err)
	}
	if err := coveredByKeyAccess(props, launchers, dest); err != nil {
		fail(err)
	}
	createSLR := props.CreateServiceLinkedRole == nil || *props.CreateServiceLinkedRole
	grantees := dest.Grantees()
	grants := sharedGrants(env.Stack)
	firsts := map[string]*crossAccountEncryptedAmi{}
	for _, g := range grantees {
		if first := grants[grantKey{key: props.Key, slrArn: g, createSLR: createSLR}]; first != nil {
			if err := canShare(first, props); err != nil {
				fail(err)
			}
			firsts[g] = first
		}
	}
	var statements []amipolicy.Statement
	if style != KeyPolicyStyle_ORGANIZATION && style != KeyPolicyStyle_ACCOUNTS {
		// The organization's (or the account list's) statements are placed
		// once, on the key's side.
		statements = amipolicy.Statements(dest, amipolicy.Style(style))
	}
	if err := keybudget.Of(env, props.Key, keyArn).Claim(placedStatements(props, statements)); err != nil {
		fail(err)
	}

	c := registry.Child(scope, *id)
	a := &crossAccountEncryptedAmi{Construct: c, props: props, keyArn: keyArn, region: env.Region, statements: statements,
		launchers: launchers, grantees: grantees, grants: map[string]kmsgrant.Grant{}, owners: map[string]constructs.Construct{},
		ownRoles:       ownLauncherRoles(props, dest.Partition),
		defaultASGRole: launcher.AutoScalingSLR.ARN(dest.Partition, dest.Account, "")}
	a.slrArn = primaryGrantee(launchers, dest)
	var fresh []launcher.Launcher
	for _, l := range launchers {
		g := l.Grantee(dest.Partition, dest.Account)
		if first := firsts[g]; first != nil {
			// Another AMI of the same key for the same role in this stack:
			// one grant serves both.
			a.grants[g], a.owners[g] = first.grants[g], first.owners[g]
			continue
		}
		if _, done := a.grants[g]; !done {
			grants[grantKey{key: props.Key, slrArn: g, createSLR: createSLR}] = a
			a.grants[g], a.owners[g] = nil, c // placed by newGrants
			fresh = append(fresh, l)
		}
	}
	a.newGrants(env, dest, fresh, createSLR)
	a.owner = a.owners[a.slrArn]
	if a.owner == nil {
		a.owner = a.owners[grantees[0]]
	}
	a.grant = a.grants[a.slrArn]
	if a.grant == nil {
		a.grant = a.grants[grantees[0]]
	}
	_, ownKey := props.Key.(awskms.Key)
	knownAccount := ownKey || !jsiivalue.IsUnresolved(&keyArn)
	if knownAccount && keyAccount(props.Key, keyArn) == env.Account {
		warnSameAccount(c, describeKey(props.Key, keyArn), env.Account)
	}
	if props.KeyPolicyScope != nil {
		a.manageKeyPolicy(props.KeyPolicyScope)
		return a
	}
	howToManage := "Import the key with its literal ARN and set KeyPolicyScope to a stack of its account and region to have a custom resource there keep these statements in the key policy"
	if knownAccount {
		howToManage = "Set KeyPolicyScope to a stack in account " + keyAccount(props.Key, keyArn) + " to have a custom resource there keep these statements in the key policy"
	}
	a.managed = keystatements.AddToKeyPolicy(c, props.Key, keyArn, a.statements, howToManage)
	if a.managed {
		// The key policy must allow the grant before the grant is created.
		// Across CDK Stages (a pipeline) no stack dependency can be drawn:
		// the pipeline's order (the key's stage first) gives it instead.
		dependOnKeyPolicy(env.Stack, awscdk.Stack_Of(props.Key), "the source key policy must allow the grant before the destination creates it")
	}
	return a
}

// sameAccountWarning is the id of the synth warning for a key in the
// destination's own account.
const sameAccountWarning = "crossaccountami:same-account-key"

// warnSameAccount says that a key of the destination's own account needs
// no grant. It is a warning, not an error: the construct's grant and
// statements work in one account too (TestSameAccount), and an account that
// both builds and runs its AMI is a legitimate setup.
func warnSameAccount(scope constructs.Construct, key, account string) {
	awscdk.Annotations_Of(scope).AddWarningV2(jsii.String(sameAccountWarning), jsii.String(fmt.Sprintf(
		"Key: %s is in this stack's account %s. An Auto Scaling group launches an AMI encrypted with a key of its own account once the key policy allows its service-linked role "+
			"to use the key and to create grants for AWS resources, and needs no grant "+
			"(https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html, example 1). "+
			"This construct still creates the grant and its key policy statements, which work; acknowledge this warning to keep them",
		key, account)), nil)
}

// describeKey names key in a message: its ARN when known, else its path
// (and stack, for a key of this app), never token text.
func describeKey(key awskms.IKey, keyArn string) string {
	return keystatements.DescribeKey(key, keyArn)
}

// describeKeyArn is describeKey when only the ARN is at hand.
func describeKeyArn(keyArn string) string {
	if jsiivalue.IsUnresolved(&keyArn) {
		return "a key of this app (its ARN is " + jsiivalue.DeployTime + ")"
	}
	return "the key " + keyArn
}

// refuseAlias refuses an alias given as Key. awskms.IAlias is an IKey to
// CDK, but its KeyArn is the alias ARN (...:alias/name): CreateGrant takes
// a key id or key ARN only, a launch template's KmsKeyId would name the
// alias, and the key's policy and stack cannot be reached through it.
func refuseAlias(key awskms.IKey) error {
	alias, ok := key.(awskms.IAlias)
	if !ok {
		return nil
	}
	name := "an alias"
	n := alias.AliasName()
	if cfn, ok := alias.Node().DefaultChild().(awskms.CfnAlias); ok && jsiivalue.IsUnresolved(n) {
		// An alias of this app answers a token; its resource has the name.
		n = cfn.AliasName()
	}
	if n != nil && !jsiivalue.IsUnresolved(n) {
		name = fmt.Sprintf("the alias %q", *n)
	}
	return fmt.Errorf("Key: expected the key itself, got %s (%s): a KMS grant and the launch template's KmsKeyId need the key's ARN, and an alias has an ARN of its own (...:alias/...). "+
		"Pass the key the alias points to: the awskms.Key given as the alias's TargetKey, or awskms.Key_FromKeyArn with the key's ARN (...:key/<key id>)", name, registry.Path(key))
}

// checkKeyPolicyScope checks that KeyPolicyScope is in the key's account
// and region, the only place KMS lets a custom resource rewrite the key's
// policy, so the error names the prop instead of the construct placed there.
func checkKeyPolicyScope(scope constructs.Construct, key awskms.IKey, keyArn string) error {
	if jsiivalue.IsUnresolved(&keyArn) {
		return fmt.Errorf("KeyPolicyScope: the statements are kept on a key named by its ARN, and Key (%s) has an ARN that is %s; import the key with awskms.Key_FromKeyArn and a literal ARN, got KeyPolicyScope %s",
			registry.Path(key), jsiivalue.DeployTime, registry.Path(scope))
	}
	arn, err := awsid.ParseKeyARN(keyArn)
	if err != nil {
		return fmt.Errorf("Key: %v", err)
	}
	s := provider.EnvOf(scope)
	if s.Account != arn.Account || s.Region != arn.Region {
		return fmt.Errorf("KeyPolicyScope: %s is in account %s and region %s, but the key %s is in account %q and region %q; KMS lets only the key's own account change its policy: pass a stack of account %s in %s",
			s.Path, jsiivalue.Show(s.Account), jsiivalue.Show(s.Region), keyArn, arn.Account, arn.Region, arn.Account, arn.Region)
	}
	return nil
}

// dependOnKeyPolicy makes the destination stack depend on the stack that
// writes the key policy, when both are in one stage.
func dependOnKeyPolicy(destination, keyPolicy awscdk.Stack, reason string) {
	if keyPolicy != destination && awscdk.Stage_Of(keyPolicy) == awscdk.Stage_Of(destination) {
		destination.AddStackDependency(keyPolicy, jsii.String(reason))
	}
}

// styleOf is the key policy style props ask for, with the typed link to an
// OrganizationKeyAccess checked: KeyPolicyStyle_ORGANIZATION adds no
// statement, so for a key of this app it must be able to name the
// construct that does.
func styleOf(props *CrossAccountEncryptedAmiProps, keyArn, account string) (KeyPolicyStyle, error) {
	style := props.KeyPolicyStyle
	_, ownKey := props.Key.(awskms.Key)
	if props.AccountsKeyAccess != nil {
		if props.OrganizationKeyAccess != nil {
			return "", fmt.Errorf("AccountsKeyAccess: OrganizationKeyAccess is set too; a destination is covered by one of them, got both")
		}
		if style == "" {
			style = KeyPolicyStyle_ACCOUNTS
		}
		if style != KeyPolicyStyle_ACCOUNTS {
			return "", fmt.Errorf("AccountsKeyAccess: it covers this destination with the listed accounts' statements, which is KeyPolicyStyle_ACCOUNTS; got KeyPolicyStyle %s with it (unset KeyPolicyStyle, or AccountsKeyAccess)", style)
		}
		if err := checkAccountsKeyAccess(props, keyArn, account); err != nil {
			return "", err
		}
	} else if style == KeyPolicyStyle_ACCOUNTS && ownKey {
		return "", fmt.Errorf("AccountsKeyAccess: required with KeyPolicyStyle_ACCOUNTS for a key of this app (%s): nothing else would put the accounts' statements on its policy; pass the AccountsKeyAccess placed on that key, got nil", *props.Key.Node().Path())
	}
	if props.OrganizationKeyAccess != nil {
		if style == "" {
			style = KeyPolicyStyle_ORGANIZATION
		}
		if style != KeyPolicyStyle_ORGANIZATION {
			return "", fmt.Errorf("OrganizationKeyAccess: it covers this destination with the organization's statements, which is KeyPolicyStyle_ORGANIZATION; got KeyPolicyStyle %s with it (unset KeyPolicyStyle, or OrganizationKeyAccess)", style)
		}
		o, ok := props.OrganizationKeyAccess.(*organizationKeyAccess)
		if !ok {
			return "", fmt.Errorf("OrganizationKeyAccess: expected the value NewOrganizationKeyAccess returned, got %T", props.OrganizationKeyAccess)
		}
		if o.keyArn != keyArn {
			return "", fmt.Errorf("OrganizationKeyAccess: it is on the key %s (%s), but Key is %s; they must be the same key", describeKeyArn(o.keyArn), *o.Node().Path(), describeKey(props.Key, keyArn))
		}
	} else if style == KeyPolicyStyle_ORGANIZATION && ownKey {
		return "", fmt.Errorf("OrganizationKeyAccess: required with KeyPolicyStyle_ORGANIZATION for a key of this app (%s): nothing else would put the organization's statements on its policy; pass the OrganizationKeyAccess placed on that key, got nil", *props.Key.Node().Path())
	}
	if style == "" {
		style = KeyPolicyStyle_SCOPED
	}
	if props.KeyPolicyScope != nil {
		switch {
		case ownKey:
			return "", fmt.Errorf("KeyPolicyScope: only for an imported key; the key %s is defined in this app, which edits its policy directly; got %s", *props.Key.Node().Path(), *props.KeyPolicyScope.Node().Path())
		case style == KeyPolicyStyle_ORGANIZATION || style == KeyPolicyStyle_ACCOUNTS:
			return "", fmt.Errorf("KeyPolicyScope: KeyPolicyStyle_%s adds no statements for this destination (the key side's statements cover it), got %s", style, *props.KeyPolicyScope.Node().Path())
		}
		if err := checkKeyPolicyScope(props.KeyPolicyScope, props.Key, keyArn); err != nil {
			return "", err
		}
	}
	return style, nil
}

// grantKey identifies a grant a construct needs within its stack: one
// key, one grantee (slrArn: a service-linked role, or a launching role).
type grantKey struct {
	key       awskms.IKey
	slrArn    string
	createSLR bool
}

// sharedGrants maps each grant of stack to the first construct that needs
// it, which holds it.
func sharedGrants(stack awscdk.Stack) map[grantKey]*crossAccountEncryptedAmi {
	return registry.Get(stack, "shared-grants", func(awscdk.Stack) map[grantKey]*crossAccountEncryptedAmi {
		return map[grantKey]*crossAccountEncryptedAmi{}
	})
}

// canShare refuses what sharing first's grant would silently lose: a second
// construct for the same AMI (it adds nothing, and is likely a copy-paste),
// and a HealSchedule other than the one of the shared grant (it would be
// ignored). A different AMI of the same key shares the grant: that is what
// one grant per key and role is for.
func canShare(first *crossAccountEncryptedAmi, props *CrossAccountEncryptedAmiProps) error {
	path := registry.Path(first.Construct)
	if a, b := first.props.ImageId, props.ImageId; !jsiivalue.IsUnresolved(a) && *a == *b {
		return fmt.Errorf("ImageId: %s already makes the AMI %q launchable here with %s and the same service-linked role; use %s (MachineImage, NewLaunchTemplate, ConfigureAutoScalingGroup) instead of a second construct",
			path, *b, describeKey(props.Key, first.keyArn), path)
	}
	if props.HealSchedule != nil {
		if have, want := scheduleText(first.props.HealSchedule), scheduleText(props.HealSchedule); have != want {
			return fmt.Errorf("HealSchedule: this AMI shares the grant of %s (one grant per key and service-linked role in a stack), whose HealSchedule is %s; got %s: set it on %s",
				path, have, want, path)
		}
	}
	return nil
}

// scheduleText is a HealSchedule as a message shows it.
func scheduleText(s awsevents.Schedule) string {
	if s == nil {
		return "none"
	}
	return *s.ExpressionString()
}

// newGrants creates, under a, the grant of each launcher's grantee (ls
// have distinct grantees, none held by another construct) and, when asked,
// the service-linked role resource it needs.
func (a *crossAccountEncryptedAmi) newGrants(env *provider.StackEnv, dest amipolicy.Destination, ls []launcher.Launcher, createSLR bool) {
	if len(ls) == 0 {
		return
	}
	c, props := a.Construct, a.props
	// The handler's policy gets what both resources need in one go.
	var needs []provider.Need
	var others []string
	for _, r := range launcher.ServiceLinkedRolesOf(ls) {
		switch {
		case !createSLR:
		case r.Service == awsid.AutoScalingService:
			if len(needs) == 0 {
				needs = append(needs, provider.NeedSLR)
			}
		default:
			others = append(others, r.Service)
		}
	}
	needs = append(needs, provider.NeedListRetirable)
	p := provider.Of(env.Stack, needs...)
	for _, service := range others {
		p.AllowServiceLinkedRole(service)
	}
	ids := granteeIDs(ls, a.slrArn, dest.Partition, dest.Account)
	for _, l := range ls {
		grantee := l.Grantee(dest.Partition, dest.Account)
		id := ids[grantee]
		// The grantee is known as a string: grantres spares kmsgrant's
		// reading of an IPrincipal (the props were checked by
		// resolveDestination and resolveLaunchers).
		var deps []constructs.IDependable
		if slr, ok := l.ServiceLinkedRole(); ok && createSLR {
			deps = append(deps, slrres.New(c, "ServiceLinkedRole"+id, slr, l.SLRSuffix))
		}
		if role := a.ownRoles[grantee]; role != nil {
			// A role of this app: KMS refuses a grant for a role that does
			// not exist yet (InvalidArnException, not retried), so the
			// grant waits for it, within the stack or by stack order.
			if roleStack := awscdk.Stack_Of(role); roleStack == env.Stack {
				deps = append(deps, role)
			} else {
				dependOnKeyPolicy(env.Stack, roleStack, "the launcher role "+registry.Path(role)+" must exist before its grant")
			}
		}
		grant := grantres.New(c, "Grant"+id, grantspec.Properties{
			KeyArn:           a.keyArn,
			GranteePrincipal: grantee,
			Operations:       grantspec.AutoScalingOperations,
		}, jsii.String(a.keyArn), deps...)
		if props.HealSchedule != nil {
			grant.Heal(*props.HealSchedule.ExpressionString())
		}
		a.grants[grantee] = grant
	}
}

// primaryGrantee is the grantee Grant, ServiceLinkedRoleArn and
// ConfigureAutoScalingGroup answer for: the Auto Scaling role of
// ServiceLinkedRoleSuffix, else the first service-linked role, else "".
func primaryGrantee(ls []launcher.Launcher, dest amipolicy.Destination) string {
	for _, l := range ls {
		if l.Kind == launcher.AutoScaling {
			return l.Grantee(dest.Partition, dest.Account)
		}
	}
	for _, l := range ls {
		if _, ok := l.ServiceLinkedRole(); ok {
			return l.Grantee(dest.Partition, dest.Account)
		}
	}
	return ""
}

// resolveDestination validates the props and works out the destination from
// the stack the construct is in, and the key's ARN (a token for a key of the
// app), read once: every read is a jsii round trip.
func resolveDestination(env *provider.StackEnv, props *CrossAccountEncryptedAmiProps) (amipolicy.Destination, string, error) {
	if props == nil {
		return amipolicy.Destination{}, "", fmt.Errorf("props: required, got nil")
	}
	if props.Key == nil {
		return amipolicy.Destination{}, "", fmt.Errorf("Key: required, got nil")
	}
	if err := refuseAlias(props.Key); err != nil {
		return amipolicy.Destination{}, "", err
	}
	if props.ImageId == nil {
		return amipolicy.Destination{}, "", fmt.Errorf("ImageId: required, got nil")
	}
	if !jsiivalue.IsUnresolved(props.ImageId) {
		if err := awsid.ValidateImageID(*props.ImageId); err != nil {
			return amipolicy.Destination{}, "", fmt.Errorf("ImageId: %v", err)
		}
	}
	switch props.KeyPolicyStyle {
	case "", KeyPolicyStyle_SCOPED, KeyPolicyStyle_SEED_ARTICLE, KeyPolicyStyle_ORGANIZATION, KeyPolicyStyle_ACCOUNTS:
	default:
		return amipolicy.Destination{}, "", fmt.Errorf("KeyPolicyStyle: expected %s, %s, %s or %s, got %q", KeyPolicyStyle_SCOPED, KeyPolicyStyle_SEED_ARTICLE, KeyPolicyStyle_ORGANIZATION, KeyPolicyStyle_ACCOUNTS, props.KeyPolicyStyle)
	}
	keyArn := props.Key.KeyArn()
	keyRegion := ""
	if !jsiivalue.IsUnresolved(keyArn) {
		arn, err := awsid.ParseKeyARN(*keyArn)
		if err != nil {
			return amipolicy.Destination{}, "", fmt.Errorf("Key: %v", err)
		}
		keyRegion = arn.Region
	} else if owner := provider.EnvOf(props.Key); owner.Concrete {
		keyRegion = owner.Region
	}
	if !env.Concrete {
		return amipolicy.Destination{}, "", fmt.Errorf("the destination stack %s needs a concrete account and region (env), got %s: the source key policy names the destination account", env.Name, env.Where())
	}
	if keyRegion != "" && keyRegion != env.Region {
		return amipolicy.Destination{}, "", fmt.Errorf("Key: the key is in region %q but the destination stack %s is in %q; an Auto Scaling group can launch an AMI only with a key of its own region (copy the AMI and re-encrypt it with a key in %s)", keyRegion, env.Name, env.Region, env.Region)
	}
	if err := awsid.ValidateAccount(env.Account); err != nil {
		return amipolicy.Destination{}, "", fmt.Errorf("the destination stack %s has env.account %v", env.Name, err)
	}
	roleArn, err := env.RoleArn()
	if err != nil {
		return amipolicy.Destination{}, "", err
	}
	d := amipolicy.Destination{Partition: keyPartition(props.Key, *keyArn), Account: env.Account, GrantCreatorArn: roleArn}
	if props.KeyPolicyStyle == KeyPolicyStyle_SEED_ARTICLE && env.Stack.Node().TryGetContext(jsii.String(SeedArticleContextKey)) != "true" {
		return amipolicy.Destination{}, "", seedArticleError(d, props)
	}
	if props.ServiceLinkedRoleSuffix != nil {
		d.SLRSuffix = *props.ServiceLinkedRoleSuffix
		if jsiivalue.IsUnresolved(props.ServiceLinkedRoleSuffix) {
			return amipolicy.Destination{}, "", fmt.Errorf("ServiceLinkedRoleSuffix: must be known at synth time (the source key policy names the role), got %s", jsiivalue.DeployTime)
		}
		if err := awsid.ValidateSLRSuffix(d.SLRSuffix); err != nil {
			return amipolicy.Destination{}, "", fmt.Errorf("ServiceLinkedRoleSuffix: %v", err)
		}
		if err := awsid.CheckSLRSuffixMistakes(d.SLRSuffix); err != nil {
			return amipolicy.Destination{}, "", fmt.Errorf("ServiceLinkedRoleSuffix: %v", err)
		}
	}
	return d, *keyArn, nil
}

// seedArticleError says why the article's statements cannot be deployed on
// fresh accounts, and what works.
func seedArticleError(d amipolicy.Destination, props *CrossAccountEncryptedAmiProps) error {
	if props.ServiceLinkedRoleSuffix != nil {
		d.SLRSuffix = *props.ServiceLinkedRoleSuffix
	}
	return fmt.Errorf("KeyPolicyStyle: KeyPolicyStyle_SEED_ARTICLE names the roles %s and %s as key policy principals, and KMS rejects a key policy that names a role that does not exist yet (MalformedPolicyDocumentException). "+
		"The handler role is created by this destination stack, which cannot create its grant before the key policy allows it, so no deploy order works on fresh accounts. "+
		"Use KeyPolicyStyle_SCOPED (the default): the same permissions, pinned with aws:PrincipalArn, valid before the roles exist. "+
		"To use the article's statements, deploy once with KeyPolicyStyle_SCOPED (cdk deploy --all, which creates both roles), then switch to KeyPolicyStyle_SEED_ARTICLE and run: cdk deploy --all -c %s=true; got %q without that context value",
		d.SLRArn(), d.GrantCreatorArn, SeedArticleContextKey, props.KeyPolicyStyle)
}

func (a *crossAccountEncryptedAmi) MachineImage() awsec2.IMachineImage {
	return awsec2.MachineImage_GenericLinux(&map[string]*string{a.region: a.props.ImageId}, nil)
}
func (a *crossAccountEncryptedAmi) Grant() kmsgrant.Grant { return a.grant }
func (a *crossAccountEncryptedAmi) ServiceLinkedRoleArn() *string {
	if a.slrArn == "" {
		return nil
	}
	return jsii.String(a.slrArn)
}
func (a *crossAccountEncryptedAmi) KeyPolicyManaged() bool {
	return a.managed || len(a.statements) == 0
}

// GrantDependency returns the construct that holds the grant and the
// service-linked role resource (this one, or the first one of the stack for
// the same key and role): a dependency on it covers both. With grants held
// by several constructs, a group of them.
func (a *crossAccountEncryptedAmi) GrantDependency() constructs.IDependable {
	var deps []constructs.IDependable
	seen := map[constructs.Construct]bool{}
	for _, g := range a.grantees {
		if o := a.owners[g]; !seen[o] {
			seen[o] = true
			deps = append(deps, o)
		}
	}
	if len(deps) == 1 {
		return deps[0]
	}
	return constructs.NewDependencyGroup(deps...)
}

func (a *crossAccountEncryptedAmi) KeyPolicyStatements() *[]awsiam.PolicyStatement {
	out := keystatements.ToCDK(a.statements)
	return &out
}

// DefaultRootDeviceName is the root device of Amazon Linux AMIs.
const DefaultRootDeviceName = launchtemplate.DefaultRootDeviceName

func (a *crossAccountEncryptedAmi) NewLaunchTemplate(scope constructs.Construct, id *string, props *LaunchTemplateProps) awsec2.LaunchTemplate {
	if props == nil {
		props = &LaunchTemplateProps{}
	}
	return launchtemplate.New(scope, id, launchtemplate.Spec{
		Method: "CrossAccountEncryptedAmi.NewLaunchTemplate", Image: a.MachineImage(),
		Describe: "the shared AMI " + jsiivalue.Show(*a.props.ImageId), KmsKeyId: a.props.Key.KeyArn(),
	}, props.LaunchTemplate, props.RootDeviceName)
}

func (a *crossAccountEncryptedAmi) ConfigureAutoScalingGroup(asg awsautoscaling.AutoScalingGroup) {
	asgRegion := awscdk.Stack_Of(asg).Region()
	if !jsiivalue.IsUnresolved(asgRegion) && *asgRegion != a.region {
		panic(fmt.Errorf("CrossAccountEncryptedAmi.ConfigureAutoScalingGroup %s: asg: the Auto Scaling group %s is in region %q, the AMI and its key in %q; they must share one region",
			*a.Node().Path(), *asg.Node().Path(), *asgRegion, a.region))
	}
	owner, ok := a.owners[a.slrArn]
	if !ok || !hasKind(a.launchers, launcher.AutoScaling) {
		panic(fmt.Errorf("CrossAccountEncryptedAmi.ConfigureAutoScalingGroup %s: Launchers: an Auto Scaling group launches with the Auto Scaling service-linked role, which %s does not grant; add %s to Launchers",
			*a.Node().Path(), launcherNames(a.launchers), LauncherKind_AUTO_SCALING))
	}
	asg.Node().AddDependency(owner)
	if a.props.ServiceLinkedRoleSuffix != nil {
		asg.Node().DefaultChild().(awsautoscaling.CfnAutoScalingGroup).SetServiceLinkedRoleArn(jsii.String(a.slrArn))
	}
}

// MaxKeyPolicyBytes is KMS's limit on the size of a key policy.
const MaxKeyPolicyBytes = keybudget.MaxKeyPolicyBytes

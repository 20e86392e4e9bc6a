package encryptedami

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keybudget"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/keypolicy"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/names"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

// OrganizationTarget is the accounts of an AWS Organization, or of some of
// its organizational units and every OU below them: one value, passed to
// NewOrganizationKeyAccess (whose key policy statements let these accounts
// in) and to organization.NewDeployment (whose StackSet deploys to them), so
// that the two cannot disagree.
type OrganizationTarget struct {
	// The organization, o-xxxxxxxxxx.
	OrganizationId *string `field:"required"`
	// OU ids (ou-xxxx-xxxxxxxx) or the organization's root id (r-xxxx). Each
	// covers the accounts of that OU and of every OU below it, at any depth,
	// as a StackSet targeting it does: the key policy gets
	// "o-xxxxxxxxxx/*/ou-xxxx-xxxxxxxx/*" (aws:PrincipalOrgPaths), or
	// "o-xxxxxxxxxx/r-xxxx/*" for the root.
	// Default: - every account of the organization (aws:PrincipalOrgID);
	// organization.NewDeployment needs at least one id.
	OrganizationalUnitIds *[]*string `field:"optional"`
}

// orgTarget reads t's jsii values.
func orgTarget(t *OrganizationTarget) orgtarget.Target {
	return orgtarget.Target{OrganizationID: jsiivalue.String(t.OrganizationId), UnitIDs: jsiivalue.Strings(t.OrganizationalUnitIds)}
}

// OrganizationKeyAccessProps configures organization mode.
type OrganizationKeyAccessProps struct {
	// The source key.
	Key awskms.IKey `field:"required"`
	// The accounts that may launch the AMI.
	Target *OrganizationTarget `field:"required"`
	// Custom suffixes of Auto Scaling service-linked roles the destinations use.
	// Default: - only the default role, AWSServiceRoleForAutoScaling.
	ServiceLinkedRoleSuffixes *[]*string `field:"optional"`
	// The launch paths through a service-linked role that the accounts use;
	// each one's role (in every account) may use the key and receive a grant.
	// Default: []LauncherKind{LauncherKind_AUTO_SCALING} (the statements of
	// the releases before launchers, unchanged).
	Launchers *[]LauncherKind `field:"optional"`
	// Launching roles present in every account under one path and name,
	// "path/name" or "name" (such as "karpenter/KarpenterController"): each
	// account's role of that name may use the key and receive a grant.
	// Default: - none.
	LauncherRoleNames *[]*string `field:"optional"`
}

// OrganizationKeyAccess lets every account of an organization (or of some of
// its OUs) launch the AMI, with key policy statements of constant size.
// Place it next to the key (for a key imported by ARN, in a stack of the
// key's account and region: a keypolicy.ManagedStatements there, construct
// id "KeyPolicy" under it, keeps the statements in the key's policy); in
// each destination of this app, pass it to
// CrossAccountEncryptedAmi as OrganizationKeyAccess (destinations of other
// apps, which import the key by ARN, use KeyPolicyStyle_ORGANIZATION).
type OrganizationKeyAccess interface {
	constructs.Construct
	// The statements placed on the key (or to place, for an imported key).
	KeyPolicyStatements() *[]awsiam.PolicyStatement
	// Whether the statements were added to the key's policy (false for an
	// imported key placed outside its account and region: a synth warning
	// prints them).
	KeyPolicyManaged() bool
	// The key whose policy holds the statements: organization.NewDeployment
	// puts its grants on it.
	Key() awskms.IKey
	// The accounts the statements let in: organization.NewDeployment checks
	// that its StackSet deploys to the same.
	Target() *OrganizationTarget
}

type organizationKeyAccess struct {
	constructs.Construct
	key        awskms.IKey
	keyArn     string // what CrossAccountEncryptedAmi's OrganizationKeyAccess prop is checked against
	target     orgtarget.Target
	statements []amipolicy.Statement
	managed    bool
	// org is what the statements let in: a destination's launchers are
	// checked against it.
	org amipolicy.Organization
}

// NewOrganizationKeyAccess adds the organization's statements to props.Key.
func NewOrganizationKeyAccess(scope constructs.Construct, id *string, props *OrganizationKeyAccessProps) OrganizationKeyAccess {
	path := *scope.Node().Path() + "/" + *id
	fail := func(err error) {
		panic(fmt.Errorf("encryptedami.NewOrganizationKeyAccess %s: %w", path, err))
	}
	if props == nil || props.Key == nil || props.Target == nil {
		fail(fmt.Errorf("Key and Target: required, got props %+v", props))
	}
	target := orgTarget(props.Target)
	if err := target.Validate(); err != nil {
		fail(fmt.Errorf("Target.%v", err))
	}
	keyArn := *props.Key.KeyArn()
	partition := keyPartition(props.Key, keyArn)
	org := amipolicy.Organization{
		Target:              target,
		SLRSuffixes:         jsiivalue.Strings(props.ServiceLinkedRoleSuffixes),
		GrantCreatorPattern: awsid.RoleARN(partition, "*", names.GrantHandlerRolePath, "*"),
		Partition:           partition,
		RoleNames:           jsiivalue.Strings(props.LauncherRoleNames),
		Launchers:           launcher.KindsOf(props.Launchers),
	}
	if err := org.Validate(); err != nil {
		fail(err) // the suffixes: the target is checked above
	}
	for i, suffix := range org.SLRSuffixes {
		if err := awsid.CheckSLRSuffixMistakes(suffix); err != nil {
			fail(fmt.Errorf("ServiceLinkedRoleSuffixes[%d]: %v", i, err))
		}
	}
	statements := amipolicy.OrganizationStatements(org)
	if err := keybudget.Of(provider.EnvOf(scope), props.Key, keyArn).Claim(statements); err != nil {
		fail(err)
	}
	c := constructs.NewConstruct(scope, id)
	o := &organizationKeyAccess{Construct: c, key: props.Key, keyArn: keyArn, target: org.Target, statements: statements, org: org}
	o.managed = placeKeySide(c, props.Key, keyArn, statements, "OrganizationKeyAccess")
	return o
}

// placeKeySide puts the statements of a key-side construct (c, of the
// named kind) where its doc says: on a key of this app, in the key's
// policy; on a key imported by ARN into a stack of the key's account and
// region, through a custom resource of that stack (a
// keypolicy.ManagedStatements, id "KeyPolicy" under c), whose Delete takes
// them out again; anywhere else, a synth warning prints them. It reports
// whether the statements are managed.
func placeKeySide(c constructs.Construct, key awskms.IKey, keyArn string, statements []amipolicy.Statement, kind string) bool {
	if _, ownKey := key.(awskms.Key); !ownKey && inKeysEnv(provider.EnvOf(c), keyArn) {
		keypolicy.NewManagedStatements(c, jsii.String("KeyPolicy"), &keypolicy.ManagedStatementsProps{
			Key:            key,
			StatementsJson: jsii.String(keystatements.CompactJSON(statements)),
		})
		return true
	}
	return keystatements.AddToKeyPolicy(c, key, keyArn, statements,
		"Place the "+kind+" in a stack of the key's account and region to have a custom resource there keep these statements in the key policy")
}

// inKeysEnv reports whether env is the account and region of the key keyArn.
func inKeysEnv(env *provider.StackEnv, keyArn string) bool {
	a, err := awsid.ParseKeyARN(keyArn)
	return err == nil && env.Concrete && env.Account == a.Account && env.Region == a.Region
}

func (o *organizationKeyAccess) KeyPolicyStatements() *[]awsiam.PolicyStatement {
	out := keystatements.ToCDK(o.statements)
	return &out
}
func (o *organizationKeyAccess) KeyPolicyManaged() bool { return o.managed }
func (o *organizationKeyAccess) Key() awskms.IKey       { return o.key }
func (o *organizationKeyAccess) Target() *OrganizationTarget {
	return &OrganizationTarget{
		OrganizationId:        jsii.String(o.target.OrganizationID),
		OrganizationalUnitIds: jsii.Strings(o.target.UnitIDs...),
	}
}

// keyPartition is the partition of key: from its ARN, or, while the ARN is a
// token (a key defined in the app), its stack's (the AWS::Partition
// pseudo parameter when the stack's region is a token). Never a literal
// "aws": a key in aws-cn or aws-us-gov gets statements of its own partition.
func keyPartition(key awskms.IKey, keyArn string) string {
	if !jsiivalue.IsUnresolved(&keyArn) {
		if a, err := awsid.ParseKeyARN(keyArn); err == nil {
			return a.Partition
		}
	}
	return provider.EnvOf(key).Partition
}

// keyAccount is the account of key: from its ARN, or its stack's.
func keyAccount(key awskms.IKey, keyArn string) string {
	if a, err := awsid.ParseKeyARN(keyArn); err == nil {
		return a.Account
	}
	return provider.EnvOf(key).Account
}

// CoversLauncher reports whether the statements let every account's
// launcher of kind (with slrSuffix, for Auto Scaling; roleName, "path/name",
// for launcher.Role) use the key and receive its grant. It is for
// organization.NewDeployment, which checks its Launchers and
// LauncherRoleNames against each KeyAccess item (its parameter types are
// internal to this module).
func (o *organizationKeyAccess) CoversLauncher(kind launcher.Kind, slrSuffix, roleName string) bool {
	l := launcher.Launcher{Kind: kind, SLRSuffix: slrSuffix}
	if kind == launcher.Role {
		path, name, err := amipolicy.SplitRoleName(roleName)
		if err != nil {
			return false
		}
		// Any account stands for each: the patterns name every account's
		// role alike.
		l.RoleARN = awsid.RoleARN(o.org.Partition, "*", path, name)
	}
	return o.org.Covers(l, o.org.Partition, "*")
}

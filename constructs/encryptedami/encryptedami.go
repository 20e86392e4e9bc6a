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
package encryptedami

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/autoscalingrole"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/tokens"
	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
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
	// KMS rejects it while the destination's roles do not exist yet.
	KeyPolicyStyle_SEED_ARTICLE KeyPolicyStyle = KeyPolicyStyle(amipolicy.SeedArticle)
)

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
	// Default: KeyPolicyStyle_SCOPED.
	KeyPolicyStyle KeyPolicyStyle `field:"optional"`
}

// CrossAccountEncryptedAmi is a shared, encrypted AMI made launchable in this stack's account.
type CrossAccountEncryptedAmi interface {
	constructs.Construct
	// The AMI as a machine image for a launch template or an instance.
	MachineImage() awsec2.IMachineImage
	// The AMI id.
	ImageId() *string
	// The source key.
	Key() awskms.IKey
	// The grant for the service-linked role.
	Grant() kmsgrant.KmsGrant
	// The id of the grant for the service-linked role.
	GrantId() *string
	// The ARN of the Auto Scaling service-linked role that receives the grant.
	ServiceLinkedRoleArn() *string
	// Something to depend on so that a resource (an Auto Scaling group) is
	// created only after the service-linked role and the grant exist.
	GrantDependency() constructs.IDependable
	// The statements the source key's policy needs for this destination.
	KeyPolicyStatements() *[]awsiam.PolicyStatement
	// The same statements as JSON, ready for a key policy's Statement list.
	KeyPolicyStatementsJson() *string
	// Whether the statements were added to the key's policy (false for an
	// imported key, whose policy this app cannot edit).
	KeyPolicyManaged() *bool
}

type crossAccountEncryptedAmi struct {
	constructs.Construct
	props      *CrossAccountEncryptedAmiProps
	region     string
	grant      kmsgrant.KmsGrant
	slrArn     string
	statements []amipolicy.Statement
	managed    bool
}

// NewCrossAccountEncryptedAmi places the construct in the destination stack.
// It panics with an error naming the construct path, the prop and the value
// when a prop is invalid; values that are unresolved tokens are checked by
// the handler at deploy time instead.
func NewCrossAccountEncryptedAmi(scope constructs.Construct, id *string, props *CrossAccountEncryptedAmiProps) CrossAccountEncryptedAmi {
	path := *scope.Node().Path() + "/" + *id
	fail := func(err error) {
		panic(fmt.Errorf("encryptedami.NewCrossAccountEncryptedAmi %s: %w", path, err))
	}
	stack := awscdk.Stack_Of(scope)
	dest, err := resolveDestination(stack, props)
	if err != nil {
		fail(err)
	}
	style := amipolicy.Scoped
	if props.KeyPolicyStyle != "" {
		style = amipolicy.Style(props.KeyPolicyStyle)
	}
	statements := amipolicy.Statements(dest, style)
	if err := claimStatements(props.Key, statements); err != nil {
		fail(err)
	}

	c := constructs.NewConstruct(scope, id)
	a := &crossAccountEncryptedAmi{Construct: c, props: props, region: *stack.Region(), slrArn: dest.SLRArn(), statements: statements}

	var slr autoscalingrole.AutoScalingServiceLinkedRole
	if props.CreateServiceLinkedRole == nil || *props.CreateServiceLinkedRole {
		slr = autoscalingrole.NewAutoScalingServiceLinkedRole(c, jsii.String("ServiceLinkedRole"), &autoscalingrole.AutoScalingServiceLinkedRoleProps{
			CustomSuffix: props.ServiceLinkedRoleSuffix,
		})
	}
	a.grant = kmsgrant.NewKmsGrant(c, jsii.String("Grant"), &kmsgrant.KmsGrantProps{
		Key:        props.Key,
		Grantee:    awsiam.NewArnPrincipal(jsii.String(a.slrArn)),
		Operations: jsii.Strings(grantspec.AutoScalingOperations...),
	})
	if slr != nil {
		a.grant.Resource().Node().AddDependency(slr.Resource())
	}

	a.managed = true
	for _, s := range a.cdkStatements() {
		if !*props.Key.AddToResourcePolicy(s, jsii.Bool(true)).StatementAdded {
			a.managed = false
		}
	}
	keyStack := awscdk.Stack_Of(props.Key)
	if a.managed && *keyStack.Node().Path() != *stack.Node().Path() {
		// The key policy must allow the grant before the grant is created.
		stack.AddDependency(keyStack, jsii.String("the source key policy must allow the grant before the destination creates it"))
	}
	if !a.managed {
		awscdk.Annotations_Of(c).AddWarningV2(jsii.String("crossaccountami:key-policy-not-managed"), jsii.String(fmt.Sprintf(
			"The key %s is imported, so this app cannot edit its policy. Add these statements to that key's policy in account %s before deploying this stack (CrossAccountEncryptedAmi.KeyPolicyStatements() returns them): %s",
			*props.Key.KeyArn(), *props.Key.Env().Account, *a.KeyPolicyStatementsJson())), nil)
	}
	return a
}

// resolveDestination validates the props and works out the destination from
// the stack the construct is in.
func resolveDestination(stack awscdk.Stack, props *CrossAccountEncryptedAmiProps) (amipolicy.Destination, error) {
	if props == nil {
		return amipolicy.Destination{}, fmt.Errorf("props: required, got nil")
	}
	if props.Key == nil {
		return amipolicy.Destination{}, fmt.Errorf("Key: required, got nil")
	}
	if props.ImageId == nil {
		return amipolicy.Destination{}, fmt.Errorf("ImageId: required, got nil")
	}
	if !tokens.IsUnresolved(props.ImageId) {
		if err := awsid.ValidateImageID(*props.ImageId); err != nil {
			return amipolicy.Destination{}, fmt.Errorf("ImageId: %v", err)
		}
	}
	switch props.KeyPolicyStyle {
	case "", KeyPolicyStyle_SCOPED, KeyPolicyStyle_SEED_ARTICLE:
	default:
		return amipolicy.Destination{}, fmt.Errorf("KeyPolicyStyle: expected %s or %s, got %q", KeyPolicyStyle_SCOPED, KeyPolicyStyle_SEED_ARTICLE, props.KeyPolicyStyle)
	}
	if keyArn := props.Key.KeyArn(); !tokens.IsUnresolved(keyArn) {
		if _, err := awsid.ParseKeyARN(*keyArn); err != nil {
			return amipolicy.Destination{}, fmt.Errorf("Key: %v", err)
		}
	}
	account, region := stack.Account(), stack.Region()
	if tokens.IsUnresolved(account) || tokens.IsUnresolved(region) {
		return amipolicy.Destination{}, fmt.Errorf("the destination stack %s needs a concrete account and region (env), got account %q and region %q: the source key policy names the destination account", *stack.StackName(), *account, *region)
	}
	keyRegion := props.Key.Env().Region
	if !tokens.IsUnresolved(keyRegion) && *keyRegion != *region {
		return amipolicy.Destination{}, fmt.Errorf("Key: the key is in region %q but the destination stack %s is in %q; an Auto Scaling group can launch an AMI only with a key of its own region (copy the AMI and re-encrypt it with a key in %s)", *keyRegion, *stack.StackName(), *region, *region)
	}
	roleArn, err := provider.RoleArn(stack)
	if err != nil {
		return amipolicy.Destination{}, err
	}
	d := amipolicy.Destination{Partition: awsid.PartitionOfRegion(*region), Account: *account, GrantCreatorArn: roleArn}
	if props.ServiceLinkedRoleSuffix != nil {
		d.SLRSuffix = *props.ServiceLinkedRoleSuffix
		if tokens.IsUnresolved(props.ServiceLinkedRoleSuffix) {
			return amipolicy.Destination{}, fmt.Errorf("ServiceLinkedRoleSuffix: must be known at synth time (the source key policy names the role), got the token %q", d.SLRSuffix)
		}
		if err := awsid.ValidateSLRSuffix(d.SLRSuffix); err != nil {
			return amipolicy.Destination{}, fmt.Errorf("ServiceLinkedRoleSuffix: %v", err)
		}
	}
	return d, nil
}

var (
	claimsMu sync.Mutex
	// claims records, per key, the statements already placed by Sid, so
	// that two constructs for the same destination share identical
	// statements and a clash of Sids with different content fails clearly.
	claims = map[string]map[string]string{}
)

func claimStatements(key awskms.IKey, statements []amipolicy.Statement) error {
	claimsMu.Lock()
	defer claimsMu.Unlock()
	addr := *key.Node().Addr()
	if claims[addr] == nil {
		claims[addr] = map[string]string{}
	}
	for _, s := range statements {
		body, _ := json.Marshal(s)
		if prev, ok := claims[addr][s.Sid]; ok && prev != string(body) {
			return fmt.Errorf("Key: another CrossAccountEncryptedAmi already placed a different statement %q on this key: %s", s.Sid, prev)
		}
		claims[addr][s.Sid] = string(body)
	}
	return nil
}

func (a *crossAccountEncryptedAmi) MachineImage() awsec2.IMachineImage {
	return awsec2.MachineImage_GenericLinux(&map[string]*string{a.region: a.props.ImageId}, nil)
}
func (a *crossAccountEncryptedAmi) ImageId() *string              { return a.props.ImageId }
func (a *crossAccountEncryptedAmi) Key() awskms.IKey              { return a.props.Key }
func (a *crossAccountEncryptedAmi) Grant() kmsgrant.KmsGrant      { return a.grant }
func (a *crossAccountEncryptedAmi) GrantId() *string              { return a.grant.GrantId() }
func (a *crossAccountEncryptedAmi) ServiceLinkedRoleArn() *string { return jsii.String(a.slrArn) }
func (a *crossAccountEncryptedAmi) KeyPolicyManaged() *bool       { return jsii.Bool(a.managed) }

// GrantDependency returns the construct itself (as plain constructs value):
// a dependency on it covers the service-linked role and the grant.
func (a *crossAccountEncryptedAmi) GrantDependency() constructs.IDependable { return a.Construct }

func (a *crossAccountEncryptedAmi) KeyPolicyStatements() *[]awsiam.PolicyStatement {
	out := a.cdkStatements()
	return &out
}

// cdkStatements converts the statements to CDK policy statements.
func (a *crossAccountEncryptedAmi) cdkStatements() []awsiam.PolicyStatement {
	out := make([]awsiam.PolicyStatement, 0, len(a.statements))
	for _, s := range a.statements {
		out = append(out, awsiam.PolicyStatement_FromJson(s.JSON()))
	}
	return out
}

func (a *crossAccountEncryptedAmi) KeyPolicyStatementsJson() *string {
	body, err := json.MarshalIndent(a.statements, "", "  ")
	if err != nil {
		panic(err)
	}
	return jsii.String(string(body))
}

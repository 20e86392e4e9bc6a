// Package kmsgrant provides Grant, the AWS::KMS::Grant that CloudFormation
// lacks: a custom resource that creates a KMS grant, keeps it right on
// update, and removes it on delete.
//
// One Lambda function per stack serves every grant of that stack. By
// default each grant names that function's role as its RetiringPrincipal:
// the handler owns the grant, retires it on delete (KMS authorizes that from
// the grant itself, across accounts) and finds it with
// kms:ListRetirableGrants, so the key policy needs to allow kms:CreateGrant
// only, with conditions that pin the grantee, the operations and the
// retiring principal. The role may create only the grants the stack defines.
//
// With a RetiringPrincipal of your own, the handler cannot retire the grant:
// it revokes it on delete, and looks grants up with kms:ListGrants. The key
// policy must then allow kms:RevokeGrant and kms:ListGrants to the handler's
// role as well; KMS cannot narrow those by grant, so that role can revoke
// and list every grant on the key.
//
// The key's side: a key of another account must allow the handler's role
// to create the grant. On a key of this app in another account, NewGrant
// adds those statements (amipolicy.GrantStatements: the handler's account
// as principal, pinned to its role with aws:PrincipalArn, with every
// condition above, and the encryption-context constraint) to the key's
// policy, counts them against its 32 KB, and makes the grant's stack
// depend on the key's. For a key imported by ARN from another account it
// warns with the statements to apply there (KeyPolicyStatements returns
// them; HandlerRoleArn is the role they name); set KeyPolicyCovered once
// they are. A key of the stack's own account, in any region, needs none:
// the handler role's own IAM policy allows exactly the grant, and a key
// policy that enables IAM policies (the default) makes that enough.
//
// The runnable ExampleNewGrant (go doc -all) grants a role of another
// account Decrypt and DescribeKey on a key, with an encryption context.
package kmsgrant

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/grantres"
	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// GrantProps configures a grant.
type GrantProps struct {
	// The key the grant is on: a key of this app (any stack or account) or an
	// imported one (awskms.Key_FromKeyArn). An alias is not accepted: KMS
	// grants need the key itself.
	Key awskms.IKey `field:"required"`
	// What receives the permissions, as CDK passes grantees: a role, a
	// Lambda function (its role), or a principal such as the Auto Scaling
	// service-linked role (awsiam.NewArnPrincipal). Its GrantPrincipal must
	// stand for exactly one IAM ARN.
	Grantee awsiam.IGrantable `field:"required"`
	// The operations the grant allows, e.g. "Decrypt", "CreateGrant". At
	// least one; each must be a KMS grant operation.
	Operations *[]*string `field:"required"`
	// The principal that may retire the grant. Setting it gives up the
	// handler's ownership: the grant is then revoked on delete, which the key
	// policy must allow (kms:RevokeGrant and kms:ListGrants for the handler
	// role; see the package doc).
	// Default: - the stack's grant handler role, which retires the grant on delete.
	RetiringPrincipal awsiam.IPrincipal `field:"optional"`
	// Grant constraint: cryptographic operations are allowed only with
	// exactly this encryption context. Not together with EncryptionContextSubset.
	// Default: - no constraint.
	EncryptionContextEquals *map[string]*string `field:"optional"`
	// Grant constraint: cryptographic operations are allowed only when the
	// encryption context includes these pairs.
	// Default: - no constraint.
	EncryptionContextSubset *map[string]*string `field:"optional"`
	// The grant name. KMS returns the existing grant when a CreateGrant repeats
	// a name with the same parameters, so a name lets you adopt a grant that
	// already exists.
	// Default: - derived from the stack id and the logical id, unique per stack instance.
	GrantName *string `field:"optional"`
	// Change this value to make the next deploy check that the grant still
	// exists and recreate it if someone revoked it. It does not define the
	// grant: updating it alone makes one ListRetirableGrants call (ListGrants
	// with a RetiringPrincipal of your own), no new grant.
	// Default: - not set; an update that changes nothing that defines the grant makes no KMS call.
	VerifyToken *string `field:"optional"`
	// Check on this schedule that the grant exists, and re-create it under
	// its name if someone revoked it: an EventBridge rule invokes the
	// stack's handler, which logs the result and writes the metrics
	// CrossAccountAmi/GrantRecreated and CrossAccountAmi/GrantCheckFailed
	// (dimension GrantName) that an alarm can watch. Only for a grant the
	// handler owns (no RetiringPrincipal of your own). The check re-creates
	// the grant only while CloudFormation shows the grant's resource alive
	// (DescribeStackResource, which the handler's role may call on its own
	// stack), and retires what it made if the resource's Delete began
	// meanwhile; Delete retires every grant of that name the handler owns:
	// so a check delivered late or twice leaves no grant behind. A revoke
	// lasts only until the next check: to shut an account out for good,
	// the key's owner uses encryptedami.NewKeyAccessCutOff.
	// Default: - no scheduled check.
	HealSchedule awsevents.Schedule `field:"optional"`
	// The key's policy already allows this grant's handler to create the
	// grant: its owner applied KeyPolicyStatements by hand, or a statement
	// of wider scope covers it (encryptedami.NewOrganizationKeyAccess, which
	// organization.NewDeployment's StackSet relies on). NewGrant then adds
	// no statement and prints no warning; KeyPolicyStatements is empty.
	// Default: false: NewGrant places the statements on a key of this app
	// in another account, and warns with them for an imported one.
	KeyPolicyCovered *bool `field:"optional"`
}

// Grant is one KMS grant managed by CloudFormation.
type Grant interface {
	constructs.Construct
	// The grant id, as KMS returned it.
	GrantId() *string
	// The ARN of the key the grant is on.
	KeyArn() *string
	// The CloudFormation custom resource; depend on it to order a resource
	// (such as an Auto Scaling group) after the grant.
	Resource() awscdk.CustomResource
	// The ARN of the role of the stack's grant handler, which creates the
	// grant (and, by default, retires it): what a key policy names to let
	// it. A literal when the stack's account and region are known.
	HandlerRoleArn() *string
	// The statements the key's policy needs for the grant's handler: none
	// for a key of the stack's own account (the handler's IAM policy is
	// enough) or with KeyPolicyCovered. Marshal them with encoding/json
	// (PolicyStatement.ToJSON) to paste into a key policy. Empty for the
	// grants of encryptedami's constructs, which report their own.
	KeyPolicyStatements() *[]awsiam.PolicyStatement
	// Whether the key's policy gets the statements from this app: true for
	// a key of this app and when none are needed; false for an imported
	// key whose statements you apply by hand (a synth warning prints
	// them), and when NewGrant cannot tell the key's account (a warning
	// says so).
	KeyPolicyManaged() bool
}

// NewGrant creates a grant on props.Key for props.Grantee. It panics with
// an error naming the construct path, the prop and the value when a prop is
// invalid; values that are unresolved tokens are checked by the handler at
// deploy time instead.
func NewGrant(scope constructs.Construct, id *string, props *GrantProps) Grant {
	fail := func(err error) {
		panic(fmt.Errorf("kmsgrant.NewGrant %s/%s: %w", *scope.Node().Path(), *id, err))
	}
	spec, err := specFromProps(props)
	if err != nil {
		fail(err)
	}
	plan, err := planKeyPolicy(provider.EnvOf(scope), props, spec)
	if err != nil {
		fail(err)
	}
	g := grantres.New(scope, *id, spec, jsii.String(spec.KeyArn))
	if props.HealSchedule != nil {
		g.Heal(*props.HealSchedule.ExpressionString())
	}
	g.SetKeyPolicy(plan.statements, plan.apply(g.Construct, props.Key))
	return g
}

// specFromProps turns props into the handler's properties, checking every
// value that is known at synth time.
func specFromProps(props *GrantProps) (grantspec.Properties, error) {
	if props == nil {
		return grantspec.Properties{}, fmt.Errorf("props: required, got nil")
	}
	if props.Key == nil {
		return grantspec.Properties{}, fmt.Errorf("Key: required, got nil")
	}
	if props.Grantee == nil {
		return grantspec.Properties{}, fmt.Errorf("Grantee: required, got nil")
	}
	if props.Operations == nil {
		return grantspec.Properties{}, fmt.Errorf("Operations: required, got nil")
	}
	grantee, err := PrincipalArn(props.Grantee.GrantPrincipal())
	if err != nil {
		return grantspec.Properties{}, fmt.Errorf("Grantee: %w", err)
	}
	spec := grantspec.Properties{
		KeyArn:                  *props.Key.KeyArn(),
		GranteePrincipal:        grantee,
		Operations:              derefAll(*props.Operations),
		EncryptionContextEquals: jsiivalue.StringMap(props.EncryptionContextEquals),
		EncryptionContextSubset: jsiivalue.StringMap(props.EncryptionContextSubset),
	}
	if props.RetiringPrincipal != nil {
		if spec.RetiringPrincipal, err = PrincipalArn(props.RetiringPrincipal); err != nil {
			return grantspec.Properties{}, fmt.Errorf("RetiringPrincipal: %w", err)
		}
	}
	if props.HealSchedule != nil && spec.RetiringPrincipal != "" {
		return grantspec.Properties{}, fmt.Errorf("HealSchedule: only a grant the handler owns can be checked (the handler finds it with kms:ListRetirableGrants); got RetiringPrincipal %s", jsiivalue.Show(spec.RetiringPrincipal))
	}
	if props.GrantName != nil {
		if *props.GrantName == "" {
			return grantspec.Properties{}, fmt.Errorf(`GrantName: expected 1 to 256 of a-z A-Z 0-9 : / _ -, got "" (leave GrantName nil for the default name)`)
		}
		spec.Name = *props.GrantName
	}
	if props.VerifyToken != nil {
		spec.VerifyToken = *props.VerifyToken
	}
	if err := validateKnown(spec); err != nil {
		return grantspec.Properties{}, errors.New(propNames.Replace(err.Error()))
	}
	return spec, nil
}

// propNames renames the template properties grantspec's errors name to the
// Go props a user of NewGrant wrote.
var propNames = strings.NewReplacer(
	grantspec.PropKeyArn+":", "Key:",
	grantspec.PropGranteePrincipal+":", "Grantee:",
	grantspec.PropName+":", "GrantName:",
)

// validateKnown applies grantspec's rules to the fields that are not tokens.
// A token stays unchecked here and is checked by the handler when it resolves.
func validateKnown(spec grantspec.Properties) error {
	probe := spec
	// Stand-ins that pass validation for the fields still unresolved.
	if isToken(probe.KeyArn) {
		probe.KeyArn = "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000"
	}
	if isToken(probe.GranteePrincipal) {
		probe.GranteePrincipal = "arn:aws:iam::111111111111:root"
	}
	if isToken(probe.RetiringPrincipal) {
		probe.RetiringPrincipal = "arn:aws:iam::111111111111:root"
	}
	if isToken(probe.Name) {
		probe.Name = "token"
	}
	if slices.ContainsFunc(probe.Operations, isToken) {
		probe.Operations = grantspec.AutoScalingOperations
	}
	return probe.Validate()
}

func isToken(s string) bool { return jsiivalue.IsUnresolved(&s) }

// PrincipalArn returns the single IAM ARN that principal stands for, such as
// a role's ARN or the ARN of an awsiam.NewArnPrincipal.
func PrincipalArn(principal awsiam.IPrincipal) (string, error) {
	fragment := principal.PolicyFragment().PrincipalJson()
	if fragment == nil {
		return "", fmt.Errorf("expected a principal with one IAM ARN, got none")
	}
	arns := (*fragment)["AWS"]
	if arns == nil || len(*arns) != 1 || len(*fragment) != 1 {
		return "", fmt.Errorf("expected a principal with exactly one IAM ARN (a role, user or awsiam.NewArnPrincipal), got %v", show(*fragment))
	}
	return *(*arns)[0], nil
}

func show(m map[string]*[]*string) string {
	out := map[string][]string{}
	for k, v := range m {
		if v != nil {
			out[k] = derefAll(*v)
		}
	}
	return fmt.Sprint(out)
}

// derefAll keeps a nil item as "", unlike jsiivalue.Strings: a nil operation
// then fails grantspec's validation by name instead of vanishing.
func derefAll(in []*string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != nil {
			out = append(out, *s)
		} else {
			out = append(out, "")
		}
	}
	return out
}

package amicopy

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keybudget"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/names"
)

// CopySourceKeyAccessProps configures NewCopySourceKeyAccess.
type CopySourceKeyAccessProps struct {
	// The source key: a key of this app (its policy is edited) or an
	// imported one (a synth warning prints the statements). Not an alias.
	Key awskms.IKey `field:"required"`
	// The destination accounts whose copies may read the key's snapshots
	// (KeyPolicyStyle_ACCOUNTS): two statements that grow by about 15 bytes
	// per account. Not together with OrganizationId.
	// Default: - none; then OrganizationId is required.
	Accounts *[]*string `field:"optional"`
	// The organization (o-…) whose accounts' copies may read the key's
	// snapshots (KeyPolicyStyle_ORGANIZATION): two statements of constant
	// size. Not together with Accounts.
	// Default: - none; then Accounts is required.
	OrganizationId *string `field:"optional"`
}

// CopySourceKeyAccess lets the copier roles of many destinations read a
// source key's snapshots with two statements, instead of two per
// destination (CopiedAmiProps.SourceKeyAccess links a copy to it).
type CopySourceKeyAccess interface {
	constructs.Construct
	// The statements placed on the key (or to place, for an imported key).
	KeyPolicyStatements() *[]awsiam.PolicyStatement
	// Whether the statements were added to the key's policy (false for an
	// imported key: a synth warning prints them).
	KeyPolicyManaged() bool
	// The key whose policy holds the statements.
	Key() awskms.IKey
}

type copySourceKeyAccess struct {
	constructs.Construct
	key        awskms.IKey
	keyArn     string
	scope      amipolicy.CopierScope
	statements []amipolicy.Statement
	managed    bool
}

// NewCopySourceKeyAccess places, next to the source key (in its stack),
// the statements that let the copier role of every listed account, or of
// every account of an organization, read the key's snapshots while it
// copies an AMI: amipolicy.CopySourcePatternStatements (the copier roles
// matched by their path, /crossaccountami/, with aws:PrincipalArn; reads
// and kms:CreateGrant only with kms:GrantIsForAWSResource). It panics with
// an error naming the prop and the value when a prop is invalid.
func NewCopySourceKeyAccess(scope constructs.Construct, id *string, props *CopySourceKeyAccessProps) CopySourceKeyAccess {
	fail := func(err error) {
		panic(fmt.Errorf("amicopy.NewCopySourceKeyAccess %s/%s: %w", *scope.Node().Path(), *id, err))
	}
	if props == nil {
		fail(fmt.Errorf("props: required, got nil"))
	}
	if props.Key == nil {
		fail(fmt.Errorf("Key: required, got nil"))
	}
	if _, ok := props.Key.(awskms.IAlias); ok {
		fail(fmt.Errorf("Key: expected the key itself, got an alias (%s): a key policy belongs to the key (...:key/<key id>)", registry.Path(props.Key)))
	}
	env := provider.EnvOf(scope)
	keyArn := *props.Key.KeyArn()
	partition := env.Partition
	if !jsiivalue.IsUnresolved(&keyArn) {
		arn, err := awsid.ParseKeyARN(keyArn)
		if err != nil {
			fail(fmt.Errorf("Key: %v", err))
		}
		partition = arn.Partition
	}
	s := amipolicy.CopierScope{
		Name: *id, Partition: partition,
		Accounts:       jsiivalue.Strings(props.Accounts),
		OrganizationID: jsiivalue.String(props.OrganizationId),
		CopierPattern:  awsid.RoleARN(partition, "*", names.GrantHandlerRolePath, "*"),
	}
	for i, a := range s.Accounts {
		if jsiivalue.IsUnresolved(&a) {
			fail(fmt.Errorf("Accounts[%d]: must be known at synth time (the key policy names it), got %s", i, jsiivalue.DeployTime))
		}
	}
	if jsiivalue.IsUnresolved(&s.OrganizationID) {
		fail(fmt.Errorf("OrganizationId: must be known at synth time (the key policy names it), got %s", jsiivalue.DeployTime))
	}
	if err := s.Validate(); err != nil {
		fail(err)
	}
	statements := amipolicy.CopySourcePatternStatements(s)
	if err := keybudget.Of(env, props.Key, keyArn).Claim(statements); err != nil {
		fail(err)
	}
	c := registry.Child(scope, *id)
	a := &copySourceKeyAccess{Construct: c, key: props.Key, keyArn: keyArn, scope: s, statements: statements}
	a.managed = keystatements.AddToKeyPolicy(c, props.Key, keyArn, statements,
		"Place a keypolicy.NewManagedStatements with these statements in a stack of the key's account and region to have a custom resource there keep them in the key policy")
	return a
}

func (a *copySourceKeyAccess) KeyPolicyStatements() *[]awsiam.PolicyStatement {
	out := keystatements.ToCDK(a.statements)
	return &out
}
func (a *copySourceKeyAccess) KeyPolicyManaged() bool { return a.managed }
func (a *copySourceKeyAccess) Key() awskms.IKey       { return a.key }

// covers checks that access is on keyArn and lets account's copier in.
func (a *copySourceKeyAccess) covers(keyArn, account string) error {
	if a.keyArn != keyArn {
		return fmt.Errorf("SourceKeyAccess: it is on %s (%s), but SourceKey is %s; they must be the same key", describeArn(a.keyArn), registry.Path(a), describeArn(keyArn))
	}
	if a.scope.OrganizationID != "" {
		return nil // membership is known only at request time (aws:PrincipalOrgID)
	}
	for _, x := range a.scope.Accounts {
		if x == account {
			return nil
		}
	}
	return fmt.Errorf("SourceKeyAccess: %s lists the accounts %v, not this stack's account %s: add it to its Accounts", registry.Path(a), a.scope.Accounts, account)
}

func describeArn(arn string) string {
	if jsiivalue.IsUnresolved(&arn) {
		return "a key of this app"
	}
	return "the key " + arn
}

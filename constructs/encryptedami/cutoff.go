package encryptedami

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keybudget"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
)

// KeyAccessCutOffProps names the accounts to shut out of a key.
type KeyAccessCutOffProps struct {
	// The source key.
	Key awskms.IKey `field:"required"`
	// The 12-digit ids of the destination accounts to shut out. Not the
	// key's own account.
	Accounts *[]*string `field:"required"`
}

// KeyAccessCutOff is the key owner's durable cut-off of some destination
// accounts: an explicit Deny in the key policy, for every principal of those
// accounts, of kms:CreateGrant and every use of the key
// (amipolicy.CutOffStatement). An explicit Deny beats every Allow, from the
// key policy (the SCOPED or ORGANIZATION statements), an IAM policy or a
// grant, so no scheduled check can undo it: a re-created grant would not
// work, and the destination's handler cannot create one. It stays until the
// construct is removed and its stack deployed again.
//
// Place it like NewOrganizationKeyAccess: next to a key of this app (the
// statement joins its policy), or, for a key imported by ARN, in a stack of
// the key's account and region (a keypolicy.ManagedStatements, construct id
// "KeyPolicy" under it, keeps the statement in the key's policy); anywhere
// else a synth warning prints the statement to add by hand. It counts
// against the key policy's 32 KB like the destinations' statements.
//
// The cut-off is the first step of the key owner's emergency runbook
// (SECURITY.md): deploy it, then revoke the accounts' grants.
type KeyAccessCutOff interface {
	constructs.Construct
	// The statement placed on the key (or to place, for an imported key).
	KeyPolicyStatements() *[]awsiam.PolicyStatement
	// Whether the statement was added to the key's policy (false for an
	// imported key placed outside its account and region: a synth warning
	// prints it).
	KeyPolicyManaged() bool
}

type keyAccessCutOff struct {
	constructs.Construct
	statements []amipolicy.Statement
	managed    bool
}

// NewKeyAccessCutOff adds the cut-off of props.Accounts to props.Key.
func NewKeyAccessCutOff(scope constructs.Construct, id *string, props *KeyAccessCutOffProps) KeyAccessCutOff {
	path := *scope.Node().Path() + "/" + *id
	fail := func(err error) {
		panic(fmt.Errorf("encryptedami.NewKeyAccessCutOff %s: %w", path, err))
	}
	if props == nil {
		fail(fmt.Errorf("props: required, got nil"))
	}
	if props.Key == nil {
		fail(fmt.Errorf("Key: required, got nil"))
	}
	if props.Accounts == nil {
		fail(fmt.Errorf("Accounts: required, got nil"))
	}
	keyArn := *props.Key.KeyArn()
	owner := keyAccount(props.Key, keyArn)
	if jsiivalue.IsUnresolved(&owner) {
		owner = "" // an environment-agnostic key stack: checked by KMS alone
	}
	cut := amipolicy.CutOff{Name: *id, Accounts: jsiivalue.Strings(props.Accounts), KeyAccount: owner}
	if err := cut.Validate(); err != nil {
		fail(fmt.Errorf("Accounts: %v; got %q", err, cut.Accounts))
	}
	statements := []amipolicy.Statement{amipolicy.CutOffStatement(cut)}
	env := provider.EnvOf(scope)
	if err := keybudget.Of(env, props.Key, keyArn).Claim(statements); err != nil {
		fail(err)
	}
	c := constructs.NewConstruct(scope, id)
	o := &keyAccessCutOff{Construct: c, statements: statements}
	o.managed = placeKeySide(c, props.Key, keyArn, statements, "KeyAccessCutOff")
	return o
}

func (o *keyAccessCutOff) KeyPolicyStatements() *[]awsiam.PolicyStatement {
	out := keystatements.ToCDK(o.statements)
	return &out
}

func (o *keyAccessCutOff) KeyPolicyManaged() bool { return o.managed }

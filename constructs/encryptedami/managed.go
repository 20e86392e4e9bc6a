package encryptedami

import (
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/constructs/keypolicy"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

// manageKeyPolicy places a keypolicy.ManagedStatements for this
// destination's statements in scope's stack (the key's account; styleOf
// checked that the key is imported and that there are statements) and makes
// this construct's stack depend on scope's. Its construct id is
// "KeyPolicy-<this construct's path, / as ->".
func (a *crossAccountEncryptedAmi) manageKeyPolicy(scope constructs.Construct) {
	id := "KeyPolicy-" + strings.ReplaceAll(registry.Path(a.Construct), "/", "-")
	a.keyPolicy = keypolicy.NewManagedStatements(scope, jsii.String(id), &keypolicy.ManagedStatementsProps{
		Key:            a.props.Key,
		StatementsJson: jsii.String(keystatements.CompactJSON(a.statements)),
	})
	a.managed = true
	dependOnKeyPolicy(awscdk.Stack_Of(a.Construct), awscdk.Stack_Of(scope), "the key policy statements must exist before the destination creates its grant")
}

func (a *crossAccountEncryptedAmi) ManagedKeyPolicy() keypolicy.ManagedStatements { return a.keyPolicy }

// placedStatements are statements as they land in the key policy, for the
// key's budget. With KeyPolicyScope, the Custom::KmsKeyPolicyStatements of
// that stack writes each with the stack's mark at the end of its Sid
// (keypolicyspec.SidSuffix): longer statements, and copies of their own
// next to another stack's or a hand-applied one.
func placedStatements(props *CrossAccountEncryptedAmiProps, statements []amipolicy.Statement) []amipolicy.Statement {
	if props == nil || props.KeyPolicyScope == nil || len(statements) == 0 {
		return statements
	}
	scope := provider.EnvOf(props.KeyPolicyScope)
	if !scope.Concrete {
		return statements // keypolicy.NewManagedStatements refuses it, saying why
	}
	suffix := keypolicyspec.SidSuffix(scope.Account, scope.Region, scope.Name)
	out := slices.Clone(statements)
	for i := range out {
		out[i].Sid += suffix
	}
	return out
}

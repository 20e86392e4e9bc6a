package encryptedami

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/keypolicy"
)

// notManagedWarning is the id of the synth warning for an imported key.
const notManagedWarning = "crossaccountami:key-policy-not-managed"

// ManageKeyPolicy places a keypolicy.ManagedStatements for this
// destination's statements in scope's stack (the key's account), withdraws
// the synth warning, and makes this construct's stack depend on scope's.
// Its construct id is "KeyPolicy-<this construct's path, / as ->".
func (a *crossAccountEncryptedAmi) ManageKeyPolicy(scope constructs.Construct) keypolicy.ManagedStatements {
	path := *a.Node().Path()
	fail := func(err error) {
		panic(fmt.Errorf("CrossAccountEncryptedAmi.ManageKeyPolicy %s: scope: %w", path, err))
	}
	switch {
	case scope == nil:
		fail(fmt.Errorf("required (a stack in the key's account), got nil"))
	case a.managed:
		fail(fmt.Errorf("the key policy is already managed (the key is defined in this app, or ManageKeyPolicy was called before), got a call for %s", *scope.Node().Path()))
	case len(a.statements) == 0:
		fail(fmt.Errorf("KeyPolicyStyle_ORGANIZATION adds no statements for this destination (an OrganizationKeyAccess covers it), got a call for %s", *scope.Node().Path()))
	}
	id := "KeyPolicy-" + strings.ReplaceAll(path, "/", "-")
	m := keypolicy.NewManagedStatements(scope, jsii.String(id), &keypolicy.ManagedStatementsProps{
		Key:            a.props.Key,
		StatementsJson: jsii.String(compactJSON(a.statements)),
	})
	a.managed = true
	awscdk.Annotations_Of(a.Construct).AcknowledgeWarning(jsii.String(notManagedWarning), jsii.String("managed by "+*m.Node().Path()))
	here, there := awscdk.Stack_Of(a.Construct), awscdk.Stack_Of(scope)
	if here != there && awscdk.Stage_Of(here) == awscdk.Stage_Of(there) {
		here.AddStackDependency(there, jsii.String("the key policy statements must exist before the destination creates its grant"))
	}
	return m
}

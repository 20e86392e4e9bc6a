package kmsgrant

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/keybudget"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// KeyAccountUnknownWarning is the id of the synth warning for a grant
// whose key's account, or whose own stack's account, is a deploy-time
// value: NewGrant cannot tell whether the key's policy must allow the
// handler, nor write the statement that would.
const KeyAccountUnknownWarning = "crossaccountami:key-account-unknown"

// keyPlan is what a grant needs on its key's policy.
type keyPlan struct {
	statements []amipolicy.Statement // for a key of another account
	keyArn     string
	keyAccount string
	unknown    bool   // the key's or the stack's account is a token
	tokenProp  string // an imported key's statement names this deploy-time value
	roleArn    string
}

// planKeyPolicy works out the key policy statements the grant's handler
// needs, before anything is created, so that a bad value fails first.
//
// A key in the grant stack's own account needs none: the handler's role
// gets kms:CreateGrant on the key, with the same conditions, in an IAM
// policy of its own (provider.AllowGrant), and a key policy that lets the
// account's IAM policies in (the default key policy, which CDK's
// awskms.NewKey writes too) makes that enough
// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
// The region does not matter: IAM policies and key policies are the same
// in every region of an account. A key of another account needs the key
// policy to allow the handler as well
// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
func planKeyPolicy(env *provider.StackEnv, props *GrantProps, spec grantspec.Properties) (keyPlan, error) {
	plan := keyPlan{keyArn: spec.KeyArn}
	if props.KeyPolicyCovered != nil && *props.KeyPolicyCovered {
		return plan, nil
	}
	keyEnv := (*provider.StackEnv)(nil)
	_, ownKey := props.Key.(awskms.Key)
	if ownKey {
		keyEnv = provider.EnvOf(props.Key)
	}
	partition := env.Partition
	if !isToken(spec.KeyArn) {
		arn, err := awsid.ParseKeyARN(spec.KeyArn)
		if err != nil {
			return plan, fmt.Errorf("Key: %v", err)
		}
		plan.keyAccount, partition = arn.Account, arn.Partition
	} else if keyEnv != nil && !isToken(keyEnv.Account) {
		plan.keyAccount, partition = keyEnv.Account, keyEnv.Partition
	}
	switch {
	case keyEnv == env:
		return plan, nil // a key of the grant's own stack: one account
	case keyEnv != nil && isToken(keyEnv.Account) && isToken(env.Account):
		// Two environment-agnostic stacks of one app: CDK deploys both
		// to the CLI's account, and references between them work only
		// there.
		return plan, nil
	case plan.keyAccount == "" || isToken(env.Account):
		plan.unknown = true
		return plan, nil
	case plan.keyAccount == env.Account:
		return plan, nil
	}
	roleArn, err := env.RoleArn()
	if err != nil {
		return plan, err
	}
	plan.roleArn = roleArn
	g := amipolicy.Grant{
		Partition: partition, HandlerAccount: env.Account, HandlerRoleArn: roleArn,
		GranteePrincipal: spec.GranteePrincipal, RetiringPrincipal: spec.RetiringPrincipal,
		Operations:              spec.Operations,
		EncryptionContextEquals: spec.EncryptionContextEquals,
		EncryptionContextSubset: spec.EncryptionContextSubset,
	}
	if g.RetiringPrincipal == "" {
		g.RetiringPrincipal = roleArn
	}
	// The key's policy, in another account, names these. For a key of
	// this app they must be known at synth: a reference to this stack
	// would make a cycle (this stack depends on the key's). For an
	// imported key the warning then describes the statement in words, as
	// its JSON would show token text.
	values := map[string]string{"Grantee": g.GranteePrincipal, "RetiringPrincipal": g.RetiringPrincipal}
	for i, op := range g.Operations {
		values[fmt.Sprintf("Operations[%d]", i)] = op
	}
	for name, pairs := range map[string]map[string]string{"EncryptionContextEquals": g.EncryptionContextEquals, "EncryptionContextSubset": g.EncryptionContextSubset} {
		for k, v := range pairs {
			values[name+"["+k+"]"] = v
		}
	}
	for _, prop := range slices.Sorted(maps.Keys(values)) {
		if !isToken(values[prop]) {
			continue
		}
		if ownKey {
			return plan, fmt.Errorf("%s: the policy of %s, in account %s, must name it, so it must be known at synth time (import a role with awsiam.Role_FromRoleArn, or use awsiam.NewArnPrincipal with a literal ARN), got a deploy-time value", prop, keystatements.DescribeKey(props.Key, spec.KeyArn), plan.keyAccount)
		}
		plan.tokenProp = prop
		break
	}
	plan.statements = amipolicy.GrantStatements(g)
	if err := keybudget.Of(env, props.Key, spec.KeyArn).Claim(plan.statements); err != nil {
		return plan, err
	}
	return plan, nil
}

// apply places the plan's statements: on a key of this app, in its policy,
// with the grant's stack depending on the key's; for an imported key, in a
// warning on c (the not-managed warning of encryptedami). It reports
// whether this app keeps the statements (true when there are none).
func (plan keyPlan) apply(c constructs.Construct, key awskms.IKey) bool {
	if plan.unknown {
		awscdk.Annotations_Of(c).AddWarningV2(jsii.String(KeyAccountUnknownWarning), jsii.String(fmt.Sprintf(
			"Key: NewGrant cannot tell whether %s is in this stack's account (%s is a deploy-time value), so it adds no key policy statement for the grant. "+
				"If the key is in another account, its policy must allow this stack's grant handler role to create the grant (KeyPolicyStatements() returns the statements once the stack's env and the key's ARN are known): "+
				"set env on the stack and import the key by its literal ARN, or set KeyPolicyCovered to true when the key's policy allows the grant already",
			keystatements.DescribeKey(key, plan.keyArn), unknownWhat(plan))), nil)
		return false
	}
	if len(plan.statements) == 0 {
		return true
	}
	if plan.tokenProp != "" {
		awscdk.Annotations_Of(c).AddWarningV2(jsii.String(keystatements.NotManagedWarning), jsii.String(fmt.Sprintf(
			"%s is imported, so this app does not edit its policy, and its statement for this grant names %s, a deploy-time value, so it cannot be printed here. "+
				"Before deploying this stack, the key's owner in account %s must allow kms:CreateGrant to %s (principal the account root with aws:PrincipalArn, as KeyPolicyStatements() returns it once resolved) for this grant's grantee, retiring principal and operations; then set KeyPolicyCovered to true, which silences this warning",
			upperFirst(keystatements.DescribeKey(key, plan.keyArn)), plan.tokenProp, plan.keyAccount, plan.roleArn)), nil)
		return false
	}
	managed := keystatements.AddToKeyPolicy(c, key, plan.keyArn, plan.statements,
		"Place a keypolicy.NewManagedStatements with these statements in a stack of account "+plan.keyAccount+" and the key's region to have a custom resource there keep them in the key policy (then set KeyPolicyCovered to true, which silences this warning)")
	if managed {
		keystatements.DependOnKeyPolicy(awscdk.Stack_Of(c), awscdk.Stack_Of(key), "the key policy must allow the grant handler before it creates the grant")
	}
	return managed
}

// unknownWhat says which account is a deploy-time value.
func unknownWhat(plan keyPlan) string {
	if plan.keyAccount == "" {
		return "the key's account"
	}
	return "this stack's account"
}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

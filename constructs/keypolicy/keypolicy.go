// Package keypolicy provides ManagedStatements: statements this app keeps
// in the policy of a KMS key it does not own (a key imported by ARN, such as
// an image pipeline's key created long ago outside CDK).
//
// A custom resource in the key's account reads the key policy, merges the
// statements by Sid, writes it back and verifies it (see
// internal/keypolicylifecycle). Statements with other Sids, the key owner's,
// are never dropped, reordered or rewritten. Delete removes exactly this
// resource's Sids.
//
// Place it in a stack of the key's account: KMS allows PutKeyPolicy only
// there. The handler's role gets kms:GetKeyPolicy and kms:PutKeyPolicy on the
// key through its IAM policy, which takes effect when the key policy
// delegates to IAM (KMS's default "Enable IAM User Permissions" statement);
// otherwise the key's owner adds a statement for RoleArn() once.
package keypolicy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/constructs/internal/tokens"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

// ManagedStatementsProps configures the statements.
type ManagedStatementsProps struct {
	// The key whose policy receives the statements: a key imported by ARN
	// (awskms.Key_FromKeyArn), in this stack's account. Not a key defined in
	// this app (CloudFormation owns that key's policy: use its
	// AddToResourcePolicy), not an alias.
	Key awskms.IKey `field:"required"`
	// The statements. Each needs a Sid, known at synth time and unique in
	// the key policy: the Sid is how the handler finds its statements again.
	// Default: - none; StatementsJson must then hold at least one.
	Statements *[]awsiam.PolicyStatement `field:"optional"`
	// More statements, as a JSON array (such as
	// CrossAccountEncryptedAmi.KeyPolicyStatementsJson()).
	// Default: - none.
	StatementsJson *string `field:"optional"`
}

// ManagedStatements is a set of statements kept in a key policy the app does not own.
type ManagedStatements interface {
	constructs.Construct
	// The custom resource (Custom::KmsKeyPolicyStatements); depend on it to
	// order a resource after the statements are in place.
	Resource() awscdk.CustomResource
	// The Sids of the managed statements.
	Sids() *[]*string
	// The ARN of the handler role that edits the key policy, for a key
	// policy that does not delegate to IAM.
	RoleArn() *string
}

type managedStatements struct {
	constructs.Construct
	resource awscdk.CustomResource
	sids     []string
	roleArn  string
}

func (m *managedStatements) Resource() awscdk.CustomResource { return m.resource }
func (m *managedStatements) Sids() *[]*string                { return jsii.Strings(m.sids...) }
func (m *managedStatements) RoleArn() *string                { return jsii.String(m.roleArn) }

// NewManagedStatements adds the statements to props.Key's policy through a
// custom resource in scope's stack. It panics with an error naming the
// construct path, the prop and the value when a prop is invalid.
func NewManagedStatements(scope constructs.Construct, id *string, props *ManagedStatementsProps) ManagedStatements {
	fail := func(err error) {
		panic(fmt.Errorf("keypolicy.NewManagedStatements %s/%s: %w", *scope.Node().Path(), *id, err))
	}
	env := provider.EnvOf(scope)
	spec, err := specFromProps(env, props)
	if err != nil {
		fail(err)
	}
	if err := claim(scope, spec); err != nil {
		fail(err)
	}
	c := constructs.NewConstruct(scope, id)
	src := provider.SourceOf(c)
	cfnProps := spec.CfnProperties()
	if stmts := keypolicyspec.StatementsJSON(spec.Statements); tokens.IsUnresolved(&stmts) {
		// A value that resolves at deploy time (such as the partition in
		// an account principal's ARN): CloudFormation renders the JSON.
		var doc interface{}
		_ = json.Unmarshal([]byte(stmts), &doc)
		cfnProps[keypolicyspec.PropStatements] = awscdk.Stack_Of(c).ToJsonString(doc, nil)
	}
	resource := awscdk.NewCustomResource(c, jsii.String("Resource"), &awscdk.CustomResourceProps{
		ResourceType:   jsii.String(keypolicyspec.ResourceType),
		ServiceToken:   src.Function.FunctionArn(),
		ServiceTimeout: provider.ServiceTimeout(),
		Properties:     &cfnProps,
	})
	src.AllowKeyPolicyOn(c, resource, props.Key.KeyArn())
	roleArn, _ := src.RoleArn()
	return &managedStatements{Construct: c, resource: resource, sids: keypolicyspec.Sids(spec.Statements), roleArn: roleArn}
}

func specFromProps(env *provider.StackEnv, props *ManagedStatementsProps) (keypolicyspec.Properties, error) {
	if props == nil {
		return keypolicyspec.Properties{}, fmt.Errorf("props: required, got nil")
	}
	if props.Key == nil {
		return keypolicyspec.Properties{}, fmt.Errorf("Key: required, got nil")
	}
	if _, owned := props.Key.(awskms.Key); owned {
		return keypolicyspec.Properties{}, fmt.Errorf("Key: %s is defined in this app, so CloudFormation owns its policy and would undo these statements: add them with the key's AddToResourcePolicy instead, got the key %s", *props.Key.Node().Path(), *props.Key.Node().Path())
	}
	keyArn := props.Key.KeyArn()
	if tokens.IsUnresolved(keyArn) {
		return keypolicyspec.Properties{}, fmt.Errorf("Key: the key ARN must be known at synth time (import the key with awskms.Key_FromKeyArn and a literal ARN), got the token %q", *keyArn)
	}
	arn, err := awsid.ParseKeyARN(*keyArn)
	if err != nil {
		return keypolicyspec.Properties{}, fmt.Errorf("Key: %v", err)
	}
	if !env.Concrete {
		return keypolicyspec.Properties{}, fmt.Errorf("the stack %s needs a concrete account and region (env), got account %q and region %q: it must be the key's account", env.Path, env.Account, env.Region)
	}
	if arn.Account != env.Account {
		return keypolicyspec.Properties{}, fmt.Errorf("Key: the key %s is in account %s but the stack %s is in account %s; KMS allows PutKeyPolicy only in the key's own account: place this construct in a stack of account %s", *keyArn, arn.Account, env.Path, env.Account, arn.Account)
	}
	var parts []string
	if props.Statements != nil {
		for i, s := range *props.Statements {
			if s == nil {
				return keypolicyspec.Properties{}, fmt.Errorf("Statements: item %d is nil", i)
			}
			body, err := json.Marshal(s.ToStatementJson())
			if err != nil {
				return keypolicyspec.Properties{}, fmt.Errorf("Statements: item %d: %v", i, err)
			}
			parts = append(parts, string(body))
		}
	}
	if props.StatementsJson != nil {
		var items []json.RawMessage
		if err := json.Unmarshal([]byte(*props.StatementsJson), &items); err != nil {
			return keypolicyspec.Properties{}, fmt.Errorf("StatementsJson: expected a JSON array of statements, got %.200q: %v", *props.StatementsJson, err)
		}
		for _, it := range items {
			parts = append(parts, string(it))
		}
	}
	if len(parts) == 0 {
		return keypolicyspec.Properties{}, fmt.Errorf("Statements or StatementsJson: at least one statement is required, got none")
	}
	all := "[" + strings.Join(parts, ",") + "]"
	stmts, err := keypolicyspec.ParseStatements(all)
	if err != nil {
		return keypolicyspec.Properties{}, fmt.Errorf("Statements: %v", err)
	}
	p := keypolicyspec.Properties{KeyArn: *keyArn, Statements: stmts}
	if err := p.Validate(); err != nil {
		return keypolicyspec.Properties{}, err
	}
	return p, nil
}

// claim refuses two resources of one stack that would write one Sid on one key.
func claim(scope constructs.Construct, p keypolicyspec.Properties) error {
	owners := registry.Get(scope, "keypolicy-sids", func(awscdk.Stack) map[string]string { return map[string]string{} })
	for _, s := range p.Statements {
		if prev, ok := owners[p.KeyArn+"\x00"+s.Sid]; ok {
			return fmt.Errorf("Statements: the Sid %q is already managed on %s by %s; one Sid belongs to one resource", s.Sid, p.KeyArn, prev)
		}
	}
	for _, s := range p.Statements {
		owners[p.KeyArn+"\x00"+s.Sid] = *scope.Node().Path()
	}
	return nil
}

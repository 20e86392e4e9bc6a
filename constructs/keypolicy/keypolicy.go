// Package keypolicy provides ManagedStatements: statements this app keeps
// in the policy of a KMS key it does not own (a key imported by ARN, such as
// an image pipeline's key created long ago outside CDK).
//
// A custom resource in the key's account reads the key policy
// (GetKeyPolicy), merges the statements by Sid, writes it back
// (PutKeyPolicy, never with BypassPolicyLockoutSafetyCheck) and reads it
// again to verify, in at most 5 rounds when another writer interferes; a
// merged policy over 32 KB fails with its size. Statements with other Sids,
// the key owner's, are never dropped, reordered or rewritten. Create adds
// its Sids, Update replaces only its own, Delete removes exactly this
// resource's Sids; a Create that fails after writing lets its rollback
// remove what it added. README.md ("Keys and AMIs the app does not own")
// and SECURITY.md ("The source side") say what the handler may do.
//
// Every Sid it writes ends with the mark of its stack, " [crossaccountami
// <8 hex>]" (keypolicyspec.SidSuffix: a hash of the stack's account, region
// and name), so the key policy shows which statements a stack owns: a
// statement given with Sid "Allow audit" lands in the key policy as
// "Allow audit [crossaccountami 1a2b3c4d]", and Sids() returns that. A
// statement someone applied by hand under the unmarked Sid (such as one
// copied from CrossAccountEncryptedAmi's synth warning) is never adopted,
// rewritten or removed; the managed copy sits beside it until a person
// removes the hand-made one.
//
// One writer per key: all the statements one stack keeps on one key go
// through a single Custom::KmsKeyPolicyStatements, however many
// ManagedStatements (or CrossAccountEncryptedAmiProps.KeyPolicyScope)
// contribute them. KMS has no conditional write, so two resources writing
// one key policy at the same time (CloudFormation runs independent
// resources in parallel) could each read the same policy and the second
// write would drop the first one's statements. Across stacks or apps that
// race remains; see SECURITY.md.
//
// Setting the context value crossaccountami:keyPolicyRevision to a new value
// makes the next deploy write every statement again (an Update), such as
// after someone removed one by hand.
//
// Place it in a stack of the key's account: KMS allows PutKeyPolicy only
// there. The handler's role gets kms:GetKeyPolicy and kms:PutKeyPolicy on the
// key through its IAM policy, which takes effect when the key policy
// delegates to IAM (KMS's default "Enable IAM User Permissions" statement);
// otherwise the key's owner adds a statement for RoleArn() once.
//
// The runnable ExampleNewManagedStatements (go doc -all) keeps an auditor's
// statement in the policy of a key imported by ARN.
package keypolicy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
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
	// CrossAccountEncryptedAmi.KeyPolicyStatements() marshalled to JSON).
	// Default: - none.
	StatementsJson *string `field:"optional"`
}

// ManagedStatements is a set of statements kept in a key policy the app does not own.
type ManagedStatements interface {
	constructs.Construct
	// The custom resource (Custom::KmsKeyPolicyStatements) that keeps these
	// statements, and every other statement this stack keeps on the key;
	// depend on it to order a resource after the statements are in place.
	Resource() awscdk.CustomResource
	// The Sids of the managed statements as they are in the key policy:
	// each ends with the stack's mark (keypolicyspec.SidSuffix).
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
	writers := writersOf(env.Stack)
	if w := writers[spec.KeyArn]; w != nil {
		if _, _, err := w.merged(spec.Statements); err != nil {
			fail(err)
		}
	}
	c := registry.Child(scope, *id)
	w := writers.of(env.Stack, props.Key, spec.KeyArn)
	w.add(registry.Path(c), spec.Statements)
	roleArn, err := provider.SourceOf(scope).RoleArn()
	if err != nil {
		// specFromProps rejected a stack without a concrete account and
		// region, the only case RoleArn fails on: this is a bug.
		fail(fmt.Errorf("the source handler role's ARN: %w", err))
	}
	sids := keypolicyspec.Sids(spec.Statements)
	for i := range sids {
		sids[i] += w.sidSuffix
	}
	return &managedStatements{Construct: c, resource: w.resource, sids: sids, roleArn: roleArn}
}

// RevisionContextKey is the context key whose value, when set, every
// Custom::KmsKeyPolicyStatements carries as its Revision property: changing
// it makes the next deploy write the statements again.
const RevisionContextKey = "crossaccountami:keyPolicyRevision"

// propRevision is the property that carries the revision. The handler
// ignores it; a change of it is what matters (CloudFormation then sends an
// Update, which writes what is missing).
const propRevision = "Revision"

// keyWriter is the one resource of a stack that writes one key's policy,
// with the statements every contributor gave it.
type keyWriter struct {
	resource   awscdk.CustomResource
	keyArn     string
	statements []keypolicyspec.Statement // as the contributors gave them, unmarked
	owners     map[string]string         // Sid -> the contributor's path
	// sidSuffix is the stack's mark, which ends every Sid the resource
	// writes (keypolicyspec.SidSuffix).
	sidSuffix string
}

// keyWriters are a stack's writers, by key ARN.
type keyWriters map[string]*keyWriter

func writersOf(scope constructs.Construct) keyWriters {
	return registry.Get(scope, "keypolicy-writers", func(awscdk.Stack) keyWriters { return keyWriters{} })
}

// of returns the writer of keyArn in stack, creating it (and its resource,
// under the stack, with an id derived from the key ARN) on first use.
func (writers keyWriters) of(stack awscdk.Stack, key awskms.IKey, keyArn string) *keyWriter {
	if w := writers[keyArn]; w != nil {
		return w
	}
	sum := sha256.Sum256([]byte(keyArn))
	c := registry.Child(stack, "CrossAccountAmiKeyPolicy"+hex.EncodeToString(sum[:4]))
	src := provider.SourceOf(c)
	env := provider.EnvOf(stack) // concrete: specFromProps checked it
	suffix := keypolicyspec.SidSuffix(env.Account, env.Region, env.Name)
	props := map[string]interface{}{keypolicyspec.PropKeyArn: keyArn, keypolicyspec.PropSidSuffix: suffix}
	if rev, ok := stack.Node().TryGetContext(jsii.String(RevisionContextKey)).(string); ok && rev != "" {
		props[propRevision] = rev
	}
	resource := src.Resource(c, keypolicyspec.ResourceType, props)
	src.AllowKeyPolicyOn(c, resource, key.KeyArn())
	w := &keyWriter{resource: resource, keyArn: keyArn, owners: map[string]string{}, sidSuffix: suffix}
	writers[keyArn] = w
	return w
}

// merged returns the writer's statements with statements added, unmarked,
// and as the resource writes them, marked. A Sid is one statement: the same
// Sid with the same content from two contributors is kept once (two
// destinations may share one), with other content it is an error; so is a
// result KMS would refuse.
func (w *keyWriter) merged(statements []keypolicyspec.Statement) (all, marked []keypolicyspec.Statement, err error) {
	all = slices.Clone(w.statements)
	for _, s := range statements {
		i := slices.IndexFunc(all, func(have keypolicyspec.Statement) bool { return have.Sid == s.Sid })
		switch {
		case i < 0:
			all = append(all, s)
		case string(all[i].JSON) != string(s.JSON):
			return nil, nil, fmt.Errorf("Statements: the Sid %q is already managed on %s by %s with other content; one Sid is one statement", s.Sid, w.keyArn, w.owners[s.Sid])
		}
	}
	marked, err = keypolicyspec.Mark(all, w.sidSuffix)
	if err == nil {
		err = (keypolicyspec.Properties{KeyArn: w.keyArn, Statements: marked, SidSuffix: w.sidSuffix}).Validate()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the statements this stack keeps on %s: %w", w.keyArn, err)
	}
	return all, marked, nil
}

// add gives the writer more statements (checked with merged first) and
// writes the whole list, marked, into the resource's Statements property.
func (w *keyWriter) add(owner string, statements []keypolicyspec.Statement) {
	all, marked, err := w.merged(statements)
	if err != nil {
		panic(err) // the caller checked merged before creating anything
	}
	for _, s := range statements {
		if _, ok := w.owners[s.Sid]; !ok {
			w.owners[s.Sid] = owner
		}
	}
	w.statements = all
	var value interface{} = keypolicyspec.StatementsJSON(marked)
	if stmts := value.(string); jsiivalue.IsUnresolved(&stmts) {
		// A value that resolves at deploy time (such as the partition in
		// an account principal's ARN): CloudFormation renders the JSON.
		var doc interface{}
		if err := json.Unmarshal([]byte(stmts), &doc); err != nil {
			// keypolicyspec.StatementsJSON wrote it: JSON it cannot read
			// back is a bug, not a bad prop.
			panic(fmt.Errorf("keypolicy: the statements of %s rendered by keypolicyspec.StatementsJSON are not valid JSON (%v): %.200q", w.keyArn, err, stmts))
		}
		value = awscdk.Stack_Of(w.resource).ToJsonString(doc, nil)
	}
	w.resource.Node().DefaultChild().(awscdk.CfnResource).AddPropertyOverride(jsii.String(keypolicyspec.PropStatements), value)
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
	if jsiivalue.IsUnresolved(keyArn) {
		return keypolicyspec.Properties{}, fmt.Errorf("Key: the key ARN must be known at synth time (import the key with awskms.Key_FromKeyArn and a literal ARN), got the key %s whose ARN is %s", *props.Key.Node().Path(), jsiivalue.DeployTime)
	}
	arn, err := awsid.ParseKeyARN(*keyArn)
	if err != nil {
		return keypolicyspec.Properties{}, fmt.Errorf("Key: %v", err)
	}
	if !env.Concrete {
		return keypolicyspec.Properties{}, fmt.Errorf("the stack %s needs a concrete account and region (env), got %s: it must be the key's account", env.Path, env.Where())
	}
	if jsiivalue.IsUnresolved(&env.Name) {
		return keypolicyspec.Properties{}, fmt.Errorf("the stack %s needs a stack name known at synth time, got the token %q: the statements' Sids carry a mark derived from it, which the handler checks against the stack it runs in", env.Path, env.Name)
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

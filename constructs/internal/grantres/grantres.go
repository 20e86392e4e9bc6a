// Package grantres creates the Custom::KmsGrant resource of a grant whose
// properties are already checked: for kmsgrant.NewGrant, and for
// CrossAccountEncryptedAmi, which knows its grantee's ARN as a string and so
// spares the jsii calls that reading an IPrincipal costs (an app with
// hundreds of destinations pays each call hundreds of times).
package grantres

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// Grant is one Custom::KmsGrant; it satisfies kmsgrant.Grant.
type Grant struct {
	constructs.Construct
	resource awscdk.CustomResource
	keyArn   *string
	spec     grantspec.Properties // as written in the template
	provider *provider.Provider
	// The key policy statements its handler needs and who keeps them
	// (SetKeyPolicy): none, and managed, until a caller says otherwise.
	keyStatements []amipolicy.Statement
	keyUnmanaged  bool
}

// HandlerRoleArn is the ARN of the role of the stack's grant handler,
// which creates the grant: a literal when the stack's account and region
// are known, else the role's Arn attribute.
func (g *Grant) HandlerRoleArn() *string { return jsii.String(g.provider.RoleArn()) }

// SetKeyPolicy records the key policy statements the grant's handler needs
// on the key, and whether this app keeps them there (KeyPolicyStatements,
// KeyPolicyManaged). kmsgrant.NewGrant sets them; the grants of
// CrossAccountEncryptedAmi leave them unset, as that construct places and
// reports its statements itself.
func (g *Grant) SetKeyPolicy(statements []amipolicy.Statement, managed bool) {
	g.keyStatements, g.keyUnmanaged = statements, !managed
}

// KeyPolicyStatements are the statements SetKeyPolicy recorded.
func (g *Grant) KeyPolicyStatements() *[]awsiam.PolicyStatement {
	out := keystatements.ToCDK(g.keyStatements)
	return &out
}

// KeyPolicyManaged is whether this app keeps the statements in the key policy.
func (g *Grant) KeyPolicyManaged() bool { return !g.keyUnmanaged }

// GrantId is the grant id, as KMS returned it.
func (g *Grant) GrantId() *string {
	return g.resource.GetAttString(jsii.String(grantspec.AttrGrantId))
}

// KeyArn is the ARN of the key the grant is on.
func (g *Grant) KeyArn() *string { return g.keyArn }

// Resource is the custom resource.
func (g *Grant) Resource() awscdk.CustomResource { return g.resource }

// New creates the grant spec defines under a construct id of scope, served
// by the stack's handler. Without a RetiringPrincipal the handler's role
// becomes it, written in the template, so that the grant's owner is visible
// where the grant is defined. keyArn is spec.KeyArn as CDK gave it; deps
// are more constructs the grant waits for.
func New(scope constructs.Construct, id string, spec grantspec.Properties, keyArn *string, deps ...constructs.IDependable) *Grant {
	p := provider.Of(scope)
	if spec.RetiringPrincipal == "" {
		spec.RetiringPrincipal = p.RoleArn()
	}
	c := registry.Child(scope, id)
	resource := p.Resource(c, grantspec.ResourceType, spec.CfnProperties())
	p.AllowGrant(c, resource, spec, deps...)
	return &Grant{Construct: c, resource: resource, keyArn: keyArn, spec: spec, provider: p}
}

// HealRuleID is the construct id, under the grant, of its scheduled check.
const HealRuleID = "Heal"

// Heal adds the scheduled check of the grant ("grants that heal
// themselves"): an EventBridge rule that invokes the stack's handler on
// schedule (an EventBridge schedule expression, such as "rate(1 day)")
// with the grant's grantspec.HealEvent, and a permission that lets
// EventBridge invoke the function from that rule only. The event names the
// grant's resource (the stack's AWS::StackId, its logical id, its Ref), so
// that the handler re-creates the grant only while CloudFormation shows
// that resource alive: a late or repeated event after the grant's Delete
// then makes nothing. The handler's role gets
// cloudformation:DescribeStackResource on its own stack for that. It finds
// the grant with kms:ListRetirableGrants and re-creates it under its name
// with kms:CreateGrant: permissions its role has for this grant already.
// Only a grant the handler owns can be checked: the callers refuse the
// check for a RetiringPrincipal of the user's own while they validate their
// props, before anything is created.
func (g *Grant) Heal(schedule string) {
	spec := g.spec
	if spec.Name == "" {
		// The default name is made from the stack id at deploy time: the
		// handler answers it as an attribute.
		spec.Name = *g.resource.GetAttString(jsii.String(grantspec.AttrGrantName))
	}
	cfnResource := g.resource.Node().DefaultChild().(awscdk.CfnResource)
	scope := registry.Child(g.Construct, HealRuleID)
	stack := awscdk.Stack_Of(scope)
	input, err := grantspec.HealEventInput(spec, grantspec.HealResource{
		StackID: *awscdk.Aws_STACK_ID(), LogicalResourceID: *stack.GetLogicalId(cfnResource), PhysicalResourceID: *g.resource.Ref(),
	})
	if err != nil {
		panic(err) // only for a grant without a name or resource, which the values above rule out
	}
	provider.Of(g.Construct, provider.NeedDescribeOwnStack)
	// Written in the grant's properties: enabling the check on a grant that
	// exists then sends it an Update, whose answer carries GrantName.
	cfnResource.AddPropertyOverride(jsii.String(grantspec.PropHealSchedule), jsii.String(schedule))
	// The Input refers to the grant (its Ref), so the rule starts once the
	// grant exists, and is deleted before it.
	rule := awsevents.NewCfnRule(scope, jsii.String("Rule"), &awsevents.CfnRuleProps{
		Description:        jsii.String("crossaccountami: checks that the KMS grant " + registry.Path(g.Construct) + " exists, re-creates it if it was revoked"),
		ScheduleExpression: jsii.String(schedule),
		Targets: []interface{}{&awsevents.CfnRule_TargetProperty{
			Id:    jsii.String("GrantHandler"),
			Arn:   g.provider.FunctionArn(),
			Input: stack.ToJsonString(input, nil),
		}},
	})
	awslambda.NewCfnPermission(scope, jsii.String("Permission"), &awslambda.CfnPermissionProps{
		Action:       jsii.String("lambda:InvokeFunction"),
		FunctionName: g.provider.FunctionArn(),
		Principal:    jsii.String("events.amazonaws.com"),
		SourceArn:    rule.AttrArn(),
	})
}

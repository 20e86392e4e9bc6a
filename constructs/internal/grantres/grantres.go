// Package grantres creates the Custom::KmsGrant resource of a grant whose
// properties are already checked: for kmsgrant.NewGrant, and for
// CrossAccountEncryptedAmi, which knows its grantee's ARN as a string and so
// spares the jsii calls that reading an IPrincipal costs (an app with
// hundreds of destinations pays each call hundreds of times).
package grantres

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// Grant is one Custom::KmsGrant; it satisfies kmsgrant.Grant.
type Grant struct {
	constructs.Construct
	resource awscdk.CustomResource
	keyArn   *string
}

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
	return &Grant{Construct: c, resource: resource, keyArn: keyArn}
}

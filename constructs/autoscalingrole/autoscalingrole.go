// Package autoscalingrole provides ServiceLinkedRole: it makes sure
// an account's Auto Scaling service-linked role exists, creating it if it
// does not, and never deletes it.
//
// A fresh account has no AWSServiceRoleForAutoScaling until its first Auto
// Scaling group, and a KMS grant for a role that does not exist fails.
// AWS::IAM::ServiceLinkedRole cannot be used instead: it fails when the role
// already exists and deletes the role on stack delete, which would break
// every other Auto Scaling group of the account.
//
// The runnable ExampleNewServiceLinkedRole (go doc -all) ensures a
// custom-suffix role, AWSServiceRoleForAutoScaling_fleet.
package autoscalingrole

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/slrspec"
)

// ServiceLinkedRoleProps configures the role.
type ServiceLinkedRoleProps struct {
	// The suffix of a custom-suffix role, AWSServiceRoleForAutoScaling_<suffix>.
	// Default: - the account's default role, AWSServiceRoleForAutoScaling.
	CustomSuffix *string `field:"optional"`
}

// ServiceLinkedRole is the Auto Scaling service-linked role of the
// stack's account, ensured to exist.
type ServiceLinkedRole interface {
	constructs.Construct
	// The role's ARN, available once the role exists.
	RoleArn() *string
	// The custom resource; depend on it to order a grant after the role.
	Resource() awscdk.CustomResource
}

type autoScalingServiceLinkedRole struct {
	constructs.Construct
	resource awscdk.CustomResource
}

func (r *autoScalingServiceLinkedRole) RoleArn() *string {
	return r.resource.GetAttString(jsii.String(slrspec.AttrRoleArn))
}
func (r *autoScalingServiceLinkedRole) Resource() awscdk.CustomResource { return r.resource }

// NewServiceLinkedRole ensures the role exists. It panics with an
// error naming the construct path, the prop and the value when the suffix
// is invalid.
func NewServiceLinkedRole(scope constructs.Construct, id *string, props *ServiceLinkedRoleProps) ServiceLinkedRole {
	var spec slrspec.Properties
	if props != nil && props.CustomSuffix != nil {
		if *props.CustomSuffix == "" {
			panic(fmt.Errorf(`autoscalingrole.NewServiceLinkedRole %s/%s: CustomSuffix: expected 1 to 35 of A-Z a-z 0-9 _ + = , . @ -, got "" (leave CustomSuffix nil for the default role)`, *scope.Node().Path(), *id))
		}
		spec.CustomSuffix = *props.CustomSuffix
	}
	if !jsiivalue.IsUnresolved(&spec.CustomSuffix) {
		if err := spec.Validate(); err != nil {
			panic(fmt.Errorf("autoscalingrole.NewServiceLinkedRole %s/%s: %w", *scope.Node().Path(), *id, err))
		}
		// Only here, not in spec.Validate, which the handler runs too: a
		// role deployed with such a suffix must still update and roll back.
		if err := awsid.CheckSLRSuffixMistakes(spec.CustomSuffix); spec.CustomSuffix != "" && err != nil {
			panic(fmt.Errorf("autoscalingrole.NewServiceLinkedRole %s/%s: CustomSuffix: %w", *scope.Node().Path(), *id, err))
		}
	}
	c := registry.Child(scope, *id)
	p := provider.Of(c, provider.NeedSLR)
	// The role serves every Auto Scaling group of the account: it stays
	// when the stack goes (the handler never deletes it either).
	resource := p.RetainedResource(c, slrspec.ResourceType, spec.CfnProperties())
	return &autoScalingServiceLinkedRole{Construct: c, resource: resource}
}

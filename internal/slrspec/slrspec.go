// Package slrspec is the one definition of the Custom::AutoScalingServiceLinkedRole
// resource's properties, written by the construct and read by the handler.
// The resource makes sure the Auto Scaling service-linked role exists before
// a grant names it; it never deletes the role.
package slrspec

import (
	"fmt"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

// ResourceType is the CloudFormation type of the service-linked role resource.
const ResourceType = "Custom::AutoScalingServiceLinkedRole"

// Property and attribute names.
const (
	PropCustomSuffix = "CustomSuffix"
	AttrRoleArn      = "RoleArn"
)

// Properties of the resource. The AWS service is always Auto Scaling: the
// handler role may create no other service-linked role.
type Properties struct {
	// CustomSuffix selects AWSServiceRoleForAutoScaling_<suffix>; empty for
	// the default role.
	CustomSuffix string
}

// Validate checks the suffix.
func (p Properties) Validate() error {
	if p.CustomSuffix == "" {
		return nil
	}
	if err := awsid.ValidateSLRSuffix(p.CustomSuffix); err != nil {
		return fmt.Errorf("%s: %v", PropCustomSuffix, err)
	}
	return nil
}

// CfnProperties renders p as custom resource properties.
func (p Properties) CfnProperties() map[string]interface{} {
	out := map[string]interface{}{}
	if p.CustomSuffix != "" {
		out[PropCustomSuffix] = p.CustomSuffix
	}
	return out
}

// Decode reads and validates the properties of an event.
func Decode(raw map[string]interface{}) (Properties, error) {
	var p Properties
	if v, ok := raw[PropCustomSuffix]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return Properties{}, fmt.Errorf("%s: expected a string, got %v", PropCustomSuffix, v)
		}
		p.CustomSuffix = s
	}
	return p, p.Validate()
}

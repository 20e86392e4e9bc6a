// Package slrspec is the one definition of the service-linked role
// resources' properties (Custom::AutoScalingServiceLinkedRole for Auto
// Scaling, Custom::ServiceLinkedRole for the other launchers' services),
// written by the constructs and read by the handler. A resource makes sure
// a service-linked role exists before a grant names it; it never deletes
// the role.
package slrspec

import (
	"fmt"
	"sort"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// ResourceType is the CloudFormation type of the Auto Scaling service-linked
// role resource. It keeps its name (templates deployed before the other
// services existed must not change).
const ResourceType = "Custom::AutoScalingServiceLinkedRole"

// GenericResourceType is the type of the resource for the other services'
// roles (EC2 Fleet, Spot Fleet, Spot), served by the same handler.
const GenericResourceType = "Custom::ServiceLinkedRole"

// ResourceTypes are both types, for a handler's router.
var ResourceTypes = []string{ResourceType, GenericResourceType}

// Property and attribute names.
const (
	PropCustomSuffix   = "CustomSuffix"
	PropAWSServiceName = "AWSServiceName"
	AttrRoleArn        = "RoleArn"
)

// Properties of the resource.
type Properties struct {
	// AWSServiceName is the service whose role is ensured, one of
	// launcher.ServiceLinkedRoles. Empty for Auto Scaling, which is not
	// written into the properties (templates of the releases before it
	// stay the same).
	AWSServiceName string
	// CustomSuffix selects AWSServiceRoleForAutoScaling_<suffix>; empty for
	// the default role. Only Auto Scaling takes a suffix.
	CustomSuffix string
}

// Role is the service-linked role p names.
func (p Properties) Role() launcher.ServiceLinkedRole {
	if p.AWSServiceName == "" {
		return launcher.AutoScalingSLR
	}
	return launcher.ServiceLinkedRoles[p.AWSServiceName]
}

// ResourceType is the CloudFormation type of the resource for p.
func (p Properties) ResourceType() string {
	if p.Role() == launcher.AutoScalingSLR {
		return ResourceType
	}
	return GenericResourceType
}

// Validate checks the service and the suffix.
func (p Properties) Validate() error {
	if p.AWSServiceName != "" {
		if _, ok := launcher.ServiceLinkedRoles[p.AWSServiceName]; !ok {
			return fmt.Errorf("%s: expected one of %v, got %q", PropAWSServiceName, serviceNames(), p.AWSServiceName)
		}
	}
	if p.CustomSuffix == "" {
		return nil
	}
	if !p.Role().AcceptsSuffix {
		return fmt.Errorf("%s: %s takes no custom suffix (only %s does), got %q", PropCustomSuffix, p.Role().BaseName, awsid.AutoScalingService, p.CustomSuffix)
	}
	if err := awsid.ValidateSLRSuffix(p.CustomSuffix); err != nil {
		return fmt.Errorf("%s: %v", PropCustomSuffix, err)
	}
	return nil
}

func serviceNames() []string {
	var out []string
	for s := range launcher.ServiceLinkedRoles {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// CfnProperties renders p as custom resource properties. Auto Scaling's
// service name is left out: it is the default.
func (p Properties) CfnProperties() map[string]interface{} {
	out := map[string]interface{}{}
	if p.AWSServiceName != "" && p.AWSServiceName != awsid.AutoScalingService {
		out[PropAWSServiceName] = p.AWSServiceName
	}
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
	if v, ok := raw[PropAWSServiceName]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return Properties{}, fmt.Errorf("%s: expected a string, got %v", PropAWSServiceName, v)
		}
		if s != awsid.AutoScalingService {
			p.AWSServiceName = s
		}
	}
	return p, p.Validate()
}

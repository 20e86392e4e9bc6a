// Package nagsuppress records cdk-nag suppressions without depending on
// cdk-nag: it writes the metadata entry that cdk-nag's
// NagSuppressions.AddResourceSuppressions writes (cdk_nag.rules_to_suppress)
// and that cdk-nag reads. This library's constructs use it for what they do
// deliberately (each reason is the one a security reviewer reads), so that
// apps which run cdk-nag see no finding for it, while apps which do not
// never load cdk-nag at synth (a jsii package load on every synth).
// test/nag_test.go runs cdk-nag over every example to prove it honours them.
package nagsuppress

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// Add suppresses rule id on resource with a reason. appliesTo narrows it to
// the named findings (strings such as "Resource::*", or Regex values).
func Add(resource awscdk.CfnResource, id, reason string, appliesTo ...interface{}) {
	rule := Rule(id, reason, appliesTo...)
	var rules []interface{}
	if existing, ok := resource.GetMetadata(jsii.String("cdk_nag")).(map[string]interface{}); ok {
		rules, _ = existing["rules_to_suppress"].([]interface{})
	}
	rules = append(rules, rule)
	resource.AddMetadata(jsii.String("cdk_nag"), map[string]interface{}{"rules_to_suppress": rules})
}

// Regex is an appliesTo entry that matches findings by a regular expression
// written as cdk-nag expects it, /.../.
func Regex(re string) interface{} { return map[string]interface{}{"regex": re} }

// Rule is one suppression, for Set: rule id, reason, and optionally the
// findings it applies to (as for Add).
func Rule(id, reason string, appliesTo ...interface{}) map[string]interface{} {
	rule := map[string]interface{}{"id": id, "reason": reason}
	if len(appliesTo) > 0 {
		rule["applies_to"] = appliesTo
	}
	return rule
}

// Set writes rules as resource's whole list of suppressions, in one call:
// for a caller that keeps the list itself and adds to it over time (Add
// reads the list back first, a second call).
func Set(resource awscdk.CfnResource, rules ...map[string]interface{}) {
	list := make([]interface{}, len(rules))
	for i, r := range rules {
		list[i] = r
	}
	resource.AddMetadata(jsii.String("cdk_nag"), map[string]interface{}{"rules_to_suppress": list})
}

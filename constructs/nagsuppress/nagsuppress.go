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
	rule := map[string]interface{}{"id": id, "reason": reason}
	if len(appliesTo) > 0 {
		rule["applies_to"] = appliesTo
	}
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

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
	"maps"
	"regexp"

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

// AddToStack suppresses rule id for every resource of stack with a reason,
// narrowed by appliesTo: the place for a finding on a resource CDK adds
// while it synthesizes, after every construct ran (such as the policy of a
// cross-account reference's GetStackOutput role), which no resource's
// metadata can carry. cdk-nag reads it from the template's Metadata.
func AddToStack(stack awscdk.Stack, id, reason string, appliesTo ...interface{}) {
	options := stack.TemplateOptions()
	metadata := map[string]interface{}{}
	if m := options.Metadata(); m != nil {
		maps.Copy(metadata, *m)
	}
	var rules []interface{}
	if existing, ok := metadata["cdk_nag"].(map[string]interface{}); ok {
		rules, _ = existing["rules_to_suppress"].([]interface{})
	}
	metadata["cdk_nag"] = map[string]interface{}{"rules_to_suppress": append(rules, Rule(id, reason, appliesTo...))}
	options.SetMetadata(&metadata)
}

// CrossAccountReference suppresses, on stack, cdk-nag's IAM5 finding on the
// policy CDK generates for a cross-account reference to one of stack's
// values (Fn::GetStackOutput: Publish/GetStackOutputPolicy):
// cloudformation:DescribeStacks on this stack's own ARN, whose wildcard is
// the stack id.
func CrossAccountReference(stack awscdk.Stack) {
	AddToStack(stack, "AwsSolutions-IAM5",
		"CDK's cross-account reference (Fn::GetStackOutput) to a value of this stack: the role CDK generates for the referencing accounts' "+
			"CloudFormation execution roles may call cloudformation:DescribeStacks on this stack only; the wildcard is the stack id part of its ARN.",
		Regex(`/^Resource::arn:<AWS::Partition>:cloudformation:[^:]+:[0-9]+:stack\/`+regexp.QuoteMeta(*stack.StackName())+`\/\*$/`))
}

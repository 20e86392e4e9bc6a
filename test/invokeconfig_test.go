package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestHandlersBoundTheAgeOfTheirEvents reads every template of the examples
// (stacks and StackSets): each function of this library (the Go bootstrap on
// provided.al2023) has one asynchronous invoke configuration on $LATEST with
// no retries and a maximum event age of 240 s; every custom resource it
// serves waits 900 s for its answer (ServiceTimeout) and depends on that
// configuration, so that even the first events of a new stack are bounded.
//
// Why these numbers (provider.MaxEventAgeSeconds): an event Lambda delivers
// at an age of 240 s, on a cold start (Init, at most 10 s), answers by
// 240 + 10 + 600 (the function's timeout) = 850 s, inside CloudFormation's
// 900 s. Without the age bound, Lambda keeps a throttled event up to 6 hours.
func TestHandlersBoundTheAgeOfTheirEvents(t *testing.T) {
	t.Parallel()
	const (
		wantAge            = 240.0
		wantServiceTimeout = "900" // CloudFormation sends every scalar as a string; CDK writes it so
		functionTimeout    = 600.0
	)
	seen := 0
	for _, example := range []string{"basic", "importedkey", "organization"} {
		a := exampleAssembly(t, example, nil)
		for _, m := range []map[string]map[string]interface{}{a.Templates, a.StackSets} {
			for _, key := range keys(m) {
				tmpl := m[key]
				configs := Resources(tmpl, "AWS::Lambda::EventInvokeConfig")
				for fnID, fn := range Resources(tmpl, "AWS::Lambda::Function") {
					props := fn["Properties"].(map[string]interface{})
					if props["Runtime"] != "provided.al2023" || props["Handler"] != "bootstrap" {
						continue // aws-cdk-lib's own (BucketDeployment), see code.go
					}
					seen++
					where := fmt.Sprintf("%s %s %s", example, key, fnID)
					if props["Timeout"] != functionTimeout {
						t.Errorf("%s: Timeout %v, want %v", where, props["Timeout"], functionTimeout)
					}
					var configID string
					for id, c := range configs {
						cp := c["Properties"].(map[string]interface{})
						if ref, _ := cp["FunctionName"].(map[string]interface{}); ref["Ref"] == fnID {
							if configID != "" {
								t.Errorf("%s: two invoke configurations, %s and %s", where, configID, id)
							}
							configID = id
							if cp["Qualifier"] != "$LATEST" || cp["MaximumRetryAttempts"] != 0.0 || cp["MaximumEventAgeInSeconds"] != wantAge {
								t.Errorf("%s: invoke configuration %s has Qualifier %v, MaximumRetryAttempts %v, MaximumEventAgeInSeconds %v; want $LATEST, 0, %v",
									where, id, cp["Qualifier"], cp["MaximumRetryAttempts"], cp["MaximumEventAgeInSeconds"], wantAge)
							}
						}
					}
					if configID == "" {
						t.Errorf("%s: no invoke configuration", where)
						continue
					}
					served := 0
					for crID, cr := range tmpl["Resources"].(map[string]interface{}) {
						cr := cr.(map[string]interface{})
						typ, _ := cr["Type"].(string)
						cp, _ := cr["Properties"].(map[string]interface{})
						token, _ := cp["ServiceToken"].(map[string]interface{})
						att, _ := token["Fn::GetAtt"].([]interface{})
						if !strings.HasPrefix(typ, "Custom::") || len(att) != 2 || att[0] != fnID {
							continue
						}
						served++
						if got := fmt.Sprint(cp["ServiceTimeout"]); got != wantServiceTimeout {
							t.Errorf("%s: %s %s ServiceTimeout %s, want %s", where, typ, crID, got, wantServiceTimeout)
						}
						if deps := strs(cr["DependsOn"]); !slices.Contains(deps, configID) {
							t.Errorf("%s: %s %s DependsOn %v, want the invoke configuration %s", where, typ, crID, deps, configID)
						}
					}
					if served == 0 {
						t.Errorf("%s: serves no custom resource", where)
					}
				}
			}
		}
	}
	// basic: the destination's; importedkey: both sides; organization: the
	// StackSet's and a source handler per region.
	if seen != 6 {
		t.Errorf("found %d functions of this library, want 6", seen)
	}
}

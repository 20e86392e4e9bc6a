package test

import (
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// pipelineContext is the context of every test of examples/pipeline: two
// destination stages.
var pipelineContext = map[string]string{"destinations": "2"}

func TestPipelineExample(t *testing.T) {
	t.Parallel()
	// GIVEN the pipeline example with two destination accounts
	a := exampleAssembly(t, "pipeline", pipelineContext)

	// THEN the pipeline deploys the key's stage before the wave of destination stages
	_, pipeline := only(t, a.Templates["AmiPipeline"], "AWS::CodePipeline::Pipeline")
	var stages []string
	for _, s := range pipeline["Properties"].(map[string]interface{})["Stages"].([]interface{}) {
		stages = append(stages, s.(map[string]interface{})["Name"].(string))
	}
	keyOwner, wave := slices.Index(stages, "KeyOwner"), slices.Index(stages, "Destinations")
	if keyOwner < 0 || wave < 0 || keyOwner > wave {
		t.Errorf("pipeline stages = %v, want KeyOwner before Destinations", stages)
	}

	// AND each destination's grant reads the key ARN from the source stage's stack
	for _, account := range []string{"222222222222", "222222222223"} {
		var dest map[string]interface{}
		for id, tmpl := range a.Templates {
			if strings.HasPrefix(id, "assembly-Destination-"+account+"/") {
				dest = tmpl
			}
		}
		if dest == nil {
			t.Fatalf("no destination stack for %s in %v", account, keys(a.Templates))
		}
		_, grant := only(t, dest, grantspec.ResourceType)
		keyArn, _ := grant["Properties"].(map[string]interface{})[grantspec.PropKeyArn].(map[string]interface{})
		out, _ := keyArn["Fn::GetStackOutput"].(map[string]interface{})
		if out["StackName"] != "KeyOwner-AmiSource" {
			t.Errorf("%s: KeyArn = %v, want Fn::GetStackOutput of KeyOwner-AmiSource", account, keyArn)
		}
	}

	// AND every template passes cfn-lint
	cfnLint(t, a)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

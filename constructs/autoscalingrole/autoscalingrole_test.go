package autoscalingrole_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/autoscalingrole"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
)

// TestBadSuffix: a suffix IAM would reject fails at synth, naming the
// construct path, the prop and the value; nothing is added to the tree.
func TestBadSuffix(t *testing.T) {
	for _, tc := range []struct{ name, suffix string }{
		{"space", "my suffix"},
		{"slash", "team/a"},
		{"non-ASCII", "équipe"},
		{"too long for the 64-character role name", strings.Repeat("a", 36)},
		{"asterisk", "a*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := constructtest.NewStack()
			msg := constructtest.Catch(func() {
				autoscalingrole.NewServiceLinkedRole(stack, jsii.String("Slr"), &autoscalingrole.ServiceLinkedRoleProps{
					CustomSuffix: jsii.String(tc.suffix),
				})
			})
			t.Log(msg)
			for _, w := range []string{"Dest/Slr: ", "CustomSuffix", fmt.Sprintf("%q", tc.suffix), "expected 1 to 35 of"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if stack.Node().TryFindChild(jsii.String("Slr")) != nil || stack.Node().TryFindChild(jsii.String("CrossAccountAmiGrantHandler")) != nil {
				t.Error("constructs were added despite the error")
			}
		})
	}
}

// TestSuffixMistakes: a suffix IAM accepts but that names a role nobody
// means (the prefix repeated, or the separator doubled) fails at synth
// with the role it would name and the suffix meant; nothing is added.
func TestSuffixMistakes(t *testing.T) {
	for _, tc := range []struct{ suffix, role, meant string }{
		{"AWSServiceRoleForAutoScaling_myapp", "AWSServiceRoleForAutoScaling_AWSServiceRoleForAutoScaling_myapp", `"myapp"`},
		{"_myapp", "AWSServiceRoleForAutoScaling__myapp", `"myapp"`},
	} {
		t.Run(tc.suffix, func(t *testing.T) {
			stack := constructtest.NewStack()
			msg := constructtest.Catch(func() {
				autoscalingrole.NewServiceLinkedRole(stack, jsii.String("Slr"), &autoscalingrole.ServiceLinkedRoleProps{
					CustomSuffix: jsii.String(tc.suffix),
				})
			})
			t.Log(msg)
			for _, w := range []string{"Dest/Slr: ", "CustomSuffix: ", fmt.Sprintf("%q", tc.suffix), tc.role, tc.meant} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if stack.Node().TryFindChild(jsii.String("Slr")) != nil {
				t.Error("constructs were added despite the error")
			}
		})
	}
}

// TestSuffixTokenAndDefault: nil props mean the default role; a suffix that
// is a token is written to the template and checked by the handler when it
// resolves (internal/destinationhandler TestInProcessAgainstMoto, "slr bad suffix").
func TestSuffixTokenAndDefault(t *testing.T) {
	stack := constructtest.NewStack()
	autoscalingrole.NewServiceLinkedRole(stack, jsii.String("Default"), nil)
	param := awscdk.NewCfnParameter(stack, jsii.String("Suffix"), nil)
	autoscalingrole.NewServiceLinkedRole(stack, jsii.String("Custom"), &autoscalingrole.ServiceLinkedRoleProps{
		CustomSuffix: param.ValueAsString(),
	})
	tmpl := assertions.Template_FromStack(stack, nil)
	tmpl.ResourceCountIs(jsii.String("Custom::AutoScalingServiceLinkedRole"), jsii.Number(2))
	tmpl.HasResourceProperties(jsii.String("Custom::AutoScalingServiceLinkedRole"), &map[string]interface{}{
		"CustomSuffix": map[string]interface{}{"Ref": "Suffix"},
	})
	// The role is retained with the stack: it serves every Auto Scaling group of the account.
	tmpl.HasResource(jsii.String("Custom::AutoScalingServiceLinkedRole"), &map[string]interface{}{
		"DeletionPolicy": "Retain",
	})
}

// Package slrres creates the resource that ensures a launcher's
// service-linked role exists in the stack's account, for the constructs
// that grant launchers (encryptedami's destination, organization's
// StackSet template), so that both make the same resource for the same
// role.
package slrres

import (
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/autoscalingrole"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/slrspec"
)

// New ensures slr exists (with suffix, for Auto Scaling), under scope with
// the construct id id, served by the stack's handler, and returns what a grant waits for:
// autoscalingrole's resource for Auto Scaling (the templates of the
// releases before launchers), a Custom::ServiceLinkedRole for the other
// services, kept when it leaves the stack, like the role itself. The
// handler's iam:CreateServiceLinkedRole names the service either way
// (autoscalingrole asks for Auto Scaling; AllowServiceLinkedRole here for
// the others, a no-op when the caller asked already).
func New(scope constructs.Construct, id string, slr launcher.ServiceLinkedRole, suffix string) constructs.IDependable {
	if slr == launcher.AutoScalingSLR {
		var props *autoscalingrole.ServiceLinkedRoleProps
		if suffix != "" {
			props = &autoscalingrole.ServiceLinkedRoleProps{CustomSuffix: jsii.String(suffix)}
		}
		return autoscalingrole.NewServiceLinkedRole(scope, jsii.String(id), props).Resource()
	}
	p := provider.Of(scope)
	p.AllowServiceLinkedRole(slr.Service)
	spec := slrspec.Properties{AWSServiceName: slr.Service}
	return p.RetainedResource(registry.Child(scope, id), spec.ResourceType(), spec.CfnProperties())
}

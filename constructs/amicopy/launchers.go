package amicopy

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// destinationGrantees are the principals the destination key's policy lets
// launch the copy: each launcher's service-linked role (the default ones:
// a custom-suffix Auto Scaling role is a role of the account like any
// other, give it in DestinationKeyLauncherRoles) and each role, sorted.
func destinationGrantees(env *provider.StackEnv, props *CopiedAmiProps) ([]string, error) {
	if props.DestinationKey == nil {
		if props.DestinationKeyLaunchers != nil || props.DestinationKeyLauncherRoles != nil {
			return nil, fmt.Errorf("DestinationKeyLaunchers and DestinationKeyLauncherRoles: only with DestinationKey (the account's aws/ebs key lets every principal of the account launch through EC2 already), got them without DestinationKey")
		}
		return nil, nil
	}
	kinds := []encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING}
	if props.DestinationKeyLaunchers != nil {
		kinds = *props.DestinationKeyLaunchers
	}
	var ls []launcher.Launcher
	for i, k := range kinds {
		if !slices.Contains(launcher.ServiceKinds, launcher.Kind(k)) {
			return nil, fmt.Errorf("DestinationKeyLaunchers[%d]: expected one of %v, got %q", i, launcher.ServiceKinds, k)
		}
		if slices.Index(kinds, k) != i {
			return nil, fmt.Errorf("DestinationKeyLaunchers[%d]: %s is listed twice in %v", i, k, kinds)
		}
		ls = append(ls, launcher.Launcher{Kind: launcher.Kind(k)})
	}
	if props.DestinationKeyLauncherRoles != nil {
		for i, role := range *props.DestinationKeyLauncherRoles {
			arn, err := roleArn(role)
			if err != nil {
				return nil, fmt.Errorf("DestinationKeyLauncherRoles[%d]: %v", i, err)
			}
			if a, _ := awsid.ParseARN(arn); a.Account != env.Account {
				return nil, fmt.Errorf("DestinationKeyLauncherRoles[%d]: the role %s is in account %s, the copy and its key in %s: only a role of the key's account launches with it here", i, arn, a.Account, env.Account)
			}
			ls = append(ls, launcher.Launcher{Kind: launcher.Role, RoleARN: arn})
		}
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("DestinationKeyLaunchers: empty and no DestinationKeyLauncherRoles: nothing could launch the copy with DestinationKey; leave it nil for Auto Scaling groups, got []")
	}
	return launcher.Grantees(ls, env.Partition, env.Account), nil
}

// roleArn is a launching role's ARN as a literal: the key policy names it.
func roleArn(role awsiam.IRole) (string, error) {
	if role == nil {
		return "", fmt.Errorf("expected a role, got nil")
	}
	arn := role.RoleArn()
	if jsiivalue.IsUnresolved(arn) {
		return "", fmt.Errorf("the ARN of the role %s is %s, and the destination key's policy must name it: import the role with awsiam.Role_FromRoleArn and its literal ARN", *role.Node().Path(), jsiivalue.DeployTime)
	}
	if err := (launcher.Launcher{Kind: launcher.Role, RoleARN: *arn}).Validate(); err != nil {
		return "", err
	}
	return *arn, nil
}

package encryptedami

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseks"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// LauncherKind is a launch path of the destination account that launches
// the AMI through a service-linked role (a role that launches instances
// itself is given in LauncherRoles). Its values are internal/launcher's.
type LauncherKind string

const (
	// LauncherKind_AUTO_SCALING is an Auto Scaling group, launched by
	// AWSServiceRoleForAutoScaling, or AWSServiceRoleForAutoScaling_<suffix>
	// with ServiceLinkedRoleSuffix.
	LauncherKind_AUTO_SCALING LauncherKind = LauncherKind(launcher.AutoScaling)
	// LauncherKind_EKS_MANAGED_NODE_GROUP is an EKS managed node group: the
	// Auto Scaling group EKS creates launches with the default
	// AWSServiceRoleForAutoScaling, never a custom-suffix role.
	LauncherKind_EKS_MANAGED_NODE_GROUP LauncherKind = LauncherKind(launcher.EKSManagedNodeGroup)
	// LauncherKind_EC2_FLEET is an EC2 Fleet of type maintain or request,
	// launched by AWSServiceRoleForEC2Fleet. A fleet of type instant
	// launches as its caller: give that role in LauncherRoles.
	LauncherKind_EC2_FLEET LauncherKind = LauncherKind(launcher.EC2Fleet)
	// LauncherKind_SPOT_FLEET is a Spot Fleet, launched by
	// AWSServiceRoleForEC2SpotFleet.
	LauncherKind_SPOT_FLEET LauncherKind = LauncherKind(launcher.SpotFleet)
	// LauncherKind_SPOT is Spot Instances, launched by AWSServiceRoleForEC2Spot.
	LauncherKind_SPOT LauncherKind = LauncherKind(launcher.Spot)
)

// resolveLaunchers reads Launchers, LauncherRoles and ServiceLinkedRoleSuffix
// into the destination's launchers, naming the prop and the value of the
// first that cannot work. No Launchers means an Auto Scaling group.
func resolveLaunchers(env *provider.StackEnv, partition string, props *CrossAccountEncryptedAmiProps) ([]launcher.Launcher, error) {
	roles := 0
	if props.LauncherRoles != nil {
		roles = len(*props.LauncherRoles)
	}
	out, err := launcher.ResolveKinds(launcher.KindsOf(props.Launchers), jsiivalue.String(props.ServiceLinkedRoleSuffix), "LauncherRoles", roles)
	if err != nil {
		return nil, err
	}
	seenRole := map[string]int{}
	if props.LauncherRoles != nil {
		for i, role := range *props.LauncherRoles {
			arn, err := launcherRoleArn(role, partition)
			if err != nil {
				return nil, fmt.Errorf("LauncherRoles[%d]: %v", i, err)
			}
			l := launcher.Launcher{Kind: launcher.Role, RoleARN: arn}
			if err := l.Validate(); err != nil {
				return nil, fmt.Errorf("LauncherRoles[%d]: %v", i, err)
			}
			if a, _ := awsid.ParseARN(arn); a.Account != env.Account {
				return nil, fmt.Errorf("LauncherRoles[%d]: the role %s is in account %s, this stack in %s: a grant is made for a role of the destination account, where the role launches (give the role to the CrossAccountEncryptedAmi of a stack of account %s)",
					i, arn, a.Account, env.Account, a.Account)
			}
			if j, ok := seenRole[arn]; ok {
				return nil, fmt.Errorf("LauncherRoles[%d]: the role %s is LauncherRoles[%d] already", i, arn, j)
			}
			seenRole[arn] = i
			out = append(out, l)
		}
	}
	return out, nil
}

// ownLauncherRoles are the LauncherRoles this app defines (not imported),
// by their ARN (props were checked by resolveLaunchers).
func ownLauncherRoles(props *CrossAccountEncryptedAmiProps, partition string) map[string]awsiam.Role {
	out := map[string]awsiam.Role{}
	if props.LauncherRoles == nil {
		return out
	}
	for _, role := range *props.LauncherRoles {
		own, ok := role.(awsiam.Role)
		if !ok {
			continue
		}
		if _, cfn := own.Node().DefaultChild().(awsiam.CfnRole); !cfn {
			continue
		}
		if arn, err := launcherRoleArn(role, partition); err == nil {
			out[arn] = own
		}
	}
	return out
}

// launcherRoleArn is a launching role's ARN as a literal: the key policy
// names it. A role imported by ARN has it; a role of this app has it when
// its RoleName (and Path) are literals.
func launcherRoleArn(role awsiam.IRole, partition string) (string, error) {
	if role == nil {
		return "", fmt.Errorf("expected a role, got nil")
	}
	if arn := role.RoleArn(); !jsiivalue.IsUnresolved(arn) {
		return *arn, nil
	}
	path := registry.Path(role)
	if own, ok := role.Node().DefaultChild().(awsiam.CfnRole); ok {
		name, rolePath := own.RoleName(), own.Path()
		if rolePath == nil {
			rolePath = jsii.String("/")
		}
		if name != nil && !jsiivalue.IsUnresolved(name) && !jsiivalue.IsUnresolved(rolePath) {
			env := provider.EnvOf(role)
			if !env.Concrete {
				return "", fmt.Errorf("the role %s is in stack %s, whose %s: the key policy names the role's ARN, which needs its account", path, env.Name, env.Where())
			}
			return awsid.RoleARN(partition, env.Account, *rolePath, *name), nil
		}
	}
	return "", fmt.Errorf("the ARN of the role %s is %s, and the source key policy must name it: import the role with awsiam.Role_FromRoleArn and its literal ARN, or give a role of this app a RoleName", path, jsiivalue.DeployTime)
}

// granteeIDs are the construct ids of the grant and the service-linked role
// resource of each grantee: "Grant" and "ServiceLinkedRole" for the Auto
// Scaling role of ServiceLinkedRoleSuffix (the ids of the releases before
// launchers), "Grant-<role name>" and "ServiceLinkedRole-<role name>" for
// the others (a number follows when two roles share a name).
func granteeIDs(ls []launcher.Launcher, primary string, partition, account string) map[string]string {
	out := map[string]string{}
	used := map[string]bool{}
	for _, l := range ls {
		g := l.Grantee(partition, account)
		if _, done := out[g]; done {
			continue
		}
		if g == primary {
			out[g] = ""
			continue
		}
		id := "-" + l.GranteeName()
		for n := 2; used[id]; n++ {
			id = fmt.Sprintf("-%s%d", l.GranteeName(), n)
		}
		used[id] = true
		out[g] = id
	}
	return out
}

// launcherNames is the launchers as a message lists them.
func launcherNames(ls []launcher.Launcher) string {
	var out []string
	for _, l := range ls {
		if l.Kind == launcher.Role {
			out = append(out, "role "+l.RoleARN)
		} else {
			out = append(out, string(l.Kind))
		}
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func (a *crossAccountEncryptedAmi) Grants() *[]kmsgrant.Grant {
	out := make([]kmsgrant.Grant, 0, len(a.grantees))
	for _, g := range a.grantees {
		out = append(out, a.grants[g])
	}
	return &out
}

func (a *crossAccountEncryptedAmi) GranteeArns() *[]*string {
	return jsii.Strings(a.grantees...)
}

// ConfigureNodegroup makes ng wait for the default Auto Scaling role and its
// grant.
func (a *crossAccountEncryptedAmi) ConfigureNodegroup(ng awseks.Nodegroup) {
	a.configureNodegroup("ConfigureNodegroup", ng, ng.Node().Path())
}

// ConfigureCfnNodegroup is ConfigureNodegroup for the L1 node group.
func (a *crossAccountEncryptedAmi) ConfigureCfnNodegroup(ng awseks.CfnNodegroup) {
	a.configureNodegroup("ConfigureCfnNodegroup", ng, ng.Node().Path())
}

func (a *crossAccountEncryptedAmi) configureNodegroup(method string, ng constructs.IConstruct, ngPath *string) {
	fail := func(format string, args ...interface{}) {
		panic(fmt.Errorf("CrossAccountEncryptedAmi.%s %s: %s", method, *a.Node().Path(), fmt.Sprintf(format, args...)))
	}
	if region := awscdk.Stack_Of(ng).Region(); !jsiivalue.IsUnresolved(region) && *region != a.region {
		fail("ng: the node group %s is in region %q, the AMI and its key in %q; they must share one region", *ngPath, *region, a.region)
	}
	owner, ok := a.owners[a.defaultASGRole]
	if !ok {
		fail("Launchers: an EKS managed node group launches with the default AWSServiceRoleForAutoScaling, which %s does not grant; add %s to Launchers, got %s", launcherNames(a.launchers), LauncherKind_EKS_MANAGED_NODE_GROUP, launcherNames(a.launchers))
	}
	ng.Node().AddDependency(owner)
}

// hasKind reports whether a launcher of kind k is among ls.
func hasKind(ls []launcher.Launcher, k launcher.Kind) bool {
	for _, l := range ls {
		if l.Kind == k {
			return true
		}
	}
	return false
}

// coveredByKeyAccess checks that the OrganizationKeyAccess or
// AccountsKeyAccess props link lets in every launcher of this destination:
// its statements are the only ones that name them.
func coveredByKeyAccess(props *CrossAccountEncryptedAmiProps, ls []launcher.Launcher, dest amipolicy.Destination) error {
	var prop, path string
	var covers func(launcher.Launcher) bool
	if o, ok := props.OrganizationKeyAccess.(*organizationKeyAccess); ok {
		prop, path = "OrganizationKeyAccess", *o.Node().Path()
		covers = func(l launcher.Launcher) bool { return o.org.Covers(l, dest.Partition, dest.Account) }
	} else if a, ok := props.AccountsKeyAccess.(*accountsKeyAccess); ok {
		prop, path = "AccountsKeyAccess", *a.Node().Path()
		covers = func(l launcher.Launcher) bool { return a.policy.Covers(l, dest.Partition, dest.Account) }
	} else {
		return nil
	}
	for _, l := range ls {
		if covers(l) {
			continue
		}
		what, fix := string(l.Kind), "add it to its Launchers"
		switch {
		case l.Kind == launcher.Role:
			what, fix = "the role "+l.RoleARN, "add its path and name to its LauncherRoleNames"
		case l.SLRSuffix != "":
			what, fix = fmt.Sprintf("%s with ServiceLinkedRoleSuffix %q", l.Kind, l.SLRSuffix), "add the suffix to its ServiceLinkedRoleSuffixes"
		}
		return fmt.Errorf("%s: %s does not let %s (%s) use the key, so its grant would be denied: %s; got Launchers %s",
			prop, path, what, l.Grantee(dest.Partition, dest.Account), fix, launcherNames(ls))
	}
	return nil
}

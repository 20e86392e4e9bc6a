// Package launcher is the one definition of the ways instances of a
// destination account get launched, and of the principal that uses the
// source key on each path: the grantee of the KMS grant, the principal the
// key policy lets use the key, and the service-linked role (if any) that
// must exist before a grant can name it. It is plain Go: the constructs,
// the handlers and cmd/amicheck read it.
//
// The principal per path, from AWS's documentation (README "Launch paths"
// cites the pages):
//
//	Auto Scaling group       AWSServiceRoleForAutoScaling or _<suffix>
//	EKS managed node group   the default AWSServiceRoleForAutoScaling (EKS
//	                         creates the group; it takes no custom suffix)
//	EC2 Fleet maintain/request  AWSServiceRoleForEC2Fleet
//	Spot Fleet               AWSServiceRoleForEC2SpotFleet
//	Spot Instances           AWSServiceRoleForEC2Spot
//	a role calling RunInstances or CreateFleet (type instant), such as
//	Karpenter's controller   that role
package launcher

import (
	"fmt"
	"slices"
	"sort"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

// Kind is one launch path.
type Kind string

const (
	// AutoScaling is an Auto Scaling group, through its service-linked role
	// (default or custom suffix).
	AutoScaling Kind = "AUTO_SCALING"
	// EKSManagedNodeGroup is an EKS managed node group: EKS creates an Auto
	// Scaling group that launches with the account's default Auto Scaling
	// service-linked role; a custom suffix cannot be used.
	EKSManagedNodeGroup Kind = "EKS_MANAGED_NODE_GROUP"
	// EC2Fleet is an EC2 Fleet of type maintain or request, launched by
	// AWSServiceRoleForEC2Fleet. A fleet of type instant launches as its
	// caller: use Role for that caller.
	EC2Fleet Kind = "EC2_FLEET"
	// SpotFleet is a Spot Fleet, launched by AWSServiceRoleForEC2SpotFleet.
	SpotFleet Kind = "SPOT_FLEET"
	// Spot is Spot Instances requested with RunInstances or
	// RequestSpotInstances, launched by AWSServiceRoleForEC2Spot.
	Spot Kind = "SPOT"
	// Role is an IAM role that calls RunInstances or CreateFleet of type
	// instant itself: Karpenter's controller, a Lambda function, a CI runner.
	Role Kind = "ROLE"
)

// Kinds lists every kind, in the order messages list them.
var Kinds = []Kind{AutoScaling, EKSManagedNodeGroup, EC2Fleet, SpotFleet, Spot, Role}

// ServiceLinkedRole is an AWS service's service-linked role.
type ServiceLinkedRole struct {
	// Service is the AWSServiceName CreateServiceLinkedRole takes, such as
	// autoscaling.amazonaws.com.
	Service string
	// BaseName is the role's name without a custom suffix.
	BaseName string
	// AcceptsSuffix reports whether the service supports custom suffixes
	// (only Auto Scaling among these).
	AcceptsSuffix bool
}

// Path is the role's IAM path, /aws-service-role/<service>/.
func (s ServiceLinkedRole) Path() string { return "/aws-service-role/" + s.Service + "/" }

// Name is the role's name with suffix (empty for the default role).
func (s ServiceLinkedRole) Name(suffix string) string {
	if suffix == "" {
		return s.BaseName
	}
	return s.BaseName + "_" + suffix
}

// ARN is the role's ARN in account.
func (s ServiceLinkedRole) ARN(partition, account, suffix string) string {
	return awsid.RoleARN(partition, account, s.Path(), s.Name(suffix))
}

// The service-linked roles the launch paths use.
var (
	AutoScalingSLR = ServiceLinkedRole{Service: awsid.AutoScalingService, BaseName: "AWSServiceRoleForAutoScaling", AcceptsSuffix: true}
	EC2FleetSLR    = ServiceLinkedRole{Service: "ec2fleet.amazonaws.com", BaseName: "AWSServiceRoleForEC2Fleet"}
	SpotFleetSLR   = ServiceLinkedRole{Service: "spotfleet.amazonaws.com", BaseName: "AWSServiceRoleForEC2SpotFleet"}
	SpotSLR        = ServiceLinkedRole{Service: "spot.amazonaws.com", BaseName: "AWSServiceRoleForEC2Spot"}
)

// ServiceLinkedRoles lists the service-linked roles above, by service name.
var ServiceLinkedRoles = map[string]ServiceLinkedRole{
	AutoScalingSLR.Service: AutoScalingSLR,
	EC2FleetSLR.Service:    EC2FleetSLR,
	SpotFleetSLR.Service:   SpotFleetSLR,
	SpotSLR.Service:        SpotSLR,
}

// Launcher is one launch path of a destination account.
type Launcher struct {
	Kind Kind
	// SLRSuffix selects AWSServiceRoleForAutoScaling_<suffix>; AutoScaling only.
	SLRSuffix string
	// RoleARN is the launching role; Role only.
	RoleARN string
}

// Validate checks that the fields fit the kind, naming the field and the
// value received.
func (l Launcher) Validate() error {
	switch l.Kind {
	case AutoScaling:
	case EKSManagedNodeGroup, EC2Fleet, SpotFleet, Spot, Role:
		if l.SLRSuffix != "" {
			return fmt.Errorf("SLRSuffix: %s launches with a service-linked role that takes no custom suffix, got %q", l.Kind, l.SLRSuffix)
		}
	default:
		return fmt.Errorf("Kind: expected one of %v, got %q", Kinds, l.Kind)
	}
	if l.SLRSuffix != "" {
		if err := awsid.ValidateSLRSuffix(l.SLRSuffix); err != nil {
			return fmt.Errorf("SLRSuffix: %v", err)
		}
	}
	if l.Kind == Role {
		if err := awsid.ValidatePrincipalARN(l.RoleARN); err != nil {
			return fmt.Errorf("RoleARN: %v", err)
		}
		if a, _ := awsid.ParseARN(l.RoleARN); a.Service != "iam" || len(a.Resource) < 6 || a.Resource[:5] != "role/" {
			return fmt.Errorf("RoleARN: expected an IAM role ARN (arn:<partition>:iam::<account>:role/<path><name>), got %q", l.RoleARN)
		}
	} else if l.RoleARN != "" {
		return fmt.Errorf("RoleARN: only for %s, got %q with %s", Role, l.RoleARN, l.Kind)
	}
	return nil
}

// ServiceLinkedRole is the service-linked role the launcher uses, and
// false for Role.
func (l Launcher) ServiceLinkedRole() (ServiceLinkedRole, bool) {
	switch l.Kind {
	case AutoScaling, EKSManagedNodeGroup:
		return AutoScalingSLR, true
	case EC2Fleet:
		return EC2FleetSLR, true
	case SpotFleet:
		return SpotFleetSLR, true
	case Spot:
		return SpotSLR, true
	}
	return ServiceLinkedRole{}, false
}

// Grantee is the ARN of the principal that uses the key when this launcher
// launches in account: the grant's grantee and the key policy's principal.
func (l Launcher) Grantee(partition, account string) string {
	if slr, ok := l.ServiceLinkedRole(); ok {
		return slr.ARN(partition, account, l.SLRSuffix)
	}
	return l.RoleARN
}

// GranteeName is the grantee's role name, for Sids and messages.
func (l Launcher) GranteeName() string {
	if slr, ok := l.ServiceLinkedRole(); ok {
		return slr.Name(l.SLRSuffix)
	}
	a, err := awsid.ParseARN(l.RoleARN)
	if err != nil {
		return l.RoleARN
	}
	name := a.Resource
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}

// Grantees returns the distinct grantee ARNs of launchers in account,
// sorted: two launchers with one principal (an Auto Scaling group and an
// EKS managed node group both use the default Auto Scaling role) need one
// grant.
func Grantees(launchers []Launcher, partition, account string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range launchers {
		g := l.Grantee(partition, account)
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// ServiceLinkedRolesOf returns the distinct service-linked roles (service
// and suffix) launchers need, in a stable order.
func ServiceLinkedRolesOf(launchers []Launcher) []SLRRef {
	seen := map[SLRRef]bool{}
	var out []SLRRef
	for _, l := range launchers {
		slr, ok := l.ServiceLinkedRole()
		if !ok {
			continue
		}
		r := SLRRef{Service: slr.Service, Suffix: l.SLRSuffix}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Suffix < out[j].Suffix
	})
	return out
}

// SLRRef names one service-linked role: its service and custom suffix.
type SLRRef struct {
	Service string
	Suffix  string
}

// Default is the launcher of apps that name none: an Auto Scaling group
// with the given suffix (empty for the default role).
func Default(suffix string) []Launcher {
	return []Launcher{{Kind: AutoScaling, SLRSuffix: suffix}}
}

// ServiceKinds are the kinds that launch through a service-linked role:
// what a Launchers prop lists (a launching role is given apart), in the
// order messages list them.
var ServiceKinds = []Kind{AutoScaling, EKSManagedNodeGroup, EC2Fleet, SpotFleet, Spot}

// ResolveKinds reads a Launchers prop: kinds (nil for the default, an Auto
// Scaling group) with the Auto Scaling group's suffix. rolesProp is the prop
// that gives launching roles (LauncherRoles, LauncherRoleNames) and roles
// how many it gives. The errors name the prop, the index and the value of
// the first launcher that cannot work; the constructs that take launchers
// share them, so they refuse the same things in the same words.
func ResolveKinds(kinds []Kind, suffix, rolesProp string, roles int) ([]Launcher, error) {
	given := kinds
	if given == nil {
		given = []Kind{AutoScaling}
	}
	var out []Launcher
	seen := map[Kind]bool{}
	for i, k := range given {
		switch {
		case k == Role:
			return nil, fmt.Errorf("Launchers[%d]: a role that launches instances is given in %s, got %q", i, rolesProp, k)
		case !slices.Contains(ServiceKinds, k):
			return nil, fmt.Errorf("Launchers[%d]: expected one of %v, got %q", i, ServiceKinds, k)
		case seen[k]:
			return nil, fmt.Errorf("Launchers[%d]: %s is listed twice in %v", i, k, given)
		}
		seen[k] = true
		l := Launcher{Kind: k}
		if k == AutoScaling {
			l.SLRSuffix = suffix
		}
		out = append(out, l)
	}
	if suffix != "" && !seen[AutoScaling] {
		return nil, fmt.Errorf("ServiceLinkedRoleSuffix: a custom-suffix role serves Auto Scaling groups only, and Launchers %v has no %s; an EKS managed node group launches with the default AWSServiceRoleForAutoScaling (EKS creates its Auto Scaling group and sets no role of yours), and EC2 Fleet, Spot Fleet and Spot use service-linked roles that take no suffix. Unset ServiceLinkedRoleSuffix, or add %s to Launchers; got %q",
			given, AutoScaling, AutoScaling, suffix)
	}
	if len(out) == 0 && roles == 0 {
		return nil, fmt.Errorf("Launchers: empty and no %s: nothing would launch the AMI; leave Launchers nil for Auto Scaling groups, got []", rolesProp)
	}
	return out, nil
}

// KindsOf reads a Launchers prop of a construct's own kind type: nil stays
// nil (the default launcher), an empty list stays empty (no launcher).
func KindsOf[T ~string](prop *[]T) []Kind {
	if prop == nil {
		return nil
	}
	out := make([]Kind, 0, len(*prop))
	for _, k := range *prop {
		out = append(out, Kind(k))
	}
	return out
}

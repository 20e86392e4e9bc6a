package check

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/names"
)

// checkLaunchPrincipal: the principal the launcher uses the key through
// exists. It returns that principal, which the key policy and grant checks
// use whether it exists or not.
func checkLaunchPrincipal(ctx context.Context, iamAPI IAMAPI, asAPI AutoScalingAPI, in Input, who caller) (launchPrincipal, Result) {
	l := in.launcher()
	switch l.Kind {
	case launcher.AutoScaling:
		arn, res := checkServiceLinkedRole(ctx, iamAPI, asAPI, in, who)
		return launchPrincipal{ARN: arn, Kind: l.Kind}, res
	case launcher.Role:
		arn, res := checkLauncherRole(ctx, iamAPI, l.RoleARN, who)
		return launchPrincipal{ARN: arn, Kind: l.Kind}, res
	}
	// EKS_MANAGED_NODE_GROUP, EC2_FLEET, SPOT_FLEET, SPOT: a service-linked
	// role without custom suffix.
	slr, _ := l.ServiceLinkedRole()
	arn := l.Grantee(who.Partition, who.Account)
	source := ""
	if l.Kind == launcher.EKSManagedNodeGroup {
		source = ", the role of the Auto Scaling groups EKS managed node groups launch with"
	}
	createFix := "aws iam create-service-linked-role --aws-service-name " + slr.Service
	arn, res := checkRoleExists(ctx, iamAPI, CheckServiceLinkedRole, arn, source, createFix+" (or let the CrossAccountEncryptedAmi construct create it); then the key policy and the grant must name it", who)
	return launchPrincipal{ARN: arn, Kind: l.Kind}, res
}

// checkServiceLinkedRole: the group's service-linked role exists. The
// role is the group's ServiceLinkedRoleARN with --asg, else
// AWSServiceRoleForAutoScaling[_<suffix>]. It returns the role's ARN, which
// the key policy and grant checks use whether the role exists or not.
func checkServiceLinkedRole(ctx context.Context, iamAPI IAMAPI, asAPI AutoScalingAPI, in Input, who caller) (string, Result) {
	slr := awsid.AutoScalingSLRARN(who.Partition, who.Account, in.SLRSuffix)
	res := Result{Check: CheckServiceLinkedRole}
	source := ""
	if in.ASGName != "" {
		out, err := asAPI.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{in.ASGName}})
		switch {
		case err != nil:
			res.Status, res.Resource = Fail, slr
			res.Detail = fmt.Sprintf("could not read the group %q: autoscaling DescribeAutoScalingGroups: %v (checked the default role %s instead)", in.ASGName, err, slr)
			res.Fix = "check --asg and the region, or pass --slr-suffix instead"
			return slr, res
		case len(out.AutoScalingGroups) == 0:
			res.Status, res.Resource = Fail, slr
			res.Detail = fmt.Sprintf("no Auto Scaling group named %q in %s (checked the default role %s instead)", in.ASGName, in.Region, slr)
			res.Fix = "check --asg and the region, or pass --slr-suffix instead"
			return slr, res
		}
		if arn := aws.ToString(out.AutoScalingGroups[0].ServiceLinkedRoleARN); arn != "" {
			slr = arn
		}
		source = fmt.Sprintf(", the service-linked role of group %q", in.ASGName)
	}
	createFix := "aws iam create-service-linked-role --aws-service-name " + awsid.AutoScalingService
	if s := slrSuffixOf(slr); s != "" {
		createFix += " --custom-suffix " + s
	}
	return checkRoleExists(ctx, iamAPI, CheckServiceLinkedRole, slr, source, createFix+" (or let the CrossAccountEncryptedAmi construct create it); then the key policy and the grant must name it", who)
}

// checkLauncherRole: the role given with --launcher-role-arn exists in the
// destination account. Its own policies are the user's and are not read:
// the key policy and the grant decide what this tool can see.
func checkLauncherRole(ctx context.Context, iamAPI IAMAPI, roleARN string, who caller) (string, Result) {
	if account := arnAccount(roleARN); account != who.Account {
		return roleARN, Result{Check: CheckLauncherRole, Status: Fail, Resource: roleARN,
			Detail: fmt.Sprintf("the launcher role %s is in account %s, not in the destination account %s whose credentials run this check", roleARN, account, who.Account),
			Fix:    "run with the credentials of the role's account, or pass the role of this account that launches the instances"}
	}
	return checkRoleExists(ctx, iamAPI, CheckLauncherRole, roleARN, ", the role that launches the instances",
		"create the role, or pass the ARN of the role that calls RunInstances or CreateFleet (type instant) with --launcher-role-arn", who)
}

// checkRoleExists: the role arn names exists at that ARN. A role of that
// name at another path is a warning, and its real ARN is returned.
func checkRoleExists(ctx context.Context, iamAPI IAMAPI, check, arn, source, createFix string, who caller) (string, Result) {
	res := Result{Check: check, Resource: arn}
	name := arn[strings.LastIndex(arn, "/")+1:]
	out, err := iamAPI.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	switch {
	case awserr.IsA[*iamtypes.NoSuchEntityException](err):
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s does not exist in account %s%s", name, who.Account, source)
		res.Fix = createFix
		return arn, res
	case err != nil && isAccessDenied(err):
		res.Status = Skip
		res.Detail = fmt.Sprintf("%s may not call iam GetRole on %s: %v", who.ARN, name, err)
		res.Fix = "use credentials allowed iam:GetRole"
		return arn, res
	case err != nil:
		res.Status = Fail
		res.Detail = fmt.Sprintf("could not check: iam GetRole %s: %v", name, err)
		return arn, res
	}
	if got := aws.ToString(out.Role.Arn); got != "" && got != arn {
		res.Status = Warn
		res.Detail = fmt.Sprintf("role %s exists as %s, not at the expected ARN %s%s", name, got, arn, source)
		return got, res
	}
	res.Status = Pass
	res.Detail = fmt.Sprintf("%s exists%s", arn, source)
	return arn, res
}

// grantCreators are the principals whose CreateGrant the key policy check
// asks about: --grant-creator, or this library's grant handler roles in the
// destination account. None found: the check asks about "some principal
// of the account" and reports whom the policy allows.
func grantCreators(ctx context.Context, api IAMAPI, flag string) ([]string, string) {
	if flag != "" {
		return []string{flag}, ""
	}
	var out []string
	// The path and the name prefix the constructs give the roles.
	p := iam.NewListRolesPaginator(api, &iam.ListRolesInput{PathPrefix: aws.String(names.GrantHandlerRolePath)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Sprintf("could not list the grant handler roles under %s (%s)", names.GrantHandlerRolePath, errorCodeOr(err))
		}
		for _, r := range page.Roles {
			if strings.HasPrefix(aws.ToString(r.RoleName), names.GrantHandlerRolePrefix+"-") {
				out = append(out, aws.ToString(r.Arn))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("no grant handler role of this library (%s%s-*) in this account", names.GrantHandlerRolePath, names.GrantHandlerRolePrefix)
	}
	return out, ""
}

// Package check diagnoses why an Auto Scaling group, or another launch path
// (Input.Launcher, mapped to its principal by internal/launcher), cannot
// launch an AMI encrypted with a KMS key of another account
// ("Client.InternalError: Client error on launch"). Each check is a plain function over small
// client interfaces; Run calls them in the order the pieces depend on one
// another and keeps going after a failure, so one run shows every missing
// piece it can see.
package check

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// Input says what to check.
type Input struct {
	// ImageID is the AMI the group launches.
	ImageID string
	// ASGName names the group whose ServiceLinkedRoleARN to use; empty to
	// use SLRSuffix.
	ASGName string
	// SLRSuffix selects AWSServiceRoleForAutoScaling_<suffix>; empty (and
	// no ASGName) for the default role.
	SLRSuffix string
	// KeyARN is the key to check when the snapshots cannot tell (they are
	// not visible to the destination and there is no source profile).
	KeyARN string
	// GrantCreator is the principal that creates the grant. Empty: this
	// library's grant handler roles (path /crossaccountami/) found in the
	// destination account, or else whoever the key policy allows.
	GrantCreator string
	// Region is the destination region, where the group runs.
	Region string
	// Launcher is the launch path whose principal is checked. Empty: an
	// Auto Scaling group (ASGName, SLRSuffix), as before launchers had names.
	Launcher launcher.Kind
	// LauncherRoleARN is the role that launches, with Launcher ROLE.
	LauncherRoleARN string
}

// launcher is the launch path Input names.
func (in Input) launcher() launcher.Launcher {
	kind := in.Launcher
	if kind == "" {
		kind = launcher.AutoScaling
	}
	return launcher.Launcher{Kind: kind, SLRSuffix: in.SLRSuffix, RoleARN: in.LauncherRoleARN}
}

// principalCheck names the check of the launcher's principal.
func (in Input) principalCheck() string {
	if in.launcher().Kind == launcher.Role {
		return CheckLauncherRole
	}
	return CheckServiceLinkedRole
}

// launchPrincipal is the principal that uses the key on the launch path: the
// grantee of the grant and the key policy's principal.
type launchPrincipal struct {
	ARN  string
	Kind launcher.Kind
}

// exact reports whether the principal can get no permission from IAM
// policies of its account: a service-linked role's policy is AWS's. A role
// of the user's can (its own policy is not read here).
func (p launchPrincipal) exact() bool { return p.Kind != launcher.Role }

// operationsOf names whose operations the grant carries, in messages:
// "every operation Auto Scaling needs". AWS's pages give the same eight
// operations for each launch path (README, "Launch paths").
func (p launchPrincipal) operationsOf() string {
	switch p.Kind {
	case launcher.EC2Fleet:
		return "EC2 Fleet"
	case launcher.SpotFleet:
		return "Spot Fleet"
	case launcher.Spot:
		return "Spot"
	case launcher.Role:
		return "a launch by the role"
	}
	return "Auto Scaling" // AUTO_SCALING, EKS_MANAGED_NODE_GROUP (an Auto Scaling group)
}

// Run runs every check and returns one result per check (the key checks
// once per key when the snapshots use several).
func Run(ctx context.Context, c Clients, in Input) []Result {
	who, res := checkCaller(ctx, c.STS)
	if res.Status == Fail {
		out := []Result{res}
		for _, name := range []string{CheckImage, CheckSnapshots, CheckKey, in.principalCheck(), CheckKeyPolicyUse, CheckKeyPolicyGrant, CheckGrant} {
			out = append(out, Result{Check: name, Status: Skip, Detail: "no working credentials for the destination account"})
		}
		return out
	}
	out := []Result{res}

	image, res := checkImage(ctx, c.EC2, in.ImageID, who, in.Region)
	out = append(out, res)

	keyRefs, snapshots := checkSnapshots(ctx, c.EC2, c.SourceEC2, image, in, who)
	out = append(out, snapshots)
	if res, ok := checkCopy(image, keyRefs, who); ok {
		out = append(out, res)
	}

	var keys []keyInfo
	for _, ref := range keyRefs {
		k, res := checkKey(ctx, c.KMS, c.SourceKMS, ref, in.Region, who)
		keys = append(keys, k)
		out = append(out, res)
	}
	if len(keyRefs) == 0 {
		out = append(out, Result{Check: CheckKey, Status: Skip, Detail: noKeyReason(snapshots)})
	}

	launching, res := checkLaunchPrincipal(ctx, c.IAM, c.AutoScaling, in, who)
	out = append(out, res)

	if len(keys) == 0 {
		for _, name := range []string{CheckKeyPolicyUse, CheckKeyPolicyGrant, CheckGrant} {
			out = append(out, Result{Check: name, Status: Skip, Detail: noKeyReason(snapshots)})
		}
		return out
	}
	creators, creatorNote := grantCreators(ctx, c.IAM, in.GrantCreator)
	for _, k := range keys {
		policyClient := c.SourceKMS
		if k.Account == who.Account {
			policyClient = c.KMS
		}
		out = append(out, checkKeyPolicy(ctx, policyClient, k, launching, creators, creatorNote, who)...)
	}
	for _, k := range keys {
		out = append(out, checkGrant(ctx, c.KMS, c.SourceKMS, k, launching, who))
	}
	return out
}

func noKeyReason(snapshots Result) string {
	if snapshots.Status == Pass {
		return "the AMI's snapshots are not encrypted: no key to check"
	}
	return "the key that encrypts the AMI is not known (see the snapshots check)"
}

// caller is the identity the destination credentials belong to.
type caller struct {
	ARN, Account, Partition string
}

func checkCaller(ctx context.Context, api STSAPI) (caller, Result) {
	res := Result{Check: CheckCaller}
	out, err := api.GetCallerIdentity(ctx, nil)
	if err != nil {
		res.Status = Fail
		res.Detail = fmt.Sprintf("the destination credentials do not work: sts GetCallerIdentity: %v", err)
		res.Fix = "use credentials of the account that owns the Auto Scaling group (AWS_PROFILE, --profile, or the environment)"
		return caller{}, res
	}
	c := caller{ARN: aws.ToString(out.Arn), Account: aws.ToString(out.Account), Partition: "aws"}
	if a, err := awsid.ParseARN(c.ARN); err == nil {
		c.Partition = a.Partition
	}
	res.Status, res.Resource = Pass, c.ARN
	res.Detail = fmt.Sprintf("destination account %s as %s", c.Account, c.ARN)
	return c, res
}

// inRegion sends a KMS call to the key's region.
func inRegion(region string) []func(*kms.Options) {
	if region == "" {
		return nil
	}
	return []func(*kms.Options){func(o *kms.Options) { o.Region = region }}
}

func slrSuffixOf(slrARN string) string {
	name := slrARN[strings.LastIndex(slrARN, "/")+1:]
	suffix, _ := strings.CutPrefix(name, awsid.AutoScalingSLRName("")+"_")
	if suffix == name {
		return ""
	}
	return suffix
}

// useActions are the key policy actions the service-linked role needs:
// the grant operations it uses, CreateGrant aside.
func useActions() []string {
	var out []string
	for _, op := range grantspec.AutoScalingOperations {
		if op != "CreateGrant" {
			out = append(out, "kms:"+op)
		}
	}
	return out
}

// Package awsid validates and builds the AWS identifiers this library handles:
// account ids, KMS key ARNs, IAM role ARNs, AMI ids and service-linked role
// names. It knows nothing about CDK or Lambda, so the constructs (at synth
// time) and the handlers (at deploy time) apply the very same rules.
package awsid

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	accountRe   = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	partitionRe = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	keyIDRe     = regexp.MustCompile(`^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
	imageIDRe   = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// IAM's CreateServiceLinkedRole takes a CustomSuffix of [\w+=,.@-]+; the
	// whole name AWSServiceRoleForAutoScaling_<suffix> must stay within 64
	// characters.
	slrSuffixRe = regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{1,35}$`)
	rolePathRe  = regexp.MustCompile(`^/([\x21-\x7E]*/)?$`)
)

// ARN is a parsed Amazon Resource Name.
type ARN struct {
	Partition, Service, Region, Account, Resource string
}

func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.Account + ":" + a.Resource
}

// ParseARN splits an ARN into its parts. It checks the shape only.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ARN{}, fmt.Errorf("%q is not an ARN (expected arn:<partition>:<service>:<region>:<account>:<resource>)", s)
	}
	a := ARN{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}
	if !partitionRe.MatchString(a.Partition) {
		return ARN{}, fmt.Errorf("%q has partition %q, expected aws, aws-cn, aws-us-gov, ...", s, a.Partition)
	}
	if a.Service == "" || a.Resource == "" {
		return ARN{}, fmt.Errorf("%q is not an ARN: service and resource must not be empty", s)
	}
	return a, nil
}

// ValidateAccount checks a 12-digit AWS account id.
func ValidateAccount(account string) error {
	if !accountRe.MatchString(account) {
		return fmt.Errorf("%q is not an AWS account id (expected 12 digits)", account)
	}
	return nil
}

// ValidateRegion checks the shape of a region name such as us-east-1.
func ValidateRegion(region string) error {
	if !regionRe.MatchString(region) {
		return fmt.Errorf("%q is not an AWS region (expected a name such as us-east-1)", region)
	}
	return nil
}

// ParseKeyARN checks a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>).
// An alias ARN is rejected with its own message: KMS CreateGrant and key
// policies need the key itself, never an alias.
func ParseKeyARN(s string) (ARN, error) {
	a, err := ParseARN(s)
	if err != nil {
		return ARN{}, fmt.Errorf("expected a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>), got %q", s)
	}
	if a.Service != "kms" {
		return ARN{}, fmt.Errorf("expected a KMS key ARN, got %q (service %q)", s, a.Service)
	}
	if strings.HasPrefix(a.Resource, "alias/") {
		return ARN{}, fmt.Errorf("expected a KMS key ARN, got the alias ARN %q: grants and key policies need the key ARN (arn:aws:kms:<region>:<account>:key/<key-id>); resolve the alias with 'aws kms describe-key --key-id %s'", s, s)
	}
	if err := ValidateRegion(a.Region); err != nil {
		return ARN{}, fmt.Errorf("expected a KMS key ARN, got %q: %v", s, err)
	}
	if err := ValidateAccount(a.Account); err != nil {
		return ARN{}, fmt.Errorf("expected a KMS key ARN, got %q: %v", s, err)
	}
	id, ok := strings.CutPrefix(a.Resource, "key/")
	if !ok || !keyIDRe.MatchString(id) {
		return ARN{}, fmt.Errorf("expected a KMS key ARN ending in key/<key-id> (a UUID or mrk-<32 hex>), got %q", s)
	}
	return a, nil
}

// ValidatePrincipalARN checks an IAM principal ARN (a role, user, or account
// root) as used for a grantee or retiring principal.
func ValidatePrincipalARN(s string) error {
	a, err := ParseARN(s)
	if err != nil {
		return err
	}
	if a.Service != "iam" && a.Service != "sts" {
		return fmt.Errorf("%q is not an IAM principal ARN (expected service iam or sts, got %q)", s, a.Service)
	}
	if err := ValidateAccount(a.Account); err != nil {
		return fmt.Errorf("%q is not an IAM principal ARN: %v", s, err)
	}
	return nil
}

// ValidateImageID checks an AMI id: ami- followed by 8 or 17 hex digits.
func ValidateImageID(id string) error {
	if !imageIDRe.MatchString(id) {
		return fmt.Errorf("%q is not an AMI id (expected ami- followed by 8 or 17 lowercase hex digits)", id)
	}
	return nil
}

// ValidateSLRSuffix checks the custom suffix of a service-linked role name.
func ValidateSLRSuffix(suffix string) error {
	if !slrSuffixRe.MatchString(suffix) {
		return fmt.Errorf("%q is not a valid service-linked role suffix (expected 1 to 35 of A-Z a-z 0-9 _ + = , . @ -)", suffix)
	}
	return nil
}

// CheckSLRSuffixMistakes refuses two suffixes IAM accepts but nobody
// means, which ValidateSLRSuffix lets through because a role named so may
// exist: a suffix that repeats the role name's prefix
// (AWSServiceRoleForAutoScaling_myapp would name the role
// AWSServiceRoleForAutoScaling_AWSServiceRoleForAutoScaling_myapp) and one
// that starts with the "_" the name already puts before the suffix. The
// constructs apply it to what they are asked to create and name in key
// policies; the handlers do not, so that a stack deployed with such a
// suffix still updates and rolls back.
func CheckSLRSuffixMistakes(suffix string) error {
	prefix := AutoScalingSLRName("")
	var why, rest string
	switch {
	case len(suffix) >= len(prefix) && strings.EqualFold(suffix[:len(prefix)], prefix):
		why, rest = "repeats the role name's prefix "+prefix, strings.TrimLeft(suffix[len(prefix):], "_")
	case strings.HasPrefix(suffix, "_"):
		why, rest = `starts with the "_" that the role name already puts before the suffix`, strings.TrimLeft(suffix, "_")
	default:
		return nil
	}
	fix := fmt.Sprintf("give only what follows %s_: %q", prefix, rest)
	if rest == "" {
		fix = "leave it unset for the default role, " + prefix
	}
	return fmt.Errorf("%q %s: the role would be named %s; %s", suffix, why, AutoScalingSLRName(suffix), fix)
}

// ValidateRolePath checks an IAM path such as / or /platform/.
func ValidateRolePath(path string) error {
	if !rolePathRe.MatchString(path) || len(path) > 512 {
		return fmt.Errorf("%q is not a valid IAM path (expected / or /<name>/..., at most 512 characters)", path)
	}
	return nil
}

// AutoScalingService is the service whose service-linked role launches instances.
const AutoScalingService = "autoscaling.amazonaws.com"

// AutoScalingSLRName is the name of the Auto Scaling service-linked role,
// AWSServiceRoleForAutoScaling or AWSServiceRoleForAutoScaling_<suffix>.
func AutoScalingSLRName(suffix string) string {
	if suffix == "" {
		return "AWSServiceRoleForAutoScaling"
	}
	return "AWSServiceRoleForAutoScaling_" + suffix
}

// AutoScalingSLRARN is the ARN of the Auto Scaling service-linked role in account.
func AutoScalingSLRARN(partition, account, suffix string) string {
	return RoleARN(partition, account, "/aws-service-role/"+AutoScalingService+"/", AutoScalingSLRName(suffix))
}

// RoleARN builds an IAM role ARN from its path ("/" or "/a/b/") and name.
func RoleARN(partition, account, path, name string) string {
	if path == "" {
		path = "/"
	}
	return "arn:" + partition + ":iam::" + account + ":role" + path + name
}

// AccountRootARN is the ARN that stands for a whole account in a policy.
func AccountRootARN(partition, account string) string {
	return "arn:" + partition + ":iam::" + account + ":root"
}

// PartitionOfRegion returns the partition a region belongs to.
func PartitionOfRegion(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "aws-iso-e"
	case strings.HasPrefix(region, "us-isof-"):
		return "aws-iso-f"
	default:
		return "aws"
	}
}

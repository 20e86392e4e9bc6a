package check

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

// keyInfo is what the later checks need to know about a key.
type keyInfo struct {
	ARN, Account, Region string
}

// checkKey: the key is a customer-managed, enabled, symmetric encryption
// key in the destination region. DescribeKey works across accounts with a
// key ARN when the key policy lets the caller; otherwise the source
// profile describes it.
func checkKey(ctx context.Context, dest, source KMSAPI, ref, region string, who caller) (keyInfo, Result) {
	k := keyInfo{ARN: ref}
	if a, err := awsid.ParseARN(ref); err == nil {
		k.Account, k.Region = a.Account, a.Region
	}
	res := Result{Check: CheckKey, Resource: ref}
	var problems, fixes []string
	if k.Region != "" && region != "" && k.Region != region {
		problems = append(problems, fmt.Sprintf("the key is in %s but the group runs in %s", k.Region, region))
		fixes = append(fixes, fmt.Sprintf("a group launches an AMI only with a key of its own region: in the source account copy the AMI to %s re-encrypting it with a key there (aws ec2 copy-image --source-region %s --region %s --source-image-id <ami> --name <name> --encrypted --kms-key-id <key ARN in %s>) and share the copy and its key", region, k.Region, region, region))
	}

	in := &kms.DescribeKeyInput{KeyId: aws.String(ref)}
	out, err := dest.DescribeKey(ctx, in, inRegion(k.Region)...)
	from := "the destination account"
	if err != nil && isAccessDenied(err) && source != nil {
		out, err = source.DescribeKey(ctx, in, inRegion(k.Region)...)
		from = "the source profile"
	}
	if err != nil {
		switch {
		case awserr.IsA[*kmstypes.NotFoundException](err):
			res.Status = Fail
			res.Detail = fmt.Sprintf("key %s does not exist (or was deleted) in %s", ref, orDefault(k.Region, region))
			res.Fix = "re-encrypt the AMI with an existing customer-managed key: in the source account, aws ec2 copy-image --encrypted --kms-key-id <key ARN>"
			return k, res
		case isAccessDenied(err):
			res.Detail = fmt.Sprintf("DescribeKey on %s is denied to %s: the key policy does not allow it, which is expected with a policy that allows only the service-linked role and the grant creator", ref, who.ARN)
			res.Fix = fmt.Sprintf("run again with --source-profile <a profile of account %s>, or in that account: aws kms describe-key --key-id %s", orDefault(k.Account, "<key owner>"), ref)
		default:
			res.Detail = fmt.Sprintf("could not check: kms DescribeKey %s from %s: %v", ref, from, err)
		}
		res.Status = Skip
		if len(problems) > 0 {
			res.Status = Fail
			res.Detail = strings.Join(problems, "; ") + "; " + res.Detail
			res.Fix = strings.Join(fixes, "\n")
		}
		return k, res
	}

	md := out.KeyMetadata
	if md != nil && md.Arn != nil {
		k.ARN = *md.Arn
		res.Resource = k.ARN
		if a, err := awsid.ParseARN(k.ARN); err == nil {
			k.Account, k.Region = a.Account, a.Region
		}
	}
	if md == nil {
		res.Status = Fail
		res.Detail = fmt.Sprintf("could not check: kms DescribeKey %s returned no key metadata", ref)
		return k, res
	}
	if md.KeyManager == kmstypes.KeyManagerTypeAws {
		problems = append(problems, "it is an AWS managed key (such as aws/ebs), whose policy cannot let another account use it")
		fixes = append(fixes, fmt.Sprintf("in account %s copy the AMI re-encrypting it with a customer-managed key: aws ec2 copy-image --source-region %s --region %s --source-image-id <ami> --name <name> --encrypted --kms-key-id <customer-managed key ARN>; share the copy, and use this library's key policy statements on that key", k.Account, region, region))
	}
	switch md.KeyState {
	case kmstypes.KeyStateEnabled:
	case kmstypes.KeyStateDisabled:
		problems = append(problems, "it is disabled")
		fixes = append(fixes, fmt.Sprintf("in account %s: aws kms enable-key --key-id %s", k.Account, k.ARN))
	case kmstypes.KeyStatePendingDeletion, kmstypes.KeyStatePendingReplicaDeletion:
		problems = append(problems, fmt.Sprintf("it is scheduled for deletion (%s)", md.KeyState))
		fixes = append(fixes, fmt.Sprintf("in account %s: aws kms cancel-key-deletion --key-id %s && aws kms enable-key --key-id %s", k.Account, k.ARN, k.ARN))
	default:
		problems = append(problems, fmt.Sprintf("its state is %s, not Enabled", md.KeyState))
		fixes = append(fixes, "make the key usable (import its key material, connect its custom key store) or re-encrypt the AMI with another key")
	}
	if md.KeyUsage != "" && md.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt || md.KeySpec != "" && md.KeySpec != kmstypes.KeySpecSymmetricDefault {
		problems = append(problems, fmt.Sprintf("it is a %s %s key; EBS needs a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)", md.KeySpec, md.KeyUsage))
		fixes = append(fixes, "re-encrypt the AMI with a symmetric customer-managed key")
	}
	if len(problems) > 0 {
		res.Status = Fail
		res.Detail = fmt.Sprintf("key %s cannot serve the launch: %s", k.ARN, strings.Join(problems, "; "))
		res.Fix = strings.Join(fixes, "\n")
		return k, res
	}
	res.Status = Pass
	res.Detail = fmt.Sprintf("key %s: customer-managed, enabled, symmetric, in %s, account %s (described from %s)", k.ARN, k.Region, k.Account, from)
	return k, res
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

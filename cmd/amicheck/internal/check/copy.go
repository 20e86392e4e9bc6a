package check

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
)

// CheckCopy is the line for an image that amicopy.NewCopiedAmi copied into
// this account (only such an image gets one).
const CheckCopy = "copy"

// checkCopy recognizes a copy made by this library's
// Custom::CrossAccountAmiCopy: an image owned by this account that carries
// the tags copyspec writes (the source AMI, the owning stack and resource,
// the copy token). keys are the snapshots' keys (checkSnapshots). A copy
// re-encrypted with a key of this account launches without the source key:
// the key policy and grant checks that follow are about that key, and no
// cross-account grant is needed. ok is false for any other image.
func checkCopy(image *ec2types.Image, keys []string, who caller) (res Result, ok bool) {
	if image == nil || aws.ToString(image.OwnerId) != who.Account {
		return Result{}, false
	}
	tags := map[string]string{}
	for _, t := range image.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	source := tags[copyspec.TagCopyOf]
	if source == "" || tags[copyspec.TagStackId] == "" || !copyspec.IsCopyToken(tags[copyspec.TagCopyToken]) {
		return Result{}, false
	}
	res = Result{Check: CheckCopy, Resource: aws.ToString(image.ImageId)}
	made := fmt.Sprintf("%s is this account's copy of %s (region %s), made by the resource %s of stack %s",
		res.Resource, source, tags[copyspec.TagSourceRegion], tags[copyspec.TagLogicalId], tags[copyspec.TagStackId])
	var foreign []string
	for _, k := range keys {
		if arn, err := awsid.ParseKeyARN(k); err != nil || arn.Account != who.Account {
			foreign = append(foreign, k)
		}
	}
	switch {
	case len(keys) == 0:
		res.Status = Warn
		res.Detail = made + "; the key of its snapshots is not known (see the snapshots line)"
		res.Fix = "a copy of this library is encrypted with a key of this account: check that its snapshots are encrypted"
	case len(foreign) > 0:
		res.Status = Warn
		res.Detail = made + fmt.Sprintf("; but its snapshots are encrypted with %s, not a key of this account, so launches still need that key", strings.Join(foreign, ", "))
		res.Fix = "copy it again with a key of this account (CopiedAmiProps.DestinationKey) or the account's default EBS key"
	default:
		res.Status = Pass
		res.Detail = made + fmt.Sprintf("; its snapshots are encrypted with %s of this account: launches do not use the source key, and no cross-account grant is needed", strings.Join(keys, ", "))
	}
	return res, true
}

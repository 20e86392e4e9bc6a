package check

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
)

// checkImage: the AMI is visible to the destination account and available.
func checkImage(ctx context.Context, api EC2API, imageID string, who caller, region string) (*ec2types.Image, Result) {
	res := Result{Check: CheckImage, Resource: imageID}
	shareFix := fmt.Sprintf("in the account that owns the AMI: aws ec2 modify-image-attribute --region %s --image-id %s --launch-permission 'Add=[{UserId=%s}]'", region, imageID, who.Account)
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	switch {
	case err != nil && isImageNotFound(err), err == nil && len(out.Images) == 0:
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s is not visible to account %s in %s: it does not exist in this region, or it is not shared with this account", imageID, who.Account, region)
		res.Fix = shareFix
		return nil, res
	case err != nil && isAccessDenied(err):
		res.Status = Skip
		res.Detail = fmt.Sprintf("%s may not call ec2 DescribeImages: %v", who.ARN, err)
		res.Fix = "use credentials allowed ec2:DescribeImages and ec2:DescribeSnapshots"
		return nil, res
	case err != nil:
		res.Status = Fail
		res.Detail = fmt.Sprintf("could not check: ec2 DescribeImages %s: %v", imageID, err)
		return nil, res
	}
	img := out.Images[0]
	owner := aws.ToString(img.OwnerId)
	whose := "shared by account " + owner
	if owner == who.Account {
		whose = "owned by this account"
	}
	if img.State != ec2types.ImageStateAvailable {
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s (%s) is visible to account %s but its state is %q, not available", imageID, whose, who.Account, img.State)
		res.Fix = "wait until the image is available, or use another image"
		return &img, res
	}
	res.Status = Pass
	res.Detail = fmt.Sprintf("%s (%s) is visible to account %s and available", imageID, whose, who.Account)
	return &img, res
}

// snapshotFinding is what one snapshot told.
type snapshotFinding struct {
	id, device string
	encrypted  *bool  // nil: unknown
	key        string // the KMS key, when known
	where      string // "", "source account", or why it is not visible
}

// checkSnapshots: which of the image's snapshots are encrypted, and with
// which keys. A snapshot of a shared AMI is often not visible to the
// destination (sharing the AMI is enough to launch it); the source
// profile, or --key-arn, then tells the key.
func checkSnapshots(ctx context.Context, dest, source EC2API, image *ec2types.Image, in Input, who caller) ([]string, Result) {
	res := Result{Check: CheckSnapshots, Resource: in.ImageID}
	var keys []string
	if image == nil {
		if in.KeyARN != "" {
			res.Status = Skip
			res.Detail = "the image is not visible; checking the key given with --key-arn"
			return []string{in.KeyARN}, res
		}
		res.Status = Skip
		res.Detail = "the image is not visible, so neither are its snapshots"
		return nil, res
	}
	var found []snapshotFinding
	for _, m := range image.BlockDeviceMappings {
		if m.Ebs == nil || m.Ebs.SnapshotId == nil {
			continue
		}
		f := snapshotFinding{id: *m.Ebs.SnapshotId, device: aws.ToString(m.DeviceName), encrypted: m.Ebs.Encrypted}
		snap, err := describeSnapshot(ctx, dest, f.id)
		if err != nil {
			f.where = fmt.Sprintf("not visible to account %s (%s)", who.Account, errorCodeOr(err))
			if source != nil {
				if s, err2 := describeSnapshot(ctx, source, f.id); err2 == nil {
					snap, f.where = s, "seen from the source account"
				} else {
					f.where += fmt.Sprintf(", nor to the source profile (%s)", errorCodeOr(err2))
				}
			}
		}
		if snap != nil {
			f.encrypted = snap.Encrypted
			f.key = aws.ToString(snap.KmsKeyId)
		}
		found = append(found, f)
	}
	if len(found) == 0 {
		res.Status = Pass
		res.Detail = fmt.Sprintf("%s has no EBS snapshots (instance store): no key involved", in.ImageID)
		if in.KeyARN != "" {
			res.Status = Warn
			res.Detail += "; checking the key given with --key-arn anyway"
			keys = append(keys, in.KeyARN)
		}
		return keys, res
	}

	var parts []string
	unknown, encrypted := 0, 0
	for _, f := range found {
		desc := f.id
		if f.device != "" {
			desc += " (" + f.device + ")"
		}
		switch {
		case f.key != "":
			encrypted++
			desc += " encrypted with " + f.key
			if !slices.Contains(keys, f.key) {
				keys = append(keys, f.key)
			}
		case f.encrypted != nil && !*f.encrypted:
			desc += " not encrypted"
		case f.encrypted != nil && *f.encrypted:
			encrypted++
			unknown++
			desc += " encrypted, key not visible"
		default:
			unknown++
			desc += " encryption not visible"
		}
		if f.where != "" {
			desc += " [" + f.where + "]"
		}
		parts = append(parts, desc)
	}
	res.Detail = strings.Join(parts, "; ")

	switch {
	case len(keys) > 0 && in.KeyARN != "" && !slices.Contains(keys, in.KeyARN):
		res.Status = Warn
		res.Detail += fmt.Sprintf("; --key-arn %s is not the snapshots' key, checking the snapshots' key", in.KeyARN)
	case unknown > 0 && in.KeyARN != "":
		res.Status = Pass
		res.Detail += "; checking the key given with --key-arn"
		if !slices.Contains(keys, in.KeyARN) {
			keys = append(keys, in.KeyARN)
		}
	case unknown > 0:
		res.Status = Warn
		res.Detail += "; the key cannot be told from this account"
		res.Fix = fmt.Sprintf("run again with --source-profile <a profile of account %s, which owns the AMI>, or with --key-arn <the key's ARN>", aws.ToString(image.OwnerId))
	case encrypted == 0 && in.KeyARN != "":
		res.Status = Warn
		res.Detail += "; checking the key given with --key-arn anyway"
		keys = append(keys, in.KeyARN)
	case encrypted == 0:
		res.Status = Pass
		res.Detail += ": no KMS key involved, so KMS is not what stops the launch"
	default:
		res.Status = Pass
	}
	return keys, res
}

func describeSnapshot(ctx context.Context, api EC2API, id string) (*ec2types.Snapshot, error) {
	out, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(out.Snapshots) == 0 {
		return nil, fmt.Errorf("snapshot %s: not found", id)
	}
	return &out.Snapshots[0], nil
}

// errorCodeOr is the AWS error code of err, or its message.
func errorCodeOr(err error) string {
	if code := awserr.Code(err); code != "" {
		return code
	}
	return err.Error()
}

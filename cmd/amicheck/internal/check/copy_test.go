package check

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestCheckCopy: an image of this account with the tags a
// Custom::CrossAccountAmiCopy writes is reported as a copy, with its source
// and owner, and passes when its snapshots use a key of this account; a
// shared image, or an image of this account without those tags, gets no
// copy line. The image and its snapshots come from the EC2 fakes, as Run
// reads them.
func TestCheckCopy(t *testing.T) {
	const (
		ownKey   = "arn:aws:kms:us-east-1:111111111111:key/00000000-1111-2222-3333-444444444444"
		stackID  = "arn:aws:cloudformation:us-east-1:111111111111:stack/AmiCopy/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
		token    = "ca0123456789abcdef0123456789abcdef"
		sourceID = "ami-0fedcba9876543210"
		// ebsDefaultKey stands for the account's aws/ebs key (an AWS
		// managed key: its id is AWS's, its account this one).
		ebsDefaultKey = "arn:aws:kms:us-east-1:111111111111:key/5a5a5a5a-ebeb-4d4d-8e8e-0123456789ab"
	)
	copyTags := []ec2types.Tag{
		{Key: aws.String("crossaccountami:copy-of"), Value: aws.String(sourceID)},
		{Key: aws.String("crossaccountami:source-region"), Value: aws.String(region)},
		{Key: aws.String("crossaccountami:stack-id"), Value: aws.String(stackID)},
		{Key: aws.String("crossaccountami:logical-id"), Value: aws.String("SharedAmiCopyADD6BC0B")},
		{Key: aws.String("crossaccountami:copy-token"), Value: aws.String(token)},
	}
	cases := []struct {
		name   string
		owner  string
		tags   []ec2types.Tag
		key    string
		want   Status // "": no copy line
		detail []string
		fix    []string
	}{
		{name: "a copy re-encrypted with a key of this account", owner: destAccount, tags: copyTags, key: ownKey, want: Pass,
			detail: []string{"this account's copy of " + sourceID, "SharedAmiCopyADD6BC0B", stackID, ownKey, "do not use the source key"}},
		// CopiedAmiProps.DestinationKey nil: EBS encrypts with the
		// account's default key, aws/ebs, an AWS managed key of this
		// account whose ARN DescribeSnapshots gives like any other.
		{name: "a copy under the account's default aws/ebs key", owner: destAccount, tags: copyTags, key: ebsDefaultKey, want: Pass,
			detail: []string{"this account's copy of " + sourceID, ebsDefaultKey + " of this account", "do not use the source key"}},
		{name: "a copy whose snapshots still use the source key", owner: destAccount, tags: copyTags, key: keyARN, want: Warn,
			detail: []string{"encrypted with " + keyARN + ", not a key of this account"}, fix: []string{"DestinationKey"}},
		{name: "a shared image carrying the tags", owner: srcAccount, tags: copyTags, key: keyARN},
		{name: "an image of this account without the tags", owner: destAccount, key: ownKey},
		{name: "a tag that is no copy token", owner: destAccount, key: ownKey, tags: append(copyTags[:4:4], ec2types.Tag{Key: aws.String("crossaccountami:copy-token"), Value: aws.String("x")})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := fakeEC2{
				describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
					img := image(ec2types.ImageStateAvailable, aws.Bool(true))
					img.OwnerId, img.Tags = aws.String(tc.owner), tc.tags
					return &ec2.DescribeImagesOutput{Images: []ec2types.Image{*img}}, nil
				},
				describeSnapshots: func(in *ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
					return &ec2.DescribeSnapshotsOutput{Snapshots: []ec2types.Snapshot{{SnapshotId: aws.String(in.SnapshotIds[0]), Encrypted: aws.Bool(true), KmsKeyId: aws.String(tc.key)}}}, nil
				},
			}
			img, _ := checkImage(context.Background(), api, imageID, who, region)
			keys, _ := checkSnapshots(context.Background(), api, nil, img, Input{ImageID: imageID, Region: region}, who)
			got, ok := checkCopy(img, keys, who)
			if tc.want == "" {
				if ok {
					t.Errorf("a copy line for an image that is not this account's copy: %+v", got)
				}
				return
			}
			if !ok {
				t.Fatal("no copy line")
			}
			expect(t, got, tc.want, tc.detail, tc.fix)
		})
	}
}

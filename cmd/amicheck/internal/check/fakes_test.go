package check

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// Function-field fakes of the small interfaces. A call to a field left nil
// fails with an error naming it, so a test sees an unexpected call.

type fakeSTS struct {
	getCallerIdentity func() (*sts.GetCallerIdentityOutput, error)
}

func (f fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	if f.getCallerIdentity == nil {
		return nil, fmt.Errorf("unexpected call: GetCallerIdentity")
	}
	return f.getCallerIdentity()
}

type fakeEC2 struct {
	describeImages    func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error)
	describeSnapshots func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error)
}

func (f fakeEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	if f.describeImages == nil {
		return nil, fmt.Errorf("unexpected call: DescribeImages")
	}
	return f.describeImages(in)
}

func (f fakeEC2) DescribeSnapshots(_ context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	if f.describeSnapshots == nil {
		return nil, fmt.Errorf("unexpected call: DescribeSnapshots")
	}
	return f.describeSnapshots(in)
}

// fakeKMS passes each call the region the call's options select, so a
// test can see that calls go to the key's region.
type fakeKMS struct {
	describeKey  func(in *kms.DescribeKeyInput, region string) (*kms.DescribeKeyOutput, error)
	getKeyPolicy func(in *kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error)
	listGrants   func(in *kms.ListGrantsInput) (*kms.ListGrantsOutput, error)
}

func regionOf(optFns []func(*kms.Options)) string {
	o := kms.Options{Region: "client-default"}
	for _, f := range optFns {
		f(&o)
	}
	return o.Region
}

func (f fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	if f.describeKey == nil {
		return nil, fmt.Errorf("unexpected call: DescribeKey")
	}
	return f.describeKey(in, regionOf(optFns))
}

func (f fakeKMS) GetKeyPolicy(_ context.Context, in *kms.GetKeyPolicyInput, _ ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	if f.getKeyPolicy == nil {
		return nil, fmt.Errorf("unexpected call: GetKeyPolicy")
	}
	return f.getKeyPolicy(in)
}

func (f fakeKMS) ListGrants(_ context.Context, in *kms.ListGrantsInput, _ ...func(*kms.Options)) (*kms.ListGrantsOutput, error) {
	if f.listGrants == nil {
		return nil, fmt.Errorf("unexpected call: ListGrants")
	}
	return f.listGrants(in)
}

type fakeIAM struct {
	getRole   func(*iam.GetRoleInput) (*iam.GetRoleOutput, error)
	listRoles func(*iam.ListRolesInput) (*iam.ListRolesOutput, error)
}

func (f fakeIAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	if f.getRole == nil {
		return nil, fmt.Errorf("unexpected call: GetRole")
	}
	return f.getRole(in)
}

func (f fakeIAM) ListRoles(_ context.Context, in *iam.ListRolesInput, _ ...func(*iam.Options)) (*iam.ListRolesOutput, error) {
	if f.listRoles == nil {
		return nil, fmt.Errorf("unexpected call: ListRoles")
	}
	return f.listRoles(in)
}

type fakeASG struct {
	describe func(*autoscaling.DescribeAutoScalingGroupsInput) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
}

func (f fakeASG) DescribeAutoScalingGroups(_ context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	if f.describe == nil {
		return nil, fmt.Errorf("unexpected call: DescribeAutoScalingGroups")
	}
	return f.describe(in)
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "fake " + code}
}

// Fixtures: a destination account, a source account owning the AMI and the key.
const (
	destAccount = "111111111111"
	srcAccount  = "222222222222"
	region      = "us-east-1"
	keyARN      = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	slrARN      = "arn:aws:iam::111111111111:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	creatorARN  = "arn:aws:iam::111111111111:role/crossaccountami/GrantHandler-Dest-0123456789"
	imageID     = "ami-0123456789abcdef0"
	snapshotID  = "snap-0123456789abcdef0"
)

var who = caller{ARN: "arn:aws:iam::111111111111:user/ops", Account: destAccount, Partition: "aws"}

var srcKey = keyInfo{ARN: keyARN, Account: srcAccount, Region: region}

var _ = aws.String

// asgPrincipal is the default Auto Scaling group's principal.
var asgPrincipal = launchPrincipal{ARN: slrARN, Kind: launcher.AutoScaling}

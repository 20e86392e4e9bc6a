package amipermissionlifecycle_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/crossaccountami/crossaccountami/internal/amipermissionlifecycle"
	"github.com/crossaccountami/crossaccountami/internal/amipermissionspec"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

// snapshotAnswerLost passes calls to EC2; a ModifySnapshotAttribute that
// adds a permission reaches EC2, and its answer is replaced by an error.
type snapshotAnswerLost struct{ *ec2.Client }

func (c snapshotAnswerLost) ModifySnapshotAttribute(ctx context.Context, in *ec2.ModifySnapshotAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error) {
	out, err := c.Client.ModifySnapshotAttribute(ctx, in, optFns...)
	if err == nil && in.OperationType == types.OperationTypeAdd {
		return nil, fmt.Errorf("injected: the answer of ModifySnapshotAttribute on %s was lost", aws.ToString(in.SnapshotId))
	}
	return out, err
}

// Against moto's EC2: a Create that shared the AMI and its snapshot fails;
// the rollback Delete of the id it answers removes both permissions and
// leaves another account's.
func TestFailedCreateIsRolledBackAgainstMoto(t *testing.T) {
	m := moto.Start(t)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	ec2Client := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: creds})
	kmsClient := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: creds})

	// GIVEN an AMI with a snapshot, shared by hand with 999999999999
	imgs, err := ec2Client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("DescribeImages: %v", err)
	}
	run, err := ec2Client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeT3Micro})
	if err != nil {
		t.Fatal(err)
	}
	img, err := ec2Client.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: run.Instances[0].InstanceId, Name: aws.String("rollback")})
	if err != nil {
		t.Fatal(err)
	}
	imageID := aws.ToString(img.ImageId)
	d, err := ec2Client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil || len(d.Images) != 1 {
		t.Fatalf("DescribeImages %s: %v", imageID, err)
	}
	var snapshots []string
	for _, bdm := range d.Images[0].BlockDeviceMappings {
		if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
			snapshots = append(snapshots, *bdm.Ebs.SnapshotId)
		}
	}
	if len(snapshots) == 0 {
		t.Fatalf("moto's image %s has no snapshot", imageID)
	}
	if _, err := ec2Client.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(imageID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String("999999999999")}}}}); err != nil {
		t.Fatal(err)
	}
	launch := func() []string { return moto.LaunchPermissions(t, ec2Client, imageID) }
	volume := func() []string {
		var got []string
		for _, s := range snapshots {
			out, err := ec2Client.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(s), Attribute: types.SnapshotAttributeNameCreateVolumePermission})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range out.CreateVolumePermissions {
				got = append(got, s+" "+aws.ToString(p.UserId)+string(p.Group))
			}
		}
		slices.Sort(got)
		return got
	}
	serveWith := func(api amipermissionlifecycle.EC2, ev cfn.Event) (string, error) {
		router := customresource.NewRouter()
		router.SafetyMargin = 2 * time.Second
		router.Handle(amipermissionspec.ResourceType, amipermissionlifecycle.New(api, kmsClient))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		id, _, err := router.Serve(ctx, ev)
		return id, err
	}
	p := props("ImageId", imageID, "AccountIds", list("222222222222", "333333333333"), "ShareSnapshots", "true")

	// WHEN the Create adds the permissions and the snapshot step fails
	id, err := serveWith(snapshotAnswerLost{ec2Client}, event(cfn.RequestCreate, "", p))
	// THEN it answers the physical id
	if want := amipermissionspec.NewPhysicalID(imageID, stackID, "Sharing").String(); err == nil || id != want {
		t.Fatalf("answer %q, %v; want FAILED with %q", id, err, want)
	}
	if got, want := launch(), []string{"222222222222", "333333333333", "999999999999"}; !slices.Equal(got, want) {
		t.Fatalf("launch permissions after the failed Create %v, want %v", got, want)
	}
	if got := volume(); len(got) == 0 {
		t.Fatal("the failed Create added no create-volume permission")
	}

	// WHEN CloudFormation rolls back with a Delete of that id
	if _, err := serveWith(ec2Client, event(cfn.RequestDelete, id, p)); err != nil {
		t.Fatalf("rollback Delete: %v", err)
	}
	// THEN only the permission granted by hand to another account is left
	if got, want := launch(), []string{"999999999999"}; !slices.Equal(got, want) {
		t.Errorf("launch permissions after the rollback %v, want %v", got, want)
	}
	if got := volume(); len(got) != 0 {
		t.Errorf("create-volume permissions after the rollback %v, want none", got)
	}
	if t.Failed() {
		t.Logf("moto:\n%s", m.Log())
	}
}

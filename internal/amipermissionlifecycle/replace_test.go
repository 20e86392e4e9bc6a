package amipermissionlifecycle_test

import (
	"context"
	"slices"
	"strings"
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

const newImage = "ami-0aaaaaaaaaaaaaaaa"

// Changing ImageId shares the new AMI first. CloudFormation's rollback
// Update after a FAILED answer only re-applies the old AMI, so a replacing
// Update that fails after it shared the new AMI unshares it (launch and
// create-volume permissions) before it answers, keeping time for that.
func TestFailedReplacingUpdateUnsharesTheNewAMI(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(f *fakeEC2)
	}{
		{"the snapshot step fails", func(f *fakeEC2) { f.snapErr = map[string]error{snap2: clientErr("UnauthorizedOperation")} }},
		{"the deadline passes during ModifyImageAttribute", func(f *fakeEC2) { f.stalled = make(chan struct{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN the new AMI, with two snapshots, shared by hand with 999999999999
			f := &fakeEC2{imageID: newImage, key: cmk, snapshots: []string{snap, snap2}, granted: map[string]bool{"999999999999": true}}
			tc.prepare(f)
			h := amipermissionlifecycle.New(f, keys)
			h.CleanupReserve = 500 * time.Millisecond
			ev := event(cfn.RequestUpdate, physicalID, props("ImageId", newImage, "AccountIds", list("222222222222"), "OrganizationArns", list(orgArn), "ShareSnapshots", "true"))
			ev.OldResourceProperties = props("AccountIds", list("222222222222"), "ShareSnapshots", "true")

			// WHEN the Update fails after sharing the new AMI
			id, err := serve(t, h, ev, 3*time.Second)
			if f.stalled != nil {
				<-f.stalled
			}

			// THEN it answers FAILED with the old physical id, says it unshared the new AMI
			if err == nil || id != "" {
				t.Fatalf("answer %q, %v; want FAILED with the old physical id", id, err)
			}
			if !strings.Contains(err.Error(), "removed the permissions it added on "+newImage) {
				t.Errorf("reason %q does not say it cleaned up", err)
			}
			// AND only the permission of another account is left on it, and the old AMI was not touched
			launch, volumes := f.state()
			if !slices.Equal(launch, []string{"999999999999"}) || len(volumes) != 0 {
				t.Errorf("new AMI after the failed Update: launch %v, create-volume %v", launch, volumes)
			}
			for _, img := range f.modified {
				if img != newImage {
					t.Errorf("ModifyImageAttribute of %s", img)
				}
			}
		})
	}
}

// A replacing Update that fails before it shares the new AMI (its snapshots
// are encrypted with aws/ebs) changes nothing.
func TestReplacingUpdateFailingBeforeSharingChangesNothing(t *testing.T) {
	f := &fakeEC2{imageID: newImage, key: ebsKey}
	ev := event(cfn.RequestUpdate, physicalID, props("ImageId", newImage, "AccountIds", list("222222222222")))
	ev.OldResourceProperties = props("AccountIds", list("222222222222"))
	if _, err := serve(t, amipermissionlifecycle.New(f, keys), ev, 3*time.Second); err == nil || !strings.Contains(err.Error(), "aws/ebs") {
		t.Fatalf("error %v", err)
	}
	if len(f.modified) != 0 || len(f.snaps) != 0 {
		t.Errorf("modified %v, snapshots %v", f.modified, f.snaps)
	}
}

// Against moto's EC2: a replacing Update whose snapshot step loses its
// answer leaves the new AMI shared with nobody but the account it was
// shared with by hand, and the old AMI as it was.
func TestFailedReplacingUpdateUnsharesTheNewAMIAgainstMoto(t *testing.T) {
	m := moto.Start(t)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	ec2Client := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: creds})
	kmsClient := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: creds})
	imgs, err := ec2Client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("DescribeImages: %v", err)
	}
	run, err := ec2Client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeT3Micro})
	if err != nil {
		t.Fatal(err)
	}
	newAMI := func(name string) string {
		img, err := ec2Client.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: run.Instances[0].InstanceId, Name: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(img.ImageId)
	}
	oldID, newID := newAMI("old"), newAMI("new")
	launch := func(id string) []string { return moto.LaunchPermissions(t, ec2Client, id) }
	serveWith := func(api amipermissionlifecycle.EC2, ev cfn.Event) (string, error) {
		router := customresource.NewRouter()
		router.SafetyMargin = 2 * time.Second
		router.Handle(amipermissionspec.ResourceType, amipermissionlifecycle.New(api, kmsClient))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		id, _, err := router.Serve(ctx, ev)
		return id, err
	}
	// GIVEN the resource shares the old AMI, and the new one is shared by hand with 999999999999
	oldProps := props("ImageId", oldID, "AccountIds", list("222222222222"), "ShareSnapshots", "true")
	id, err := serveWith(ec2Client, event(cfn.RequestCreate, "", oldProps))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec2Client.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(newID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String("999999999999")}}}}); err != nil {
		t.Fatal(err)
	}

	// WHEN an Update moves the sharing to the new AMI and its snapshot step fails
	ev := event(cfn.RequestUpdate, id, props("ImageId", newID, "AccountIds", list("222222222222"), "ShareSnapshots", "true"))
	ev.OldResourceProperties = oldProps
	got, err := serveWith(snapshotAnswerLost{ec2Client}, ev)

	// THEN it fails with the old physical id, the new AMI keeps only the
	// hand-made permission, and the old AMI is still shared
	if err == nil || got != "" {
		t.Fatalf("answer %q, %v; want FAILED with the old physical id", got, err)
	}
	if l := launch(newID); !slices.Equal(l, []string{"999999999999"}) {
		t.Errorf("new AMI's launch permissions %v, want [999999999999]", l)
	}
	if l := launch(oldID); !slices.Equal(l, []string{"222222222222"}) {
		t.Errorf("old AMI's launch permissions %v, want [222222222222]", l)
	}
	if t.Failed() {
		t.Logf("moto:\n%s", m.Log())
	}
}

// A Delete whose properties do not say which permissions to remove fails,
// naming the AMI, how to unshare it by hand and --retain-resources, rather
// than answer SUCCESS and leave the AMI shared. A Delete whose physical id
// names no AMI (a Create that failed before sharing) succeeds without a call.
func TestDeleteThatCannotTellWhatToRemoveFails(t *testing.T) {
	for _, tc := range []struct {
		name     string
		physical string
		props    map[string]interface{}
		wants    []string // nil for success
	}{
		{"invalid account", physicalID, props("AccountIds", list("2222")),
			[]string{"cannot tell which permissions to remove from " + image, "AccountIds", `"2222"`,
				"aws ec2 describe-image-attribute --image-id " + image + " --attribute launchPermission", "--retain-resources Sharing"}},
		{"nothing to share with", physicalID, props(),
			[]string{"cannot tell which permissions to remove from " + image, "at least one is required", "--retain-resources Sharing"}},
		{"the request id of a failed Create", requestID, props("AccountIds", list("2222")), nil},
		{"a physical id that names nothing", "not-an-ami/0123456789abcdef", props(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{granted: map[string]bool{"222222222222": true}}
			_, err := serve(t, amipermissionlifecycle.New(f, keys), event(cfn.RequestDelete, tc.physical, tc.props), 3*time.Second)
			if tc.wants == nil && err != nil {
				t.Errorf("Delete failed: %v", err)
			}
			for _, w := range tc.wants {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not contain %q", err, w)
				}
			}
			if len(f.calls) != 0 {
				t.Errorf("calls %v", f.calls)
			}
		})
	}
}

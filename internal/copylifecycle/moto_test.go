package copylifecycle

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/crossaccountami/crossaccountami/internal/copyspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

// moto 5.2.1's CopyImage (moto/ec2/models/amis.py, responses/amis.py)
// reads only SourceImageId, SourceRegion, Name and Description: it ignores
// ClientToken, Encrypted, KmsKeyId, CopyImageTags and TagSpecifications;
// the copy is "available" at once, with one unencrypted snapshot of its
// own; the source must be in the same account. motoTagging applies the
// TagSpecifications with CreateTags after the CopyImage, as EC2 applies
// them when it makes the copy, so that the lifecycle's ownership checks
// can be exercised; everything else reaches moto unchanged.
type motoTagging struct {
	*ec2.Client
	t *testing.T
}

func (c motoTagging) CopyImage(ctx context.Context, in *ec2.CopyImageInput, optFns ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	out, err := c.Client.CopyImage(ctx, in, optFns...)
	if err != nil {
		return out, err
	}
	d, err := c.Client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(out.ImageId)}})
	if err != nil || len(d.Images) != 1 {
		c.t.Fatalf("moto: DescribeImages of its copy %s: %v", aws.ToString(out.ImageId), err)
	}
	for _, ts := range in.TagSpecifications {
		ids := []string{aws.ToString(out.ImageId)}
		if ts.ResourceType == types.ResourceTypeSnapshot {
			ids = snapshotsOf(&d.Images[0])
		}
		if _, err := c.Client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: ts.Tags}); err != nil {
			c.t.Fatalf("moto: CreateTags %v: %v", ids, err)
		}
	}
	return out, nil
}

// countingEC2 records the calls the machine makes, by operation.
type countingEC2 struct {
	EC2
	mu    sync.Mutex
	calls []string
}

func (c *countingEC2) rec(op string) { c.mu.Lock(); c.calls = append(c.calls, op); c.mu.Unlock() }

func (c *countingEC2) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.Join(c.calls, " ")
	c.calls = nil
	return s
}

func (c *countingEC2) CopyImage(ctx context.Context, in *ec2.CopyImageInput, o ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	c.rec("CopyImage")
	return c.EC2.CopyImage(ctx, in, o...)
}

func (c *countingEC2) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, o ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	c.rec("DescribeImages")
	return c.EC2.DescribeImages(ctx, in, o...)
}

func (c *countingEC2) DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, o ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	c.rec("DeregisterImage")
	return c.EC2.DeregisterImage(ctx, in, o...)
}

func (c *countingEC2) DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, o ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	c.rec("DescribeSnapshots")
	return c.EC2.DescribeSnapshots(ctx, in, o...)
}

func (c *countingEC2) DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, o ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	c.rec("DeleteSnapshot")
	return c.EC2.DeleteSnapshot(ctx, in, o...)
}

// The whole lifecycle against moto's EC2, in process: Create, a duplicate
// Create, a replacing Update and its rollback, the cleanup's Delete, the
// final Delete (twice), and a Delete that names an image the resource did
// not make.
func TestLifecycleAgainstMoto(t *testing.T) {
	m := moto.Start(t)
	ctx := context.Background()
	client := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	const motoStack = "arn:aws:cloudformation:us-east-1:123456789012:stack/app/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
	const motoKey = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

	// GIVEN two source AMIs (moto's own, in us-east-1) and an image of this
	// account that the resource did not make
	imgs, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) < 2 {
		t.Fatalf("DescribeImages: %v", err)
	}
	srcA, srcB := aws.ToString(imgs.Images[0].ImageId), aws.ToString(imgs.Images[1].ImageId)
	run, err := client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(srcA), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeT3Micro})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := client.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: run.Instances[0].InstanceId, Name: aws.String("someone-elses")})
	if err != nil {
		t.Fatal(err)
	}
	other := aws.ToString(mine.ImageId)

	h := newHarness(t)
	counted := &countingEC2{EC2: motoTagging{Client: client, t: t}}
	h.m = &Machine{EC2: counted, Continuer: h, Responder: h, Clock: h.clock, Region: "us-east-1", Logger: slog.New(slog.DiscardHandler)}
	ev := func(typ cfn.RequestType, req, physical, src, old string) cfn.Event {
		e := h.event(typ, req, physical, map[string]interface{}{copyspec.PropSourceImageId: src, copyspec.PropKmsKeyId: motoKey, copyspec.PropName: "web"}, nil)
		if old != "" {
			e.OldResourceProperties = map[string]interface{}{copyspec.PropSourceImageId: old, copyspec.PropKmsKeyId: motoKey, copyspec.PropName: "web"}
		}
		e.StackID = motoStack
		return e
	}
	images := func() []string {
		out, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, i := range out.Images {
			ids = append(ids, aws.ToString(i.ImageId))
		}
		slices.Sort(ids)
		return ids
	}
	calls := map[string]string{}

	// WHEN CloudFormation creates the resource
	h.deliver(ev(cfn.RequestCreate, requestA, "", srcA, ""))
	created := h.only(cfn.StatusSuccess)
	calls["Create"] = counted.take()
	copyA := created.Data[copyspec.AttrImageId].(string)
	if !slices.Equal(images(), sorted(other, copyA)) {
		t.Fatalf("images %v, want %s and the copy %s", images(), other, copyA)
	}
	d, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{copyA}})
	if err != nil {
		t.Fatal(err)
	}
	if tg := tagsOf(d.Images[0].Tags); tg[copyspec.TagCopyOf] != srcA || tg[copyspec.TagStackId] != motoStack || !strings.HasPrefix(aws.ToString(d.Images[0].Name), "web-") {
		t.Errorf("copy %s: name %q, tags %v", copyA, aws.ToString(d.Images[0].Name), tg)
	}
	snapA := created.Data[copyspec.AttrSnapshotIds].(string)
	snap, err := client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapA}})
	if err != nil || len(snap.Snapshots) != 1 {
		t.Fatalf("DescribeSnapshots %s: %v", snapA, err)
	}
	t.Logf("moto: the copy's snapshot %s is Encrypted=%v KmsKeyId=%q (CopyImage asked Encrypted with %s)", snapA, aws.ToBool(snap.Snapshots[0].Encrypted), aws.ToString(snap.Snapshots[0].KmsKeyId), motoKey)

	// AND Lambda delivers the Create again
	h.deliver(ev(cfn.RequestCreate, requestA, "", srcA, ""))
	if again := h.only(cfn.StatusSuccess); again.PhysicalResourceID != created.PhysicalResourceID {
		t.Errorf("the duplicate answered %q, want %q", again.PhysicalResourceID, created.PhysicalResourceID)
	}
	calls["Create (duplicate)"] = counted.take()
	if len(images()) != 2 {
		t.Errorf("the duplicate made another copy: %v", images())
	}

	// AND a replacing Update, then its rollback, then the cleanup's Delete
	h.deliver(ev(cfn.RequestUpdate, "update-1", created.PhysicalResourceID, srcB, srcA))
	replaced := h.only(cfn.StatusSuccess)
	calls["Update (replacing)"] = counted.take()
	h.deliver(ev(cfn.RequestUpdate, "rollback-1", replaced.PhysicalResourceID, srcA, srcB))
	if back := h.only(cfn.StatusSuccess); back.PhysicalResourceID != created.PhysicalResourceID {
		t.Errorf("the rollback answered %q, want the old copy %q", back.PhysicalResourceID, created.PhysicalResourceID)
	}
	calls["Update (rollback to the old copy)"] = counted.take()
	h.deliver(ev(cfn.RequestDelete, "cleanup-1", replaced.PhysicalResourceID, srcB, ""))
	h.only(cfn.StatusSuccess)
	calls["Delete"] = counted.take()
	if !slices.Equal(images(), sorted(other, copyA)) {
		t.Errorf("after the rollback's cleanup: images %v, want %s and the old copy %s", images(), other, copyA)
	}

	// AND a Delete that names the image the resource did not make
	h.deliver(ev(cfn.RequestDelete, "delete-other", other+"/"+created.PhysicalResourceID[len(copyA)+1:], srcA, ""))
	if a := h.only(cfn.StatusFailed); !strings.Contains(a.Reason, "does not carry this resource's tags") {
		t.Errorf("reason %q", a.Reason)
	}
	counted.take()

	// AND the stack's Delete, twice
	for i := range 2 {
		h.deliver(ev(cfn.RequestDelete, "delete", created.PhysicalResourceID, srcA, ""))
		h.only(cfn.StatusSuccess)
		if c := counted.take(); i == 1 {
			calls["Delete (again)"] = c
		}
	}

	// THEN only the image the resource did not make is left, with its snapshot
	if !slices.Equal(images(), []string{other}) {
		t.Errorf("images %v, want only %s", images(), other)
	}
	if _, err := client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapA}}); err == nil {
		t.Errorf("the copy's snapshot %s is still there", snapA)
	}
	for _, k := range []string{"Create", "Create (duplicate)", "Update (replacing)", "Update (rollback to the old copy)", "Delete", "Delete (again)"} {
		t.Logf("calls, %s: %s", k, calls[k])
	}

}

func sorted(s ...string) []string { slices.Sort(s); return s }

package amipermissionlifecycle_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/amipermissionlifecycle"
	"github.com/crossaccountami/crossaccountami/internal/amipermissionspec"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

const (
	image   = "ami-0123456789abcdef0"
	snap    = "snap-0123456789abcdef0"
	ebsKey  = "arn:aws:kms:us-east-1:111111111111:key/aaaaaaaa-12ab-34cd-56ef-1234567890ab"
	cmk     = "arn:aws:kms:us-east-1:111111111111:key/bbbbbbbb-12ab-34cd-56ef-1234567890ab"
	stackID = "arn:aws:cloudformation:us-east-1:111111111111:stack/Source/uuid"
	orgArn  = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
)

// fakeEC2 records the modifications it receives.
type fakeEC2 struct {
	// imageID is the AMI's id; default: image.
	imageID  string
	imageErr error
	key      string // the snapshot's key, "" for an unencrypted snapshot
	calls    []string
	launch   []string // "+222222222222", "-org:..."
	snaps    []string

	// snapshots are the AMI's snapshots; default: snap.
	snapshots []string
	// modifyErr fails ModifyImageAttribute; snapErr fails the
	// ModifySnapshotAttribute of a snapshot (nothing is changed).
	modifyErr error
	snapErr   map[string]error
	// stalled, when not nil, makes ModifyImageAttribute apply its change and
	// then wait for its context to end, as a call in flight when the
	// handler's deadline passes; it is closed when that call returns. Only
	// the first call stalls.
	stalled     chan struct{}
	stalledDone bool
	// granted holds the launch permissions now in place
	// ("222222222222", an organization ARN); volume the create-volume
	// permissions ("snap-... 222222222222").
	granted, volume map[string]bool
	// modified lists the image ids of the ModifyImageAttribute calls.
	modified []string
}

func (f *fakeEC2) id() string {
	if f.imageID == "" {
		return image
	}
	return f.imageID
}

func (f *fakeEC2) amiSnapshots() []string {
	if f.snapshots == nil {
		return []string{snap}
	}
	return f.snapshots
}

// state lists the permissions in place, sorted.
func (f *fakeEC2) state() (launch, volume []string) {
	for k, ok := range f.granted {
		if ok {
			launch = append(launch, k)
		}
	}
	for k, ok := range f.volume {
		if ok {
			volume = append(volume, k)
		}
	}
	slices.Sort(launch)
	slices.Sort(volume)
	return launch, volume
}

func (f *fakeEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.calls = append(f.calls, "DescribeImages")
	if f.imageErr != nil {
		return nil, f.imageErr
	}
	var mappings []types.BlockDeviceMapping
	for i, s := range f.amiSnapshots() {
		mappings = append(mappings, types.BlockDeviceMapping{DeviceName: aws.String(fmt.Sprintf("/dev/xvd%c", 'a'+i)), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(s), Encrypted: aws.Bool(f.key != "")}})
	}
	return &ec2.DescribeImagesOutput{Images: []types.Image{{ImageId: aws.String(f.id()), BlockDeviceMappings: mappings}}}, nil
}

func (f *fakeEC2) DescribeSnapshots(_ context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	f.calls = append(f.calls, "DescribeSnapshots")
	return &ec2.DescribeSnapshotsOutput{Snapshots: []types.Snapshot{{SnapshotId: aws.String(snap), Encrypted: aws.Bool(true), KmsKeyId: aws.String(f.key)}}}, nil
}

func (f *fakeEC2) ModifyImageAttribute(ctx context.Context, in *ec2.ModifyImageAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error) {
	f.calls = append(f.calls, "ModifyImageAttribute")
	f.modified = append(f.modified, aws.ToString(in.ImageId))
	if f.imageErr != nil {
		return nil, f.imageErr
	}
	if f.modifyErr != nil {
		return nil, f.modifyErr
	}
	if f.granted == nil {
		f.granted = map[string]bool{}
	}
	show := func(sign string, ps []types.LaunchPermission) {
		for _, p := range ps {
			target := aws.ToString(p.UserId) + aws.ToString(p.OrganizationArn) + aws.ToString(p.OrganizationalUnitArn)
			f.launch = append(f.launch, sign+target)
			f.granted[target] = sign == "+"
		}
	}
	show("+", in.LaunchPermission.Add)
	show("-", in.LaunchPermission.Remove)
	if f.stalled != nil && !f.stalledDone {
		f.stalledDone = true
		defer close(f.stalled)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &ec2.ModifyImageAttributeOutput{}, nil
}

func (f *fakeEC2) ModifySnapshotAttribute(_ context.Context, in *ec2.ModifySnapshotAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error) {
	f.calls = append(f.calls, "ModifySnapshotAttribute")
	if in.Attribute != types.SnapshotAttributeNameCreateVolumePermission || in.CreateVolumePermission != nil {
		return nil, fmt.Errorf("not the Attribute/OperationType/UserIds form: %+v", in)
	}
	if err := f.snapErr[aws.ToString(in.SnapshotId)]; err != nil && in.OperationType == types.OperationTypeAdd {
		return nil, err
	}
	f.snaps = append(f.snaps, fmt.Sprintf("%s %s %v", aws.ToString(in.SnapshotId), in.OperationType, in.UserIds))
	if f.volume == nil {
		f.volume = map[string]bool{}
	}
	for _, a := range in.UserIds {
		f.volume[aws.ToString(in.SnapshotId)+" "+a] = in.OperationType == types.OperationTypeAdd
	}
	return &ec2.ModifySnapshotAttributeOutput{}, nil
}

type fakeKMS map[string]kmstypes.KeyManagerType

func (f fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return &kms.DescribeKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{Arn: in.KeyId, KeyManager: f[aws.ToString(in.KeyId)]}}, nil
}

var keys = fakeKMS{ebsKey: kmstypes.KeyManagerTypeAws, cmk: kmstypes.KeyManagerTypeCustomer}

func props(kv ...interface{}) map[string]interface{} {
	out := map[string]interface{}{"ServiceToken": "x", "ImageId": image}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func list(s ...string) []interface{} {
	out := []interface{}{}
	for _, x := range s {
		out = append(out, x)
	}
	return out
}

func req(rt cfn.RequestType, physical string, p, old map[string]interface{}) customresource.Request {
	return customresource.Request{RequestType: rt, ResourceType: amipermissionspec.ResourceType, StackID: stackID, RequestID: "r", LogicalResourceID: "Sharing", PhysicalResourceID: physical, Properties: p, OldProperties: old}
}

func TestCreateRefusesTheAWSManagedKey(t *testing.T) {
	for _, tc := range []struct {
		name, key, wantErr string
	}{
		{"unencrypted", "", ""},
		{"customer managed key", cmk, ""},
		{"aws/ebs", ebsKey, "encrypted with the AWS managed key aws/ebs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{key: tc.key}
			_, err := amipermissionlifecycle.New(f, keys).Create(context.Background(), req(cfn.RequestCreate, "", props("AccountIds", list("222222222222")), nil))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "customer managed key") || !strings.Contains(err.Error(), snap)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tc.wantErr != "" && len(f.launch) != 0 {
				t.Errorf("shared anyway: %v", f.launch)
			}
		})
	}
}

func TestUpdateAddsAndRemovesTheDifference(t *testing.T) {
	f := &fakeEC2{key: cmk}
	h := amipermissionlifecycle.New(f, keys)
	old := props("AccountIds", list("222222222222", "333333333333"), "ShareSnapshots", "true")
	res, err := h.Create(context.Background(), req(cfn.RequestCreate, "", old, nil))
	if err != nil {
		t.Fatal(err)
	}
	f.launch, f.snaps = nil, nil
	now := props("AccountIds", list("333333333333", "444444444444"), "OrganizationArns", list(orgArn), "ShareSnapshots", "true")
	res2, err := h.Update(context.Background(), req(cfn.RequestUpdate, res.PhysicalResourceID, now, old))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"+444444444444", "+" + orgArn, "-222222222222"}
	if !slices.Equal(f.launch, want) || res2.PhysicalResourceID != res.PhysicalResourceID {
		t.Errorf("launch changes %v, want %v; ids %s %s", f.launch, want, res.PhysicalResourceID, res2.PhysicalResourceID)
	}
	wantSnaps := []string{snap + " add [444444444444]", snap + " remove [222222222222]"}
	if !slices.Equal(f.snaps, wantSnaps) {
		t.Errorf("snapshot changes %v, want %v", f.snaps, wantSnaps)
	}
}

func TestDeleteToleratesAGoneAMI(t *testing.T) {
	id := amipermissionspec.NewPhysicalID(image, stackID, "Sharing").String()
	for _, code := range []string{"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"} {
		for _, share := range []string{"true", "false"} {
			t.Run(code+"/snapshots "+share, func(t *testing.T) {
				f := &fakeEC2{imageErr: &smithy.GenericAPIError{Code: code, Message: "gone"}}
				if err := amipermissionlifecycle.New(f, keys).Delete(context.Background(), req(cfn.RequestDelete, id, props("AccountIds", list("222222222222"), "ShareSnapshots", share), nil)); err != nil {
					t.Errorf("Delete: %v", err)
				}
			})
		}
	}
	t.Run("removes only its own", func(t *testing.T) {
		f := &fakeEC2{}
		if err := amipermissionlifecycle.New(f, keys).Delete(context.Background(), req(cfn.RequestDelete, id, props("AccountIds", list("222222222222"), "OrganizationArns", list(orgArn)), nil)); err != nil {
			t.Fatal(err)
		}
		if want := []string{"-222222222222", "-" + orgArn}; !slices.Equal(f.launch, want) {
			t.Errorf("launch changes %v, want %v", f.launch, want)
		}
	})
}

package sourcehandler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/crossaccountami/crossaccountami/internal/amipermissionspec"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
	"github.com/crossaccountami/crossaccountami/internal/lambdaenv"
	"github.com/crossaccountami/crossaccountami/internal/sourcehandler"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

const (
	stackID = "arn:aws:cloudformation:us-east-1:123456789012:stack/AmiSource/11111111-2222-3333-4444-555555555555"
	orgArn  = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
)

// env points the SDK's KMS and EC2 clients at endpoint.
func env(endpoint string) map[string]string {
	e := moto.Env(endpoint)
	e["AWS_ENDPOINT_URL_EC2"] = endpoint
	return e
}

type invoker func(t *testing.T, payload []byte)

type harness struct {
	invoke invoker
	cfn    *cfnresponse.Server
	kms    *kms.Client
	ec2    *ec2.Client
	seq    int
}

func newHarness(t *testing.T, m *moto.Server, invoke invoker) *harness {
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	return &harness{
		invoke: invoke,
		cfn:    cfnresponse.Start(t),
		kms:    kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: creds}),
		ec2:    ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: creds}),
	}
}

// send runs one event and returns its single, well-formed answer.
func (h *harness) send(t *testing.T, requestType, resourceType, physicalID string, props, oldProps map[string]interface{}) cfnresponse.Answer {
	t.Helper()
	h.seq++
	ev := map[string]interface{}{
		"RequestType": requestType, "ResourceType": resourceType, "StackId": stackID,
		"RequestId":          fmt.Sprintf("00000000-0000-4000-8000-%012d", h.seq),
		"LogicalResourceId":  "Resource",
		"ResponseURL":        h.cfn.URL + "/response?X-Amz-Signature=abc",
		"ResourceProperties": props,
	}
	if physicalID != "" {
		ev["PhysicalResourceId"] = physicalID
	}
	if oldProps != nil {
		ev["OldResourceProperties"] = oldProps
	}
	payload, _ := json.Marshal(ev)
	h.cfn.Reset()
	h.invoke(t, payload)
	answers := h.cfn.Answers()
	if err := cfnresponse.Check(answers, cfnresponse.Request{StackId: stackID, RequestId: ev["RequestId"].(string), LogicalResourceId: "Resource"}); err != nil {
		t.Fatalf("%s %s: %v", requestType, resourceType, err)
	}
	return answers[0]
}

func inProcess(t *testing.T, endpoint string) invoker {
	for k, v := range env(endpoint) {
		t.Setenv(k, v)
	}
	cfg, err := lambdaenv.Load()
	if err != nil {
		t.Fatal(err)
	}
	router := sourcehandler.NewRouter(cfg)
	router.SafetyMargin = 2 * time.Second
	handle := router.LambdaHandler()
	return func(t *testing.T, payload []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := handle(ctx, payload); err != nil {
			t.Fatalf("invocation failed: %v", err)
		}
	}
}

// The key's owner wrote this policy, pretty-printed, before the app existed.
const ownerPolicy = `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : { "AWS" : "arn:aws:iam::123456789012:root" },
    "Action" : "kms:*",
    "Resource" : "*"
  }, {
    "Effect" : "Allow",
    "Principal" : { "AWS" : "arn:aws:iam::123456789012:role/ImageBuilder" },
    "Action" : [ "kms:Encrypt", "kms:GenerateDataKey*" ],
    "Resource" : "*"
  } ]
}`

// sidSuffix is the mark of the stack the events name (123456789012,
// us-east-1, "AmiSource"): the first 8 hex digits of
// sha256("123456789012\x00us-east-1\x00AmiSource").
const sidSuffix = " [crossaccountami 1e05c9bd]"

// statement is one of the resource's statements: its Sid carries the mark.
func statement(sid, account string) string {
	return fmt.Sprintf(`{"Sid":%q,"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}`, sid+sidSuffix, account)
}

func keyPolicyProps(keyArn string, stmts ...string) map[string]interface{} {
	return map[string]interface{}{"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", "KeyArn": keyArn, "Statements": "[" + strings.Join(stmts, ",") + "]", "SidSuffix": sidSuffix}
}

// rawStatements returns each statement's exact bytes, in order.
func rawStatements(t *testing.T, policy string) []string {
	t.Helper()
	var doc struct{ Statement []json.RawMessage }
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatalf("%v: %s", err, policy)
	}
	var out []string
	for _, s := range doc.Statement {
		out = append(out, string(s))
	}
	return out
}

func (h *harness) policy(t *testing.T, keyArn string) string {
	t.Helper()
	out, err := h.kms.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: aws.String(keyArn), PolicyName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Policy)
}

func keyPolicySequence(t *testing.T, h *harness) {
	ctx := context.Background()
	key, err := h.kms.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyArn := aws.ToString(key.KeyMetadata.Arn)
	if _, err := h.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyArn), PolicyName: aws.String("default"), Policy: aws.String(ownerPolicy)}); err != nil {
		t.Fatal(err)
	}
	owner := rawStatements(t, ownerPolicy)

	// Create: the owner's statements stay first, byte for byte; ours follow.
	p1 := keyPolicyProps(keyArn, statement("Use by 222222222222", "222222222222"), statement("Use by 333333333333", "333333333333"))
	a := h.send(t, "Create", keypolicyspec.ResourceType, "", p1, nil)
	if a.Status != "SUCCESS" {
		t.Fatalf("Create: %s", a.Body)
	}
	got := rawStatements(t, h.policy(t, keyArn))
	want := append(slices.Clone(owner), statement("Use by 222222222222", "222222222222"), statement("Use by 333333333333", "333333333333"))
	if !slices.Equal(got, want) {
		t.Fatalf("after Create:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	id, ok := keypolicyspec.ParsePhysicalID(a.PhysicalResourceId)
	if !ok || id.KeyArn != keyArn || a.Data["KeyArn"] != keyArn {
		t.Errorf("Create answer %s", a.Body)
	}

	// Update: one statement changes in place, one goes, one comes.
	p2 := keyPolicyProps(keyArn, statement("Use by 222222222222", "444444444444"), statement("Use by 555555555555", "555555555555"))
	a = h.send(t, "Update", keypolicyspec.ResourceType, a.PhysicalResourceId, p2, p1)
	if a.Status != "SUCCESS" || a.PhysicalResourceId != id.String() {
		t.Fatalf("Update: %s", a.Body)
	}
	got = rawStatements(t, h.policy(t, keyArn))
	want = append(slices.Clone(owner), statement("Use by 222222222222", "444444444444"), statement("Use by 555555555555", "555555555555"))
	if !slices.Equal(got, want) {
		t.Fatalf("after Update:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Delete: only the owner's statements remain, byte for byte.
	a = h.send(t, "Delete", keypolicyspec.ResourceType, a.PhysicalResourceId, p2, nil)
	if a.Status != "SUCCESS" {
		t.Fatalf("Delete: %s", a.Body)
	}
	if got = rawStatements(t, h.policy(t, keyArn)); !slices.Equal(got, owner) {
		t.Fatalf("after Delete:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(owner, "\n"))
	}

	// A key that does not exist: Create fails and says so; Delete succeeds.
	missing := "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
	a = h.send(t, "Create", keypolicyspec.ResourceType, "", keyPolicyProps(missing, statement("A", "222222222222")), nil)
	if a.Status != "FAILED" || !strings.Contains(a.Reason, "GetKeyPolicy") || !strings.Contains(a.Reason, missing) {
		t.Errorf("Create on a missing key: %s", a.Body)
	}
}

// newImage launches an instance from one of moto's images and creates an
// AMI of it, with an EBS snapshot.
func (h *harness) newImage(t *testing.T) (imageID string, snapshots []string) {
	t.Helper()
	ctx := context.Background()
	imgs, err := h.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("DescribeImages: %v", err)
	}
	run, err := h.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeT3Micro})
	if err != nil {
		t.Fatal(err)
	}
	img, err := h.ec2.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: run.Instances[0].InstanceId, Name: aws.String(fmt.Sprintf("shared-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	imageID = aws.ToString(img.ImageId)
	d, err := h.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range d.Images[0].BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			snapshots = append(snapshots, *m.Ebs.SnapshotId)
		}
	}
	return imageID, snapshots
}

func (h *harness) launchPermissions(t *testing.T, imageID string) []string {
	return moto.LaunchPermissions(t, h.ec2, imageID)
}

func (h *harness) volumePermissions(t *testing.T, snapshotID string) []string {
	t.Helper()
	out, err := h.ec2.DescribeSnapshotAttribute(context.Background(), &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(snapshotID), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range out.CreateVolumePermissions {
		got = append(got, aws.ToString(p.UserId)+string(p.Group))
	}
	slices.Sort(got)
	return got
}

func shareProps(imageID string, kv ...interface{}) map[string]interface{} {
	out := map[string]interface{}{"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", "ImageId": imageID}
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

func sharingSequence(t *testing.T, h *harness) {
	imageID, snapshots := h.newImage(t)
	if len(snapshots) == 0 {
		t.Fatalf("moto's image %s has no snapshot", imageID)
	}
	// GIVEN a permission granted by hand, which the resource does not name
	if _, err := h.ec2.ModifyImageAttribute(context.Background(), &ec2.ModifyImageAttributeInput{ImageId: aws.String(imageID),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{UserId: aws.String("999999999999")}}}}); err != nil {
		t.Fatal(err)
	}

	p1 := shareProps(imageID, "AccountIds", list("222222222222", "333333333333"), "ShareSnapshots", "true")
	a := h.send(t, "Create", amipermissionspec.ResourceType, "", p1, nil)
	if a.Status != "SUCCESS" {
		t.Fatalf("Create: %s", a.Body)
	}
	if got, want := h.launchPermissions(t, imageID), []string{"222222222222", "333333333333", "999999999999"}; !slices.Equal(got, want) {
		t.Errorf("launch permissions after Create %v, want %v", got, want)
	}
	if got, want := h.volumePermissions(t, snapshots[0]), []string{"222222222222", "333333333333"}; !slices.Equal(got, want) {
		t.Errorf("create-volume permissions after Create %v, want %v", got, want)
	}
	if a.Data["ImageId"] != imageID || a.Data["SnapshotIds"] != strings.Join(snapshots, ",") {
		t.Errorf("Data %v", a.Data)
	}

	p2 := shareProps(imageID, "AccountIds", list("333333333333"), "OrganizationArns", list(orgArn))
	a = h.send(t, "Update", amipermissionspec.ResourceType, a.PhysicalResourceId, p2, p1)
	if a.Status != "SUCCESS" {
		t.Fatalf("Update: %s", a.Body)
	}
	if got, want := h.launchPermissions(t, imageID), []string{"333333333333", "999999999999", orgArn}; !slices.Equal(got, want) {
		t.Errorf("launch permissions after Update %v, want %v", got, want)
	}
	if got := h.volumePermissions(t, snapshots[0]); len(got) != 0 {
		t.Errorf("create-volume permissions after Update %v, want none", got)
	}

	a = h.send(t, "Delete", amipermissionspec.ResourceType, a.PhysicalResourceId, p2, nil)
	if a.Status != "SUCCESS" {
		t.Fatalf("Delete: %s", a.Body)
	}
	if got, want := h.launchPermissions(t, imageID), []string{"999999999999"}; !slices.Equal(got, want) {
		t.Errorf("launch permissions after Delete %v, want only the one granted by hand %v", got, want)
	}

	// The AMI is deregistered: a Delete still succeeds.
	if _, err := h.ec2.DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: aws.String(imageID)}); err != nil {
		t.Fatal(err)
	}
	a = h.send(t, "Delete", amipermissionspec.ResourceType, a.PhysicalResourceId, p1, nil)
	if a.Status != "SUCCESS" {
		t.Errorf("Delete of a deregistered AMI: %s", a.Body)
	}
	// And a Create on it explains.
	a = h.send(t, "Create", amipermissionspec.ResourceType, "", p1, nil)
	if a.Status != "FAILED" || !strings.Contains(a.Reason, "the AMI "+imageID+" does not exist") {
		t.Errorf("Create on a deregistered AMI: %s", a.Body)
	}
}

func TestAgainstMoto(t *testing.T) {
	m := moto.Start(t)
	h := newHarness(t, m, inProcess(t, m.URL))
	t.Run("key policy", func(t *testing.T) { keyPolicySequence(t, h) })
	t.Run("AMI sharing", func(t *testing.T) { sharingSequence(t, h) })
	if t.Failed() {
		t.Logf("moto:\n%s", m.Log())
	}
}

package copylifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/copyspec"
)

// fakeClock is time that moves only when the machine sleeps (or a test
// says so).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.advance(d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// fakeImage is one image the fake EC2 keeps. A copy is pending until
// started+takes, then available; failed from started+failsAfter if that
// is set.
type fakeImage struct {
	id         string
	tags       []types.Tag
	snapshots  []string
	started    time.Time
	takes      time.Duration
	failsAfter time.Duration
	hiddenFor  time.Duration
	source     string
}

type fakeSnapshot struct {
	id    string
	tags  []types.Tag
	image string // the image that uses it, until deregistered
}

// fakeEC2 keeps images and snapshots as EC2 does, for the calls the machine
// makes: CopyImage honours ClientToken (a repeated token answers the first
// copy's id) and TagSpecifications; DescribeImages and DescribeSnapshots
// honour ImageIds, SnapshotIds and tag: filters; DeregisterImage and
// DeleteSnapshot remove (a snapshot in use by a registered image cannot
// be deleted).
type fakeEC2 struct {
	mu        sync.Mutex
	clock     *fakeClock
	images    map[string]*fakeImage
	snapshots map[string]*fakeSnapshot
	tokens    map[string]string
	n         int
	calls     []string
	copies    []*ec2.CopyImageInput

	// copyTakes and copyFailsAfter shape the next copies.
	copyTakes      time.Duration
	copyFailsAfter time.Duration
	// hiddenFor is how long DescribeImages does not know a new copy
	// (EC2's eventual consistency).
	hiddenFor time.Duration
	// stillInUse is how many DeleteSnapshot calls after the image's
	// deregistration still answer InvalidSnapshot.InUse.
	stillInUse int
	// pendingShows, when set, is the state DescribeImages shows for a copy
	// still being made, instead of pending (transient, or a state EC2 adds).
	pendingShows types.ImageState
	// availableAfterLooks, when above 0, counts down the DescribeImages
	// calls after which every copy is available (a copy that finishes while
	// the machine cleans up).
	availableAfterLooks int
	availableNow        bool
	// hideByTag makes every DescribeImages with filters find nothing (a
	// lookup by tag that misses, as while tags propagate), so that only
	// the ClientToken keeps a duplicate from making a second copy.
	hideByTag bool
}

func newFakeEC2(clock *fakeClock) *fakeEC2 {
	return &fakeEC2{clock: clock, images: map[string]*fakeImage{}, snapshots: map[string]*fakeSnapshot{}, tokens: map[string]string{}, copyTakes: 10 * time.Minute}
}

func apiErr(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
}

func (f *fakeEC2) record(op string) { f.calls = append(f.calls, op) }

// count is how many times op was called.
func (f *fakeEC2) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == op {
			n++
		}
	}
	return n
}

func (f *fakeEC2) state(img *fakeImage) types.ImageState {
	now := f.clock.Now()
	if img.failsAfter > 0 && !now.Before(img.started.Add(img.failsAfter)) {
		return types.ImageStateFailed
	}
	if f.availableNow || !now.Before(img.started.Add(img.takes)) {
		return types.ImageStateAvailable
	}
	if f.pendingShows != "" {
		return f.pendingShows
	}
	return types.ImageStatePending
}

func (f *fakeEC2) CopyImage(_ context.Context, in *ec2.CopyImageInput, _ ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("CopyImage")
	f.copies = append(f.copies, in)
	if id, ok := f.tokens[aws.ToString(in.ClientToken)]; ok {
		return &ec2.CopyImageOutput{ImageId: aws.String(id)}, nil
	}
	f.n++
	id := fmt.Sprintf("ami-%017x", 0xc0000+f.n)
	var imageTags, snapTags []types.Tag
	for _, ts := range in.TagSpecifications {
		switch ts.ResourceType {
		case types.ResourceTypeImage:
			imageTags = ts.Tags
		case types.ResourceTypeSnapshot:
			snapTags = ts.Tags
		}
	}
	img := &fakeImage{id: id, tags: imageTags, started: f.clock.Now(), takes: f.copyTakes, failsAfter: f.copyFailsAfter, hiddenFor: f.hiddenFor, source: aws.ToString(in.SourceImageId)}
	for i := range 2 {
		sid := fmt.Sprintf("snap-%017x", 0xc0000+f.n*10+i)
		f.snapshots[sid] = &fakeSnapshot{id: sid, tags: snapTags, image: id}
		img.snapshots = append(img.snapshots, sid)
	}
	f.images[id] = img
	if in.ClientToken != nil {
		f.tokens[*in.ClientToken] = id
	}
	return &ec2.CopyImageOutput{ImageId: aws.String(id)}, nil
}

// addImage puts an image of this account that the machine did not make.
func (f *fakeEC2) addImage(id string, tags map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img := &fakeImage{id: id, started: f.clock.Now()}
	for k, v := range tags {
		img.tags = append(img.tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	sid := "snap-" + strings.TrimPrefix(id, "ami-")
	f.snapshots[sid] = &fakeSnapshot{id: sid, tags: img.tags, image: id}
	img.snapshots = []string{sid}
	f.images[id] = img
}

func matches(tags []types.Tag, filters []types.Filter) bool {
	for _, flt := range filters {
		key, ok := strings.CutPrefix(aws.ToString(flt.Name), "tag:")
		if !ok {
			continue
		}
		if !slices.ContainsFunc(tags, func(t types.Tag) bool {
			return aws.ToString(t.Key) == key && slices.Contains(flt.Values, aws.ToString(t.Value))
		}) {
			return false
		}
	}
	return true
}

func (f *fakeEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DescribeImages")
	if f.availableAfterLooks > 0 {
		f.availableAfterLooks--
		f.availableNow = f.availableAfterLooks == 0
	}
	var out []types.Image
	hidden := func(img *fakeImage) bool { return f.clock.Now().Before(img.started.Add(img.hiddenFor)) }
	for _, id := range in.ImageIds {
		if img, ok := f.images[id]; !ok || hidden(img) {
			return nil, apiErr("InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", id))
		}
	}
	var ids []string
	for id := range f.images {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		img := f.images[id]
		if len(in.ImageIds) > 0 && !slices.Contains(in.ImageIds, id) {
			continue
		}
		if hidden(img) || len(in.Filters) > 0 && (f.hideByTag || !matches(img.tags, in.Filters)) {
			continue
		}
		ti := types.Image{ImageId: aws.String(id), State: f.state(img), Tags: slices.Clone(img.tags), CreationDate: aws.String(img.started.UTC().Format(time.RFC3339))}
		if ti.State == types.ImageStateFailed {
			ti.StateReason = &types.StateReason{Code: aws.String("Client.InternalError"), Message: aws.String("Client error on copy")}
		}
		for _, s := range img.snapshots {
			ti.BlockDeviceMappings = append(ti.BlockDeviceMappings, types.BlockDeviceMapping{Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(s)}})
		}
		out = append(out, ti)
	}
	return &ec2.DescribeImagesOutput{Images: out}, nil
}

func (f *fakeEC2) DeregisterImage(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DeregisterImage")
	id := aws.ToString(in.ImageId)
	img, ok := f.images[id]
	if !ok {
		return nil, apiErr("InvalidAMIID.NotFound", "no image "+id)
	}
	for _, s := range img.snapshots {
		if snap, ok := f.snapshots[s]; ok {
			snap.image = ""
		}
	}
	delete(f.images, id)
	return &ec2.DeregisterImageOutput{}, nil
}

func (f *fakeEC2) DescribeSnapshots(_ context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DescribeSnapshots")
	var ids []string
	for id := range f.snapshots {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []types.Snapshot
	for _, id := range ids {
		s := f.snapshots[id]
		if matches(s.tags, in.Filters) {
			out = append(out, types.Snapshot{SnapshotId: aws.String(id), Tags: slices.Clone(s.tags)})
		}
	}
	return &ec2.DescribeSnapshotsOutput{Snapshots: out}, nil
}

func (f *fakeEC2) DeleteSnapshot(_ context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("DeleteSnapshot")
	id := aws.ToString(in.SnapshotId)
	s, ok := f.snapshots[id]
	if !ok {
		return nil, apiErr("InvalidSnapshot.NotFound", "no snapshot "+id)
	}
	if s.image != "" {
		return nil, apiErr("InvalidSnapshot.InUse", fmt.Sprintf("The snapshot %s is currently in use by %s", id, s.image))
	}
	if f.stillInUse > 0 {
		f.stillInUse--
		return nil, apiErr("InvalidSnapshot.InUse", fmt.Sprintf("The snapshot %s is currently in use by an image", id))
	}
	delete(f.snapshots, id)
	return &ec2.DeleteSnapshotOutput{}, nil
}

func (f *fakeEC2) imageIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.images {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (f *fakeEC2) snapshotIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.snapshots {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// harness is a Lambda function running the machine: it records the answers
// (Responder) and queues the hand-overs (Continuer), and delivers them one
// after the other, each as a new invocation of FunctionTimeout.
type harness struct {
	t     *testing.T
	clock *fakeClock
	ec2   *fakeEC2
	m     *Machine

	answers  []Answer
	queue    []Continuation
	handed   int
	outcomes []Outcome

	// continueErr, when set, is what the Continuer answers.
	continueErr error
	// onContinue, when set, runs as the Continuer is called.
	onContinue func()
	// functionTimeout is each invocation's length.
	functionTimeout time.Duration
	// queueDelay is how long Lambda keeps a hand-over before it runs.
	queueDelay time.Duration
}

const (
	stackID = "arn:aws:cloudformation:eu-west-1:222222222222:stack/app/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
	keyArn  = "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	sourceA = "ami-0a0a0a0a0a0a0a0a0"
	sourceB = "ami-0b0b0b0b0b0b0b0b0"
)

func newHarness(t *testing.T) *harness {
	clock := &fakeClock{now: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
	h := &harness{t: t, clock: clock, ec2: newFakeEC2(clock), functionTimeout: 15 * time.Minute, queueDelay: 2 * time.Second}
	h.m = &Machine{EC2: h.ec2, Continuer: h, Responder: h, Clock: clock, Region: "eu-west-1", Logger: slog.New(slog.DiscardHandler)}
	return h
}

func (h *harness) Respond(_ context.Context, _ cfn.Event, a Answer) error {
	h.answers = append(h.answers, a)
	return nil
}

func (h *harness) Continue(_ context.Context, c Continuation) error {
	if h.onContinue != nil {
		h.onContinue()
	}
	if h.continueErr != nil {
		return h.continueErr
	}
	h.queue = append(h.queue, c)
	h.handed++
	return nil
}

// responseURL is a pre-signed URL as CloudFormation sends it, signed now.
func (h *harness) responseURL() string {
	return "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=" +
		h.clock.Now().UTC().Format("20060102T150405Z") + "&X-Amz-Expires=7200&X-Amz-Signature=abc"
}

func props(source string, extra ...string) map[string]interface{} {
	p := map[string]interface{}{"ServiceToken": "arn:aws:lambda:eu-west-1:222222222222:function:copier", copyspec.PropSourceImageId: source, copyspec.PropKmsKeyId: keyArn, copyspec.PropSourceRegion: "eu-west-1"}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return p
}

func (h *harness) event(typ cfn.RequestType, requestID, physical string, p, old map[string]interface{}) cfn.Event {
	return cfn.Event{
		RequestType: typ, RequestID: requestID, ResponseURL: h.responseURL(), ResourceType: copyspec.ResourceType,
		LogicalResourceID: "Copy", StackID: stackID, PhysicalResourceID: physical,
		ResourceProperties: p, OldResourceProperties: old,
	}
}

// deliver runs CloudFormation's delivery of ev, then every hand-over it
// leads to, and returns the outcomes.
func (h *harness) deliver(ev cfn.Event) []Outcome {
	h.t.Helper()
	before := len(h.outcomes)
	h.run(Invocation{Event: ev, Ends: h.clock.Now().Add(h.functionTimeout)})
	h.drain()
	return h.outcomes[before:]
}

func (h *harness) run(inv Invocation) {
	o := h.m.Run(context.Background(), inv)
	if n := btoi(o.Answered != nil) + btoi(o.Continued != nil) + btoi(o.Ignored != ""); n != 1 {
		h.t.Fatalf("an invocation's outcome has %d of answered, continued, ignored set: %+v", n, o)
	}
	h.outcomes = append(h.outcomes, o)
}

// drain delivers the queued hand-overs.
func (h *harness) drain() {
	for len(h.queue) > 0 {
		c := h.queue[0]
		h.queue = h.queue[1:]
		h.clock.advance(h.queueDelay)
		st := c.State
		h.run(Invocation{Event: c.Event, State: &st, Ends: h.clock.Now().Add(h.functionTimeout)})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// only returns the one answer the test expects, or fails.
func (h *harness) only(status cfn.StatusType) Answer {
	h.t.Helper()
	if len(h.answers) != 1 {
		h.t.Fatalf("CloudFormation got %d answers, want exactly one: %+v", len(h.answers), h.answers)
	}
	a := h.answers[0]
	if a.Status != status {
		h.t.Fatalf("answer %s (%s), want %s", a.Status, a.Reason, status)
	}
	h.answers = nil
	return a
}

package copylifecycle

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/crossaccountami/crossaccountami/internal/copyspec"
)

const requestA = "11111111-2222-3333-4444-555555555555"

func tagsOf(ts []types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range ts {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// A copy that takes 40 minutes outlives two 15-minute invocations: the
// first two hand over, the third answers SUCCESS, once; one CopyImage.
func TestCopyLongerThanOneInvocation(t *testing.T) {
	// GIVEN a copy that takes 40 minutes and invocations of 15
	h := newHarness(t)
	h.ec2.copyTakes = 40 * time.Minute
	start := h.clock.Now()

	// WHEN CloudFormation sends the Create
	outs := h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil))

	// THEN it was handed over twice and answered once
	if h.handed != 2 || len(outs) != 3 || outs[0].Continued == nil || outs[1].Continued == nil || outs[2].Answered == nil {
		t.Fatalf("handed over %d times, outcomes %+v; want 2 hand-overs then an answer", h.handed, outs)
	}
	a := h.only(cfn.StatusSuccess)
	token := copyspec.CopyToken(stackID, "Copy", requestA, mustDecode(t, props(sourceA)))
	images := h.ec2.imageIDs()
	if len(images) != 1 || a.PhysicalResourceID != images[0]+"/"+token || a.Data[copyspec.AttrImageId] != images[0] {
		t.Fatalf("answer %+v, images %v, want the one copy with token %s", a, images, token)
	}
	if got := a.Data[copyspec.AttrSnapshotIds]; got != strings.Join(h.ec2.snapshotIDs(), ",") {
		t.Errorf("SnapshotIds %v, want %v", got, h.ec2.snapshotIDs())
	}
	// AND the answer came within 20 s of the copy being available
	if took := h.clock.Now().Sub(start); took < 40*time.Minute || took > 40*time.Minute+20*time.Second {
		t.Errorf("answered %s after the request, want within 20 s after 40m", took)
	}
	// AND the CopyImage was encrypted with the key, the token and the tags
	if n := h.ec2.count("CopyImage"); n != 1 {
		t.Fatalf("CopyImage called %d times", n)
	}
	in := h.ec2.copies[0]
	if !aws.ToBool(in.Encrypted) || aws.ToString(in.KmsKeyId) != keyArn || aws.ToString(in.ClientToken) != token ||
		aws.ToString(in.SourceImageId) != sourceA || aws.ToString(in.SourceRegion) != "eu-west-1" || aws.ToBool(in.CopyImageTags) {
		t.Errorf("CopyImage input %+v", in)
	}
	if len(in.TagSpecifications) != 2 {
		t.Fatalf("TagSpecifications %+v", in.TagSpecifications)
	}
	want := map[string]string{
		"crossaccountami:copy-of": sourceA, "crossaccountami:source-region": "eu-west-1",
		"crossaccountami:stack-id": stackID, "crossaccountami:logical-id": "Copy",
		"crossaccountami:copy-token": token, "crossaccountami:definition": copyspec.DefinitionHash(mustDecode(t, props(sourceA))),
	}
	for _, ts := range in.TagSpecifications {
		if got := tagsOf(ts.Tags); !mapsEqual(got, want) {
			t.Errorf("%s tags %v, want %v", ts.ResourceType, got, want)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mustDecode(t *testing.T, raw map[string]interface{}) copyspec.Properties {
	t.Helper()
	p, err := copyspec.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A copy that fails after 20 minutes (in the second invocation) is removed,
// image and snapshots, and CloudFormation gets one FAILED with the pending
// id of the Create.
func TestCopyThatFailsMidwayIsRemovedAndFailedOnce(t *testing.T) {
	h := newHarness(t)
	h.ec2.copyTakes = time.Hour
	h.ec2.copyFailsAfter = 20 * time.Minute

	h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil))

	a := h.only(cfn.StatusFailed)
	token := copyspec.CopyToken(stackID, "Copy", requestA, mustDecode(t, props(sourceA)))
	if a.PhysicalResourceID != "pending-copy/"+token {
		t.Errorf("physical id %q, want the pending id of the token", a.PhysicalResourceID)
	}
	if !strings.Contains(a.Reason, "failed (failed: Client.InternalError") || !strings.Contains(a.Reason, "removed ami-") {
		t.Errorf("reason %q", a.Reason)
	}
	if imgs, snaps := h.ec2.imageIDs(), h.ec2.snapshotIDs(); len(imgs) != 0 || len(snaps) != 0 {
		t.Errorf("left images %v and snapshots %v", imgs, snaps)
	}
	if h.handed != 1 {
		t.Errorf("handed over %d times, want 1 (the failure is seen in the second invocation)", h.handed)
	}
	// AND the rollback Delete of the pending id succeeds, with nothing left to remove
	h.deliver(h.event(cfn.RequestDelete, "delete-1", a.PhysicalResourceID, props(sourceA), nil))
	h.only(cfn.StatusSuccess)
	if n := h.ec2.count("DeregisterImage"); n != 1 {
		t.Errorf("DeregisterImage called %d times, want 1 (the failure's cleanup only)", n)
	}
}

// A copy still pending at the deadline (ServiceTimeout 3600) is removed and
// answered FAILED once, before CloudFormation stops waiting; a duplicate
// hand-over that arrives after the deadline does nothing.
func TestTimeoutRemovesTheCopyAndFailsOnce(t *testing.T) {
	h := newHarness(t)
	h.ec2.copyTakes = 3 * time.Hour
	signed := h.clock.Now()

	outs := h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA, "ServiceTimeout", "3600"), nil))

	a := h.only(cfn.StatusFailed)
	if !strings.Contains(a.Reason, "timed out waiting for the copy") || !strings.Contains(a.Reason, "removed ami-") {
		t.Errorf("reason %q", a.Reason)
	}
	if imgs, snaps := h.ec2.imageIDs(), h.ec2.snapshotIDs(); len(imgs) != 0 || len(snaps) != 0 {
		t.Errorf("left images %v and snapshots %v", imgs, snaps)
	}
	if at := h.clock.Now().Sub(signed); at >= time.Hour-DefaultAnswerMargin || at < time.Hour-DefaultAnswerMargin-DefaultCleanupReserve-DefaultPollInterval {
		t.Errorf("answered %s after CloudFormation sent the request; want just before 1h less the answer margin", at)
	}
	last := outs[len(outs)-2].Continued
	if last == nil {
		t.Fatalf("outcomes %+v", outs)
	}

	// WHEN Lambda delivers the last hand-over again, after the deadline
	st := last.State
	h.clock.now = st.Deadline
	calls := len(h.ec2.calls)
	h.run(Invocation{Event: last.Event, State: &st, Ends: h.clock.Now().Add(15 * time.Minute)})

	// THEN it makes no call and sends nothing
	if o := h.outcomes[len(h.outcomes)-1]; o.Ignored == "" || len(h.answers) != 0 || len(h.ec2.calls) != calls {
		t.Errorf("late duplicate: outcome %+v, answers %v, calls %v", o, h.answers, h.ec2.calls[calls:])
	}
}

// Lambda delivers the Create twice: one copy, whether the second finds it
// by its token tag or EC2's ClientToken answers the first copy's id.
func TestDuplicateDeliveryMakesOneCopy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hideByTag bool
		copies    int
	}{
		{"found by its token tag", false, 1},
		{"tag lookup misses, the ClientToken answers the same copy", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.ec2.hideByTag = tc.hideByTag
			ev := h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil)

			// The first delivery starts the copy and hands over; the second
			// arrives before that hand-over runs.
			h.run(Invocation{Event: ev, Ends: h.clock.Now().Add(h.functionTimeout)})
			h.clock.advance(time.Minute)
			h.run(Invocation{Event: ev, Ends: h.clock.Now().Add(h.functionTimeout)})
			h.drain()

			if imgs := h.ec2.imageIDs(); len(imgs) != 1 {
				t.Fatalf("images %v, want one copy", imgs)
			}
			if n := h.ec2.count("CopyImage"); n != tc.copies {
				t.Errorf("CopyImage called %d times, want %d", n, tc.copies)
			}
			// Each delivery answers, the same answer.
			if len(h.answers) != 2 || h.answers[0].Status != cfn.StatusSuccess || h.answers[0].PhysicalResourceID != h.answers[1].PhysicalResourceID {
				t.Errorf("answers %+v, want two identical SUCCESS", h.answers)
			}
		})
	}
}

// create makes a copy of source for request and returns its answer.
func (h *harness) create(source, request string) Answer {
	h.t.Helper()
	h.deliver(h.event(cfn.RequestCreate, request, "", props(source), nil))
	return h.only(cfn.StatusSuccess)
}

// A replacing Update makes a new copy; the stack's update then fails
// elsewhere and CloudFormation rolls back with the old properties: the old
// copy is answered (no new copy), and the cleanup's Delete of the new copy
// removes it and keeps the old one.
func TestRollbackOfAReplacingUpdateKeepsTheOldCopy(t *testing.T) {
	h := newHarness(t)
	old := h.create(sourceA, requestA)
	oldImage := old.Data[copyspec.AttrImageId].(string)

	h.deliver(h.event(cfn.RequestUpdate, "update-1", old.PhysicalResourceID, props(sourceB), props(sourceA)))
	replaced := h.only(cfn.StatusSuccess)
	if replaced.PhysicalResourceID == old.PhysicalResourceID || len(h.ec2.imageIDs()) != 2 {
		t.Fatalf("the Update answered %q (old %q), images %v: want a new copy next to the old", replaced.PhysicalResourceID, old.PhysicalResourceID, h.ec2.imageIDs())
	}

	// WHEN CloudFormation rolls back: an Update with the old properties
	copies := h.ec2.count("CopyImage")
	h.deliver(h.event(cfn.RequestUpdate, "rollback-1", replaced.PhysicalResourceID, props(sourceA), props(sourceB)))
	back := h.only(cfn.StatusSuccess)

	// THEN it answers the old copy without copying again
	if back.PhysicalResourceID != old.PhysicalResourceID || h.ec2.count("CopyImage") != copies {
		t.Fatalf("rollback answered %q, want the old copy %q; CopyImage calls %d -> %d", back.PhysicalResourceID, old.PhysicalResourceID, copies, h.ec2.count("CopyImage"))
	}

	// WHEN CloudFormation deletes the new copy (the physical id changed back)
	h.deliver(h.event(cfn.RequestDelete, "cleanup-1", replaced.PhysicalResourceID, props(sourceB), nil))
	h.only(cfn.StatusSuccess)

	// THEN only the old copy and its snapshots are left
	if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, []string{oldImage}) {
		t.Errorf("images %v, want only the old copy %s", imgs, oldImage)
	}
	if snaps := h.ec2.snapshotIDs(); strings.Join(snaps, ",") != old.Data[copyspec.AttrSnapshotIds] {
		t.Errorf("snapshots %v, want the old copy's %v", snaps, old.Data[copyspec.AttrSnapshotIds])
	}
}

// A replacing Update whose copy fails removes the new copy and answers
// FAILED with the old physical id; the rollback Update that follows answers
// the old copy without copying.
func TestFailedReplacingUpdateRemovesTheNewCopy(t *testing.T) {
	h := newHarness(t)
	old := h.create(sourceA, requestA)
	h.ec2.copyFailsAfter = 5 * time.Minute

	h.deliver(h.event(cfn.RequestUpdate, "update-1", old.PhysicalResourceID, props(sourceB), props(sourceA)))
	a := h.only(cfn.StatusFailed)
	if a.PhysicalResourceID != old.PhysicalResourceID {
		t.Errorf("FAILED with %q, want the old physical id %q", a.PhysicalResourceID, old.PhysicalResourceID)
	}
	if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, []string{old.Data[copyspec.AttrImageId].(string)}) {
		t.Errorf("images %v, want only the old copy", imgs)
	}

	copies := h.ec2.count("CopyImage")
	h.deliver(h.event(cfn.RequestUpdate, "rollback-1", old.PhysicalResourceID, props(sourceA), props(sourceB)))
	if back := h.only(cfn.StatusSuccess); back.PhysicalResourceID != old.PhysicalResourceID || h.ec2.count("CopyImage") != copies {
		t.Errorf("rollback answered %q with %d new copies", back.PhysicalResourceID, h.ec2.count("CopyImage")-copies)
	}
}

// An Update that changes only ServiceTimeout keeps the copy.
func TestUpdateOfServiceTimeoutKeepsTheCopy(t *testing.T) {
	h := newHarness(t)
	old := h.create(sourceA, requestA)
	h.deliver(h.event(cfn.RequestUpdate, "update-1", old.PhysicalResourceID, props(sourceA, "ServiceTimeout", "1800"), props(sourceA)))
	if a := h.only(cfn.StatusSuccess); a.PhysicalResourceID != old.PhysicalResourceID || h.ec2.count("CopyImage") != 1 {
		t.Errorf("answered %q (old %q), CopyImage %d", a.PhysicalResourceID, old.PhysicalResourceID, h.ec2.count("CopyImage"))
	}
}

// Delete never touches an image this resource did not make, and says so.
func TestDeleteNeverTouchesAnotherImage(t *testing.T) {
	for _, tc := range []struct {
		name string
		tags map[string]string
	}{
		{"no tags", nil},
		{"another resource's copy", map[string]string{copyspec.TagStackId: stackID, copyspec.TagLogicalId: "OtherCopy", copyspec.TagCopyToken: "ca0123456789abcdef0123456789abcdef"}},
		{"another stack's copy", map[string]string{copyspec.TagStackId: strings.Replace(stackID, "0a1b", "ffff", 1), copyspec.TagLogicalId: "Copy", copyspec.TagCopyToken: "ca0123456789abcdef0123456789abcdef"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.ec2.addImage("ami-0123456789abcdef0", tc.tags)
			physical := "ami-0123456789abcdef0/ca0123456789abcdef0123456789abcdef"

			h.deliver(h.event(cfn.RequestDelete, "delete-1", physical, props(sourceA), nil))

			a := h.only(cfn.StatusFailed)
			if !strings.Contains(a.Reason, "does not carry this resource's tags") || !strings.Contains(a.Reason, "--retain-resources") {
				t.Errorf("reason %q", a.Reason)
			}
			if len(h.ec2.imageIDs()) != 1 || len(h.ec2.snapshotIDs()) != 1 || h.ec2.count("DeregisterImage")+h.ec2.count("DeleteSnapshot") != 0 {
				t.Errorf("images %v, snapshots %v, calls %v", h.ec2.imageIDs(), h.ec2.snapshotIDs(), h.ec2.calls)
			}
		})
	}
}

// Delete removes the copy and its snapshots, and a second Delete (a retry)
// succeeds with nothing left.
func TestDeleteIsIdempotent(t *testing.T) {
	h := newHarness(t)
	h.ec2.addImage("ami-0fedcba9876543210", nil) // another image of the account
	a := h.create(sourceA, requestA)
	for i := range 2 {
		h.deliver(h.event(cfn.RequestDelete, "delete", a.PhysicalResourceID, props(sourceA), nil))
		h.only(cfn.StatusSuccess)
		if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, []string{"ami-0fedcba9876543210"}) || len(h.ec2.snapshotIDs()) != 1 {
			t.Errorf("delete %d: images %v, snapshots %v; want only the other image and its snapshot", i, imgs, h.ec2.snapshotIDs())
		}
	}
}

// CloudFormation gives up on a slow Create (another resource failed) and
// sends a Delete with a physical id it made up: the Delete finds the
// pending copy by its tags and removes it; the hand-over still queued then
// finds it gone, answers FAILED (nobody waits for it), and never copies
// again.
func TestContinuationAfterTheDeleteDoesNotResurrectTheCopy(t *testing.T) {
	h := newHarness(t)
	h.ec2.copyTakes = 50 * time.Minute
	h.ec2.addImage("ami-0fedcba9876543210", nil)
	ev := h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil)
	h.run(Invocation{Event: ev, Ends: h.clock.Now().Add(h.functionTimeout)})
	if len(h.queue) != 1 {
		t.Fatalf("the Create did not hand over: %+v", h.outcomes)
	}

	// WHEN the Delete runs before the queued hand-over
	pending := h.queue
	h.queue = nil
	h.deliver(h.event(cfn.RequestDelete, "delete-1", "app-Copy-1A2B3C4D5E6F", props(sourceA), nil))
	h.only(cfn.StatusSuccess)
	if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, []string{"ami-0fedcba9876543210"}) || len(h.ec2.snapshotIDs()) != 1 {
		t.Fatalf("after the Delete: images %v, snapshots %v", imgs, h.ec2.snapshotIDs())
	}

	// AND the hand-over runs after it
	h.queue = pending
	h.drain()

	// THEN no copy is made again and nothing of this resource is left
	if n := h.ec2.count("CopyImage"); n != 1 {
		t.Errorf("CopyImage called %d times", n)
	}
	if a := h.only(cfn.StatusFailed); !strings.Contains(a.Reason, "disappeared") {
		t.Errorf("reason %q", a.Reason)
	}
	if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, []string{"ami-0fedcba9876543210"}) {
		t.Errorf("images %v", imgs)
	}
}

// A Create delivered after CloudFormation stopped waiting makes no call and
// sends nothing.
func TestLateCreateDoesNothing(t *testing.T) {
	h := newHarness(t)
	ev := h.event(cfn.RequestCreate, requestA, "", props(sourceA, "ServiceTimeout", "900"), nil)
	h.clock.advance(15 * time.Minute)
	h.run(Invocation{Event: ev, Ends: h.clock.Now().Add(h.functionTimeout)})
	if o := h.outcomes[0]; o.Ignored == "" || len(h.answers) != 0 || len(h.ec2.calls) != 0 {
		t.Errorf("outcome %+v, answers %v, calls %v", o, h.answers, h.ec2.calls)
	}
}

// A hand-over that fails removes the copy and answers FAILED.
func TestFailedHandOverRemovesTheCopy(t *testing.T) {
	h := newHarness(t)
	h.ec2.copyTakes = 30 * time.Minute
	h.continueErr = errors.New("TooManyRequestsException: Rate exceeded")
	h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil))
	if a := h.only(cfn.StatusFailed); !strings.Contains(a.Reason, "handing the wait") || !strings.Contains(a.Reason, "Rate exceeded") {
		t.Errorf("reason %q", a.Reason)
	}
	if len(h.ec2.imageIDs())+len(h.ec2.snapshotIDs()) != 0 {
		t.Errorf("left %v %v", h.ec2.imageIDs(), h.ec2.snapshotIDs())
	}
}

// Properties that do not decode fail the Create without a call, naming the
// property and the value.
func TestBadPropertiesFailWithoutACall(t *testing.T) {
	h := newHarness(t)
	h.deliver(h.event(cfn.RequestCreate, requestA, "", props("ami-nothex", copyspec.PropKmsKeyId, "alias/mine"), nil))
	a := h.only(cfn.StatusFailed)
	for _, want := range []string{`SourceImageId: "ami-nothex"`, `KmsKeyId: expected a KMS key ARN`, `"alias/mine"`} {
		if !strings.Contains(a.Reason, want) {
			t.Errorf("reason %q lacks %q", a.Reason, want)
		}
	}
	if a.PhysicalResourceID != requestA || len(h.ec2.calls) != 0 {
		t.Errorf("physical %q, calls %v", a.PhysicalResourceID, h.ec2.calls)
	}
}

// A key of another account is refused before any call.
func TestKeyOfAnotherAccountIsRefused(t *testing.T) {
	h := newHarness(t)
	other := strings.Replace(keyArn, "222222222222", "111111111111", 1)
	h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA, copyspec.PropKmsKeyId, other), nil))
	if a := h.only(cfn.StatusFailed); !strings.Contains(a.Reason, "account 111111111111") || len(h.ec2.calls) != 0 {
		t.Errorf("reason %q, calls %v", a.Reason, h.ec2.calls)
	}
}

// Without SourceRegion the source is in the stack's region, read from the
// StackId when the machine is not told its region.
func TestSourceRegionDefaultsToTheStacks(t *testing.T) {
	h := newHarness(t)
	h.m.Region = ""
	p := props(sourceA)
	delete(p, copyspec.PropSourceRegion)
	h.deliver(h.event(cfn.RequestCreate, requestA, "", p, nil))
	h.only(cfn.StatusSuccess)
	if got := aws.ToString(h.ec2.copies[0].SourceRegion); got != "eu-west-1" {
		t.Errorf("SourceRegion %q, want the stack's eu-west-1", got)
	}
}

// CloudFormation stops waiting for a replacing Update (another resource
// failed) while its copy is still being made, and rolls back with the old
// properties: the rollback answers the old copy and removes the new,
// unfinished one, whose hand-over then finds it gone. Without that, the
// hand-over would answer SUCCESS to a URL nobody reads, and the new copy
// would stay.
func TestRollbackWhileTheNewCopyIsPendingRemovesIt(t *testing.T) {
	h := newHarness(t)
	old := h.create(sourceA, requestA)
	h.ec2.copyTakes = 40 * time.Minute
	h.run(Invocation{Event: h.event(cfn.RequestUpdate, "update-1", old.PhysicalResourceID, props(sourceB), props(sourceA)), Ends: h.clock.Now().Add(h.functionTimeout)})
	if len(h.queue) != 1 || len(h.ec2.imageIDs()) != 2 {
		t.Fatalf("the Update did not hand over with a second copy: %+v, images %v", h.outcomes, h.ec2.imageIDs())
	}
	pending := h.queue
	h.queue = nil

	h.deliver(h.event(cfn.RequestUpdate, "rollback-1", old.PhysicalResourceID, props(sourceA), props(sourceB)))
	if back := h.only(cfn.StatusSuccess); back.PhysicalResourceID != old.PhysicalResourceID {
		t.Errorf("rollback answered %q, want %q", back.PhysicalResourceID, old.PhysicalResourceID)
	}
	want := []string{old.Data[copyspec.AttrImageId].(string)}
	if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, want) || strings.Join(h.ec2.snapshotIDs(), ",") != old.Data[copyspec.AttrSnapshotIds] {
		t.Errorf("after the rollback: images %v, snapshots %v; want only the old copy %v", imgs, h.ec2.snapshotIDs(), want)
	}

	h.queue = pending
	h.clock.advance(40 * time.Minute)
	h.drain()
	if a := h.only(cfn.StatusFailed); !strings.Contains(a.Reason, "disappeared") {
		t.Errorf("the abandoned request's hand-over answered %+v", a)
	}
	if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, want) {
		t.Errorf("images %v, want %v", imgs, want)
	}
}

// Just after CopyImage, DescribeImages may not know the copy yet: that is
// not a copy gone, and the wait goes on.
func TestCopyNotYetVisibleIsWaitedFor(t *testing.T) {
	h := newHarness(t)
	h.ec2.hiddenFor = 45 * time.Second
	h.ec2.copyTakes = 2 * time.Minute
	h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil))
	h.only(cfn.StatusSuccess)
	if n := h.ec2.count("CopyImage"); n != 1 || len(h.ec2.imageIDs()) != 1 {
		t.Errorf("CopyImage %d, images %v", n, h.ec2.imageIDs())
	}
}

// Just after DeregisterImage, EC2 may still say the snapshot is in use: the
// Delete retries, and removes it.
func TestDeleteRetriesASnapshotStillInUse(t *testing.T) {
	h := newHarness(t)
	a := h.create(sourceA, requestA)
	h.ec2.stillInUse = 2
	h.deliver(h.event(cfn.RequestDelete, "delete-1", a.PhysicalResourceID, props(sourceA), nil))
	h.only(cfn.StatusSuccess)
	if imgs, snaps := h.ec2.imageIDs(), h.ec2.snapshotIDs(); len(imgs)+len(snaps) != 0 {
		t.Errorf("left images %v, snapshots %v", imgs, snaps)
	}
}

// A function whose timeout is far too short for the wait gives up after
// MaxContinuations hand-overs: the copy is removed and FAILED answered,
// instead of a chain that Lambda's recursive loop detection might stop
// without an answer.
func TestHandOversAreBounded(t *testing.T) {
	h := newHarness(t)
	h.functionTimeout = 90 * time.Second
	h.ec2.copyTakes = 50 * time.Minute
	h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil))
	a := h.only(cfn.StatusFailed)
	if h.handed != MaxContinuations || !strings.Contains(a.Reason, "after 12 continuations") {
		t.Errorf("handed over %d times, reason %q", h.handed, a.Reason)
	}
	if len(h.ec2.imageIDs())+len(h.ec2.snapshotIDs()) != 0 {
		t.Errorf("left %v %v", h.ec2.imageIDs(), h.ec2.snapshotIDs())
	}
}

// A forged continuation that names a live copy's token with an image id
// that names nothing waits until its deadline and then does not remove the
// live copy: a copy with the token that is available is answered, never
// removed.
func TestForgedContinuationDoesNotRemoveALiveCopy(t *testing.T) {
	h := newHarness(t)
	live := h.create(sourceA, requestA)
	id, _ := copyspec.ParsePhysicalID(live.PhysicalResourceID)
	ev := h.event(cfn.RequestCreate, "forged", "", props(sourceA), nil)
	st := State{Token: id.Token, ImageId: "ami-0000000000000dead", Deadline: h.clock.Now().Add(3 * time.Minute), FailedPhysicalID: "x"}

	h.run(Invocation{Event: ev, State: &st, Ends: h.clock.Now().Add(h.functionTimeout)})

	if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, []string{id.ImageId}) || h.ec2.count("DeregisterImage") != 0 {
		t.Errorf("images %v, DeregisterImage %d: the live copy was touched", imgs, h.ec2.count("DeregisterImage"))
	}
	if a := h.only(cfn.StatusSuccess); a.PhysicalResourceID != live.PhysicalResourceID {
		t.Errorf("answered %+v", a)
	}
}

// CloudFormation gives up on a replacing Update (or its hand-over is lost)
// and the new copy becomes available before the rollback arrives: the
// rollback answers the old copy and removes the new one, whose token never
// reached CloudFormation as a physical id, so no Delete would remove it.
func TestRollbackAfterTheAbandonedCopyBecameAvailableRemovesIt(t *testing.T) {
	h := newHarness(t)
	old := h.create(sourceA, requestA)
	h.ec2.copyTakes = 20 * time.Minute
	h.run(Invocation{Event: h.event(cfn.RequestUpdate, "update-1", old.PhysicalResourceID, props(sourceB), props(sourceA)), Ends: h.clock.Now().Add(h.functionTimeout)})
	if len(h.queue) != 1 || len(h.ec2.imageIDs()) != 2 {
		t.Fatalf("the Update did not hand over with a second copy: %+v, images %v", h.outcomes, h.ec2.imageIDs())
	}
	// The hand-over is lost; the copy goes on and becomes available.
	h.queue = nil
	h.clock.advance(30 * time.Minute)

	h.deliver(h.event(cfn.RequestUpdate, "rollback-1", old.PhysicalResourceID, props(sourceA), props(sourceB)))

	if back := h.only(cfn.StatusSuccess); back.PhysicalResourceID != old.PhysicalResourceID || h.ec2.count("CopyImage") != 2 {
		t.Errorf("rollback answered %q, want the old copy %q; CopyImage %d", back.PhysicalResourceID, old.PhysicalResourceID, h.ec2.count("CopyImage"))
	}
	want := []string{old.Data[copyspec.AttrImageId].(string)}
	if imgs := h.ec2.imageIDs(); !slices.Equal(imgs, want) || strings.Join(h.ec2.snapshotIDs(), ",") != old.Data[copyspec.AttrSnapshotIds] {
		t.Errorf("after the rollback: images %v, snapshots %v; want only the old copy %v and its snapshots %v", imgs, h.ec2.snapshotIDs(), want, old.Data[copyspec.AttrSnapshotIds])
	}
}

// An Update leaves alone an available copy of this resource made for
// neither its old nor its new properties: one CloudFormation retained
// (UpdateReplacePolicy Retain) or whose Delete it gave up on.
func TestUpdateLeavesAnOlderAvailableCopy(t *testing.T) {
	h := newHarness(t)
	first := h.create(sourceA, requestA)
	// The first copy is retained: CloudFormation sends no Delete for it.
	h.deliver(h.event(cfn.RequestUpdate, "update-1", first.PhysicalResourceID, props(sourceB), props(sourceA)))
	second := h.only(cfn.StatusSuccess)
	h.deliver(h.event(cfn.RequestUpdate, "update-2", second.PhysicalResourceID, props(sourceB, copyspec.PropName, "third"), props(sourceB)))
	third := h.only(cfn.StatusSuccess)
	if third.PhysicalResourceID == second.PhysicalResourceID || len(h.ec2.imageIDs()) != 3 {
		t.Errorf("answered %q, images %v; want a third copy next to the retained first and the current second", third.PhysicalResourceID, h.ec2.imageIDs())
	}
}

// retainedCopy puts an available copy of this resource (stack id and
// logical id) that CloudFormation no longer knows: a copy retained by an
// earlier resource with the same logical id, made from source.
func (h *harness) retainedCopy(t *testing.T, id, source string) {
	t.Helper()
	h.ec2.addImage(id, map[string]string{
		copyspec.TagStackId: stackID, copyspec.TagLogicalId: "Copy",
		copyspec.TagCopyToken: "ca00000000000000000000000000000001", copyspec.TagDefinition: copyspec.DefinitionHash(mustDecode(t, props(source))),
	})
}

// A Create that answered FAILED with its RequestId after its CopyImage (the
// router's answer to a panic) is deleted by that id: the Delete removes the
// copy of that request's token, and not another copy with the resource's
// stack and logical id, even one of the same definition.
func TestDeleteOfTheRequestIdRemovesOnlyThatRequestsCopy(t *testing.T) {
	h := newHarness(t)
	h.retainedCopy(t, "ami-0000000000000aaaa", sourceA)
	h.ec2.copyTakes = 40 * time.Minute
	h.run(Invocation{Event: h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil), Ends: h.clock.Now().Add(h.functionTimeout)})
	if len(h.queue) != 1 || len(h.ec2.imageIDs()) != 2 {
		t.Fatalf("the Create did not hand over with its copy: %+v, images %v", h.outcomes, h.ec2.imageIDs())
	}
	h.queue = nil // the invocation that was to answer panicked: the router answered FAILED, requestA

	h.deliver(h.event(cfn.RequestDelete, "delete-1", requestA, props(sourceA), nil))

	h.only(cfn.StatusSuccess)
	if imgs, snaps := h.ec2.imageIDs(), h.ec2.snapshotIDs(); !slices.Equal(imgs, []string{"ami-0000000000000aaaa"}) || !slices.Equal(snaps, []string{"snap-0000000000000aaaa"}) {
		t.Errorf("images %v, snapshots %v; want only the retained copy and its snapshot", imgs, snaps)
	}
}

// A Create that never answered is deleted by the id CloudFormation makes
// up: the Delete removes the copies of the resource made from the Delete's
// properties, and not a copy of the resource made from others.
func TestDeleteOfAMadeUpIdRemovesOnlyCopiesOfItsProperties(t *testing.T) {
	h := newHarness(t)
	h.retainedCopy(t, "ami-0000000000000bbbb", sourceB)
	h.ec2.copyTakes = 40 * time.Minute
	h.run(Invocation{Event: h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil), Ends: h.clock.Now().Add(h.functionTimeout)})
	h.queue = nil // the hand-over is lost: nothing answers

	h.deliver(h.event(cfn.RequestDelete, "delete-1", "app-Copy-1A2B3C4D5E6F", props(sourceA), nil))

	h.only(cfn.StatusSuccess)
	if imgs, snaps := h.ec2.imageIDs(), h.ec2.snapshotIDs(); !slices.Equal(imgs, []string{"ami-0000000000000bbbb"}) || !slices.Equal(snaps, []string{"snap-0000000000000bbbb"}) {
		t.Errorf("images %v, snapshots %v; want only the retained copy of the other source and its snapshot", imgs, snaps)
	}
}

// A state that is not one of EC2's failures (transient, or one EC2 adds
// later) is waited through, not taken for a failure: the copy becomes
// available and is answered; the deadline bounds the wait.
func TestUnknownImageStateIsWaitedThrough(t *testing.T) {
	for _, state := range []types.ImageState{types.ImageStateTransient, "some-future-state"} {
		t.Run(string(state), func(t *testing.T) {
			h := newHarness(t)
			h.ec2.copyTakes = 3 * time.Minute
			h.ec2.pendingShows = state
			h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil))
			h.only(cfn.StatusSuccess)
			if n := h.ec2.count("DeregisterImage"); n != 0 || len(h.ec2.imageIDs()) != 1 {
				t.Errorf("DeregisterImage %d, images %v; want the copy kept", n, h.ec2.imageIDs())
			}
		})
	}
}

// A copy that becomes available while its request cleans up after a
// failure (here a refused hand-over), after the cleanup's first look and
// before its DeregisterImage, is looked at again just before the
// DeregisterImage: it is kept and answered SUCCESS, not removed.
func TestCopyAvailableDuringTheCleanupIsKept(t *testing.T) {
	h := newHarness(t)
	h.ec2.copyTakes = 30 * time.Minute
	h.continueErr = errors.New("TooManyRequestsException: Rate exceeded")
	// Pending at the cleanup's first DescribeImages, available from its second.
	h.onContinue = func() { h.ec2.availableAfterLooks = 2 }

	h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil))

	a := h.only(cfn.StatusSuccess)
	if n := h.ec2.count("DeregisterImage"); n != 0 || len(h.ec2.imageIDs()) != 1 || !strings.HasPrefix(a.PhysicalResourceID, h.ec2.imageIDs()[0]+"/") {
		t.Errorf("answered %q, DeregisterImage %d, images %v; want the copy kept and answered", a.PhysicalResourceID, n, h.ec2.imageIDs())
	}
}

// The function's timeout is 600 s (constructs/internal/provider's
// FunctionTimeout): a copy that never finishes is waited for over seven
// invocations (six hand-overs, well within MaxContinuations) until the
// deadline of a 3600 s ServiceTimeout, then removed and answered FAILED.
func TestAnHourOf600SecondInvocations(t *testing.T) {
	h := newHarness(t)
	h.functionTimeout = 600 * time.Second
	h.ec2.copyTakes = 3 * time.Hour
	outs := h.deliver(h.event(cfn.RequestCreate, requestA, "", props(sourceA, "ServiceTimeout", "3600"), nil))
	a := h.only(cfn.StatusFailed)
	if len(outs) != 7 || h.handed != 6 || !strings.Contains(a.Reason, "timed out") {
		t.Errorf("%d invocations, %d hand-overs, reason %q; want 7, 6, a timeout", len(outs), h.handed, a.Reason)
	}
}

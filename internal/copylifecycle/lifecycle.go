package copylifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// begin serves CloudFormation's delivery of a Create or an Update.
func (m *Machine) begin(ctx context.Context, inv Invocation) Outcome {
	ev := inv.Event
	now := m.clock().Now()
	p, err := copyspec.Decode(ev.ResourceProperties)
	if err != nil {
		return m.answer(ctx, ev, failed(customresource.FallbackID(ev), err.Error()))
	}
	deadline := m.deadlineOf(ev.ResponseURL, p.Wait(), now)
	if !now.Before(deadline) {
		// CloudFormation no longer waits (or is about to stop): it may
		// already have sent the rollback's requests, so a copy started
		// now would be one that nothing removes.
		return Outcome{Ignored: fmt.Sprintf("the %s request %s arrived at %s, after its deadline %s (ServiceTimeout %s after CloudFormation sent it, less %s): not copying, not answering",
			ev.RequestType, ev.RequestID, now.UTC().Format(time.RFC3339), deadline.UTC().Format(time.RFC3339), p.Wait(), m.ansMargin())}
	}
	if err := m.checkKey(ev, p); err != nil {
		return m.answer(ctx, ev, failed(customresource.FallbackID(ev), err.Error()))
	}
	if deadline.Sub(now) < m.reserve()+m.poll() {
		return m.answer(ctx, ev, failed(customresource.FallbackID(ev), fmt.Sprintf("the request's deadline %s is %s away, too close to copy and still clean up (%s) before it: nothing was done",
			deadline.UTC().Format(time.RFC3339), deadline.Sub(now).Round(time.Second), m.reserve())))
	}

	token := copyspec.CopyToken(ev.StackID, ev.LogicalResourceID, ev.RequestID, p)
	failedID := copyspec.PendingID{Token: token}.String()
	if ev.RequestType == cfn.RequestUpdate {
		a, done := m.keepOrReturn(ctx, ev, p)
		kept, _ := copyspec.ParsePhysicalID(a.PhysicalResourceID)
		m.removeAbandoned(ctx, ev, p, token, kept.Token)
		if done {
			return m.answer(ctx, ev, a)
		}
		failedID = ev.PhysicalResourceID
		m.log().Info("the copy's definition changed: making a new copy (CloudFormation then deletes the old one)", "sourceImageId", p.SourceImageId, "physicalResourceId", ev.PhysicalResourceID)
	}

	st, err := m.startCopy(ctx, ev, p)
	st.Deadline, st.FailedPhysicalID = deadline, failedID
	if err != nil {
		if awserr.Rejected(err) && st.ImageId == "" {
			// EC2 refused the CopyImage: no copy exists. A Create answers
			// the request id, whose Delete looks for that request's token
			// and finds nothing to remove.
			return m.answer(ctx, ev, failed(customresource.FallbackID(ev), err.Error()))
		}
		return m.fail(ctx, ev, st, err.Error())
	}
	return m.wait(ctx, inv.Ends, ev, st)
}

// checkKey refuses a destination key of another account or region: EC2
// wants the key in the destination region, and the copy belongs to the
// stack's account.
func (m *Machine) checkKey(ev cfn.Event, p copyspec.Properties) error {
	if p.DefaultKey() {
		return nil
	}
	stack, err := awsid.ParseARN(ev.StackID)
	if err != nil {
		return fmt.Errorf("StackId: %v", err)
	}
	key, _ := awsid.ParseKeyARN(p.KmsKeyId) // Decode validated it
	if key.Account != stack.Account || key.Region != stack.Region {
		return fmt.Errorf("%s: the key %q is in account %s, region %s; the copy is made in the stack's account %s and region %s, and its key must be there too",
			copyspec.PropKmsKeyId, p.KmsKeyId, key.Account, key.Region, stack.Account, stack.Region)
	}
	return nil
}

// keepOrReturn answers an Update without a new copy when one of this
// resource's copies already matches the new properties: the current copy
// (only ServiceTimeout changed), or an older copy still there (the rollback
// of a replacing Update: CloudFormation sends the old properties back, and
// the old copy exists until the update's cleanup; answering its physical id
// makes CloudFormation delete the new copy).
func (m *Machine) keepOrReturn(ctx context.Context, ev cfn.Event, p copyspec.Properties) (Answer, bool) {
	images, err := m.findImages(ctx, []types.Filter{
		tagFilter(copyspec.TagStackId, ev.StackID),
		tagFilter(copyspec.TagLogicalId, ev.LogicalResourceID),
		tagFilter(copyspec.TagDefinition, copyspec.DefinitionHash(p)),
	})
	if err != nil {
		m.log().Warn("looking for an existing copy failed; making a new one", "error", err.Error())
		return Answer{}, false
	}
	var found *types.Image
	for i := range images {
		img := &images[i]
		if img.State != types.ImageStateAvailable || !owned(img.Tags, ev, "") {
			continue
		}
		current, _ := copyspec.ParsePhysicalID(ev.PhysicalResourceID)
		// The current copy first; then the newest.
		if aws.ToString(img.ImageId) == current.ImageId || found == nil ||
			(aws.ToString(found.ImageId) != current.ImageId && aws.ToString(img.CreationDate) > aws.ToString(found.CreationDate)) {
			found = img
		}
	}
	if found == nil {
		return Answer{}, false
	}
	token := tag(found.Tags, copyspec.TagCopyToken)
	m.log().Info("a copy of this resource matches the properties; keeping it", "imageId", aws.ToString(found.ImageId))
	return success(copyspec.PhysicalID{ImageId: aws.ToString(found.ImageId), Token: token}, found), true
}

// removeAbandoned removes the copies of this resource that were made for a
// request CloudFormation no longer waits for. CloudFormation sends one
// request at a time for a resource, so when an Update arrives, a copy whose
// token is neither this request's (token), nor the current physical id's,
// nor the one this Update answers (kept) belongs to a request it gave up on
// (another resource failed, the update was cancelled, or a hand-over was
// lost, while the copy went on). That request's answer, if any, went to a
// URL nobody reads, so its token never became a physical id, and no Delete
// will remove its copy. Such a copy is removed:
//
//   - when it is not available: whichever request made it (its
//     continuation then finds it gone);
//   - when it is available, only if it was made from the old properties
//     (the definition of OldResourceProperties, which differs from this
//     Update's): the rollback of a replacing Update whose copy became
//     available after CloudFormation stopped waiting for it. Any other
//     available copy of this resource is an older physical id
//     CloudFormation retained (UpdateReplacePolicy or DeletionPolicy
//     Retain) or whose Delete it gave up on: CloudFormation's or a
//     person's to remove, not this handler's.
//
// A failure here is logged, not answered: it does not change this
// request's answer, and the copy stays tagged for removal by hand.
func (m *Machine) removeAbandoned(ctx context.Context, ev cfn.Event, p copyspec.Properties, token, kept string) {
	current, _ := copyspec.ParsePhysicalID(ev.PhysicalResourceID)
	movedFrom := ""
	if old, err := copyspec.Decode(ev.OldResourceProperties); err == nil && !copyspec.SameCopy(old, p) {
		movedFrom = copyspec.DefinitionHash(old)
	}
	images, err := m.findImages(ctx, []types.Filter{tagFilter(copyspec.TagStackId, ev.StackID), tagFilter(copyspec.TagLogicalId, ev.LogicalResourceID)})
	if err != nil {
		m.log().Warn("looking for abandoned copies failed", "error", awserr.Text(err))
		return
	}
	for _, img := range images {
		t := tag(img.Tags, copyspec.TagCopyToken)
		if t == token || t == current.Token || t == kept || !copyspec.IsCopyToken(t) || !owned(img.Tags, ev, t) {
			continue
		}
		if img.State == types.ImageStateAvailable && (movedFrom == "" || tag(img.Tags, copyspec.TagDefinition) != movedFrom) {
			continue
		}
		removed, err := m.removeCopy(ctx, ev, t, aws.ToString(img.ImageId), false)
		if err != nil {
			m.log().Warn("removing an abandoned copy failed", "imageId", aws.ToString(img.ImageId), "error", err.Error())
			continue
		}
		m.log().Info("removed the copy of a request CloudFormation no longer waits for", "removed", removed)
	}
}

// startCopy finds the copy of this request (a duplicate delivery) by its
// token tag, or makes it.
func (m *Machine) startCopy(ctx context.Context, ev cfn.Event, p copyspec.Properties) (State, error) {
	token := copyspec.CopyToken(ev.StackID, ev.LogicalResourceID, ev.RequestID, p)
	st := State{Token: token}
	existing, err := m.findImages(ctx, []types.Filter{tagFilter(copyspec.TagCopyToken, token)})
	if err != nil {
		return st, fmt.Errorf("looking for a copy with the token %s (DescribeImages) failed: %s", token, awserr.Text(err))
	}
	for _, img := range existing {
		if owned(img.Tags, ev, token) {
			st.ImageId = aws.ToString(img.ImageId)
			m.log().Info("this request's copy exists already (a duplicate delivery); waiting for it", "imageId", st.ImageId)
			return st, nil
		}
	}
	sourceRegion := p.SourceRegion
	if sourceRegion == "" {
		sourceRegion = m.region(ev)
	}
	var tags []types.Tag
	for k, v := range copyspec.OwnerTags(ev.StackID, ev.LogicalResourceID, token, sourceRegion, p) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	slices.SortFunc(tags, func(a, b types.Tag) int { return strings.Compare(*a.Key, *b.Key) })
	in := &ec2.CopyImageInput{
		Name:          aws.String(copyspec.ImageName(p, token)),
		SourceImageId: aws.String(p.SourceImageId),
		SourceRegion:  aws.String(sourceRegion),
		ClientToken:   aws.String(token),
		Encrypted:     aws.Bool(true),
		// The source's tags are another account's: not copied.
		CopyImageTags: aws.Bool(false),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: tags},
			{ResourceType: types.ResourceTypeSnapshot, Tags: tags},
		},
	}
	if !p.DefaultKey() {
		in.KmsKeyId = aws.String(p.KmsKeyId)
	}
	if p.Description != "" {
		in.Description = aws.String(p.Description)
	}
	out, err := m.EC2.CopyImage(ctx, in)
	if err != nil {
		return st, fmt.Errorf("EC2 CopyImage of %s from %s with the key %s failed: %s%s", p.SourceImageId, sourceRegion, keyName(p), awserr.Text(err), explainCopy(err))
	}
	st.ImageId = aws.ToString(out.ImageId)
	m.log().Info("copy started", "imageId", st.ImageId, "sourceImageId", p.SourceImageId, "token", token)
	return st, nil
}

// region is the copy's region, and the source's default: Machine.Region,
// or the stack's (the function runs in its stack's region).
func (m *Machine) region(ev cfn.Event) string {
	if m.Region != "" {
		return m.Region
	}
	a, _ := awsid.ParseARN(ev.StackID)
	return a.Region
}

func keyName(p copyspec.Properties) string {
	if p.DefaultKey() {
		return "the account's default EBS key"
	}
	return p.KmsKeyId
}

func explainCopy(err error) string {
	switch awserr.Code(err) {
	case "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "AuthFailure":
		return ". Is the AMI shared with this account (launch permission), and its snapshots' key usable by the copier role?"
	case "UnauthorizedOperation":
		return ". The copier role needs ec2:CopyImage and ec2:CreateTags (the tags are part of the CopyImage)"
	}
	return ""
}

// resume serves a continuation.
func (m *Machine) resume(ctx context.Context, inv Invocation) Outcome {
	st := *inv.State
	now := m.clock().Now()
	if !now.Before(st.Deadline) {
		// The invocation running at the deadline answered; or the
		// hand-over was delayed past it, and CloudFormation stops waiting
		// on its own. Its rollback removes the copy: for a Create, the
		// Delete of the id CloudFormation makes up (by the copy's tags
		// and definition); for an Update, the rollback Update, which
		// removes it as abandoned (removeAbandoned).
		return Outcome{Ignored: fmt.Sprintf("continuation of the %s request %s arrived at %s, after the request's deadline %s: nothing done, nothing answered",
			inv.Event.RequestType, inv.Event.RequestID, now.UTC().Format(time.RFC3339), st.Deadline.UTC().Format(time.RFC3339))}
	}
	return m.wait(ctx, inv.Ends, inv.Event, st)
}

// wait looks at the copy until it is available (SUCCESS), failed or gone
// (clean up, FAILED), the request's deadline (clean up, FAILED), or the end
// of this invocation (hand over).
func (m *Machine) wait(ctx context.Context, ends time.Time, ev cfn.Event, st State) Outcome {
	clock := m.clock()
	for {
		img, err := m.describeImage(ctx, st.ImageId)
		if img != nil {
			st.Seen = true
		}
		switch {
		case err != nil:
			// A throttle or a network error: look again next time. The
			// deadline still bounds the wait.
			m.log().Warn("DescribeImages of the copy failed; looking again", "imageId", st.ImageId, "error", awserr.Text(err))
		case img == nil && !st.Seen:
			m.log().Info("EC2 does not show the copy yet; looking again", "imageId", st.ImageId)
		case img == nil || img.State == types.ImageStateDeregistered:
			// A Delete of this resource (CloudFormation stopped waiting)
			// or a person removed it. Snapshots the copy made since are
			// this request's to remove: nothing else will.
			reason := fmt.Sprintf("the copy %s disappeared before it became available (deregistered by a Delete of this resource, or by hand)", st.ImageId)
			return m.fail(ctx, ev, st, reason)
		case img.State == types.ImageStateAvailable:
			if !owned(img.Tags, ev, st.Token) {
				return m.fail(ctx, ev, st, fmt.Sprintf("the image %s does not carry this request's tags (%s=%s)", st.ImageId, copyspec.TagCopyToken, st.Token))
			}
			return m.answer(ctx, ev, success(copyspec.PhysicalID{ImageId: st.ImageId, Token: st.Token}, img))
		case slices.Contains(failedStates, img.State):
			why := string(img.State)
			if img.StateReason != nil {
				why += ": " + aws.ToString(img.StateReason.Code) + " " + aws.ToString(img.StateReason.Message)
			}
			return m.fail(ctx, ev, st, fmt.Sprintf("the copy %s of %s failed (%s)", st.ImageId, tag(img.Tags, copyspec.TagCopyOf), strings.TrimSpace(why)))
		case img.State != types.ImageStatePending:
			// transient, disabled, or a state EC2 adds later: not a
			// failure EC2 names, so the copy may still become available.
			// The deadline bounds the wait.
			m.log().Warn("the copy is in a state that is neither pending, available nor a failure; looking again", "imageId", st.ImageId, "state", string(img.State))
		}

		now := clock.Now()
		cutoff := st.Deadline.Add(-m.reserve())
		if !now.Before(cutoff) {
			return m.fail(ctx, ev, st, fmt.Sprintf("timed out waiting for the copy %s to become available: still %s at %s, the request's deadline less %s kept to clean up (ServiceTimeout bounds the wait; a large AMI may need a time-based copy)",
				st.ImageId, stateOf(img), now.UTC().Format(time.RFC3339), m.reserve()))
		}
		wake := now.Add(m.poll())
		if wake.After(cutoff) {
			wake = cutoff
		}
		if wake.After(ends.Add(-m.contMargin())) {
			return m.handOver(ctx, ev, st)
		}
		if err := clock.Sleep(ctx, wake.Sub(now)); err != nil {
			// The runtime is ending the invocation early (shutdown): hand
			// over while there may be time.
			return m.handOver(ctx, ev, st)
		}
	}
}

// failedStates are the states of an image that EC2's names mark as a
// failure (types.ImageState: pending, available, invalid, deregistered,
// transient, failed, error, disabled, in aws-sdk-go-v2 service/ec2
// v1.346.0). EC2's API reference says only that available means the image
// "is successfully registered and can be used to launch an instance"
// (Image, State); it does not say which others are final. So only these
// three fail the copy (it is removed); any other state is waited through
// until the deadline, which removes the copy if it never becomes available.
var failedStates = []types.ImageState{types.ImageStateFailed, types.ImageStateInvalid, types.ImageStateError}

func stateOf(img *types.Image) string {
	if img == nil {
		return "unknown"
	}
	return string(img.State)
}

// handOver passes the request on to the next invocation.
func (m *Machine) handOver(ctx context.Context, ev cfn.Event, st State) Outcome {
	if st.Continuations >= MaxContinuations {
		return m.fail(ctx, ev, st, fmt.Sprintf("gave up waiting for the copy %s after %d continuations (the function's timeout is too short for the wait)", st.ImageId, st.Continuations))
	}
	st.Continuations++
	c := Continuation{Kind: ContinuationKind, Event: ev, State: st}
	if err := m.Continuer.Continue(ctx, c); err != nil {
		st.Continuations--
		return m.fail(ctx, ev, st, fmt.Sprintf("handing the wait for the copy %s over to the next invocation failed: %v", st.ImageId, err))
	}
	m.log().Info("handed over to the next invocation", "imageId", st.ImageId, "continuations", st.Continuations, "deadline", st.Deadline)
	return Outcome{Continued: &c}
}

// fail removes this request's copy and its snapshots, then answers FAILED;
// unless a copy with the request's token is available after all (it became
// available since the last look), which answers SUCCESS. The request's
// own copy is never available when fail is called otherwise, so an
// available copy with the token is one that must not be removed: this also
// keeps a forged continuation (a live copy's token with an image id that
// names nothing) from removing a copy in use.
//
// The removal looks at each image again just before it deregisters it
// (removeCopy's keepAvailable), so the window in which a copy can become
// available and still be removed is one DescribeImages-to-DeregisterImage
// round trip, not the whole cleanup. What remains: a copy that becomes
// available within that round trip is deregistered and answered FAILED;
// and an invocation that saw it pending at the deadline answers FAILED
// while a duplicate that saw it available a moment earlier may have
// answered SUCCESS (CloudFormation takes the first answer it reads).
func (m *Machine) fail(ctx context.Context, ev cfn.Event, st State, reason string) Outcome {
	// The cleanup runs even if the invocation's context is ending: the
	// answer must not leave a copy behind.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.reserve())
	defer cancel()
	removed, err := m.removeCopy(cctx, ev, st.Token, st.ImageId, true)
	var live *availableError
	if errors.As(err, &live) {
		m.log().Warn("the copy is available after all; answering SUCCESS instead of removing it", "imageId", aws.ToString(live.image.ImageId), "reason", reason, "removedBefore", removed)
		return m.answer(ctx, ev, success(copyspec.PhysicalID{ImageId: aws.ToString(live.image.ImageId), Token: st.Token}, &live.image))
	}
	if err != nil {
		reason = fmt.Sprintf("%s; removing the copy failed: %v", reason, err)
	} else if len(removed) > 0 {
		reason = fmt.Sprintf("%s; removed %s before answering", reason, strings.Join(removed, ", "))
	}
	return m.answer(ctx, ev, failed(st.FailedPhysicalID, reason))
}

// success is the SUCCESS answer for the copy img.
func success(id copyspec.PhysicalID, img *types.Image) Answer {
	return Answer{Status: cfn.StatusSuccess, PhysicalResourceID: id.String(), Data: map[string]interface{}{
		copyspec.AttrImageId:     id.ImageId,
		copyspec.AttrSnapshotIds: strings.Join(snapshotsOf(img), ","),
	}}
}

func snapshotsOf(img *types.Image) []string {
	var out []string
	for _, bdm := range img.BlockDeviceMappings {
		if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
			out = append(out, *bdm.Ebs.SnapshotId)
		}
	}
	return out
}

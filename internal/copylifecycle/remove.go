package copylifecycle

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
)

// Errors EC2 answers for an image or snapshot that is not there. EC2's
// errors are not modelled in the SDK, so they are matched by code.
var (
	imageGone    = []string{"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"}
	snapshotGone = []string{"InvalidSnapshot.NotFound"}
)

// delete serves a Delete: it removes the images and snapshots of this
// resource that the physical id names, and only those. The two ids this
// handler answers name their token; a Create that answered another id, or
// none, is found from the Delete's properties (a Delete carries the
// properties of the resource it deletes).
func (m *Machine) delete(ctx context.Context, ev cfn.Event) error {
	if id, ok := copyspec.ParsePhysicalID(ev.PhysicalResourceID); ok {
		_, err := m.removeCopy(ctx, ev, id.Token, id.ImageId, false)
		return err
	}
	if id, ok := copyspec.ParsePendingID(ev.PhysicalResourceID); ok {
		_, err := m.removeCopy(ctx, ev, id.Token, "", false)
		return err
	}
	p, err := copyspec.Decode(ev.ResourceProperties)
	if err != nil {
		// Decoding the properties is the first thing a Create does: a
		// Create whose properties do not decode made no copy.
		m.log().Warn("the Delete's properties do not decode, so its Create made no copy: nothing to remove", "physicalResourceId", ev.PhysicalResourceID, "error", err.Error())
		return nil
	}
	if requestIDRe.MatchString(ev.PhysicalResourceID) {
		// The request id of a Create that failed (its FAILED answer before
		// a CopyImage, or the router's answer to a panic, possibly after
		// one): its copy, if any, has that request's token. Other copies
		// with the resource's stack and logical id are not its own (a
		// copy retained by an earlier resource of the same logical id).
		_, err := m.removeCopy(ctx, ev, copyspec.CopyToken(ev.StackID, ev.LogicalResourceID, ev.PhysicalResourceID, p), "", false)
		return err
	}
	// The id CloudFormation makes up (<stack>-<logical id>-<suffix>) when a
	// Create never answered (a lost hand-over, a function that died): its
	// request id is not in the event, so the copies it may have made are
	// those with the resource's stack id, logical id and the definition of
	// the Delete's properties. A copy of another definition (retained by an
	// earlier resource of the same logical id) is left alone; one of the
	// same definition cannot be told apart.
	filters := []types.Filter{
		tagFilter(copyspec.TagStackId, ev.StackID), tagFilter(copyspec.TagLogicalId, ev.LogicalResourceID),
		tagFilter(copyspec.TagDefinition, copyspec.DefinitionHash(p)),
	}
	images, err := m.findImages(ctx, filters)
	if err != nil {
		return fmt.Errorf("looking for the copies of %s (DescribeImages by its tags) failed: %s", ev.LogicalResourceID, awserr.Text(err))
	}
	tokens := map[string]bool{}
	for _, img := range images {
		if t := tag(img.Tags, copyspec.TagCopyToken); copyspec.IsCopyToken(t) {
			tokens[t] = true
		}
	}
	snaps, err := m.findSnapshots(ctx, filters)
	if err != nil {
		return fmt.Errorf("looking for the snapshots of %s (DescribeSnapshots by its tags) failed: %s", ev.LogicalResourceID, awserr.Text(err))
	}
	for _, s := range snaps {
		if t := tag(s.Tags, copyspec.TagCopyToken); copyspec.IsCopyToken(t) {
			tokens[t] = true
		}
	}
	var errs []error
	for _, t := range sortedKeys(tokens) {
		if _, err := m.removeCopy(ctx, ev, t, "", false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// requestIDRe is the shape of CloudFormation's RequestId (a UUID, as in
// every event the CloudFormation guide shows; the guide does not promise
// the shape). A request id of another shape is served as a made-up id:
// by the copies' tags and definition, which find its copy too.
var requestIDRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// removeCopy deregisters the copy with token (imageID, if known, and any
// image carrying the token) and deletes the snapshots carrying the token.
// It touches an image or snapshot only when it carries this resource's
// stack id, logical id and the token; an image named by imageID that does
// not is an error, and nothing of it is touched. It returns what it
// removed. Anything already gone is success: removeCopy is idempotent.
//
// With keepAvailable (a request's own cleanup before FAILED), an image
// that is available, as listed or as described again just before its
// DeregisterImage, is not removed: removeCopy stops and returns an
// *availableError naming it. A Delete removes an available copy: that is
// what it is for.
func (m *Machine) removeCopy(ctx context.Context, ev cfn.Event, token, imageID string, keepAvailable bool) ([]string, error) {
	var removed []string
	images, err := m.findImages(ctx, []types.Filter{tagFilter(copyspec.TagCopyToken, token)})
	if err != nil {
		return nil, fmt.Errorf("looking for the images with %s=%s (DescribeImages) failed: %s. %s", copyspec.TagCopyToken, token, awserr.Text(err), removeByHand(imageID, nil))
	}
	if imageID != "" {
		// The image the physical id names must be this resource's copy,
		// whether the lookup by token found it or not.
		i := slices.IndexFunc(images, func(i types.Image) bool { return aws.ToString(i.ImageId) == imageID })
		var img *types.Image
		if i >= 0 {
			img = &images[i]
		} else if img, err = m.describeImage(ctx, imageID); err != nil {
			return nil, fmt.Errorf("DescribeImages of %s failed: %s. %s", imageID, awserr.Text(err), removeByHand(imageID, nil))
		}
		if img != nil && img.State != types.ImageStateDeregistered && !owned(img.Tags, ev, token) {
			return nil, fmt.Errorf("the image %s does not carry this resource's tags (%s=%s, %s=%s, %s=%s), so it was not made by it: not touching it. If the resource is gone, delete it with --retain-resources %s",
				imageID, copyspec.TagStackId, ev.StackID, copyspec.TagLogicalId, ev.LogicalResourceID, copyspec.TagCopyToken, token, ev.LogicalResourceID)
		}
		if img != nil && i < 0 {
			images = append(images, *img)
		}
	}
	var snapshotIDs []string
	for _, img := range images {
		id := aws.ToString(img.ImageId)
		if !owned(img.Tags, ev, token) {
			// The token tag alone is not enough: another stack's
			// resource carries its own stack and logical id.
			m.log().Warn("an image carries the copy token but not this resource's stack and logical id; not touching it", "imageId", id, "token", token)
			continue
		}
		snapshotIDs = append(snapshotIDs, snapshotsOf(&img)...)
		if img.State == types.ImageStateDeregistered {
			continue
		}
		if keepAvailable {
			if live := m.availableNow(ctx, ev, token, img); live != nil {
				return removed, &availableError{image: *live}
			}
		}
		_, err := m.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)})
		if err != nil && !slices.Contains(imageGone, awserr.Code(err)) {
			return removed, fmt.Errorf("EC2 DeregisterImage of %s failed: %s. %s", id, awserr.Text(err), removeByHand(id, snapshotIDs))
		}
		removed = append(removed, id)
	}

	snaps, err := m.findSnapshots(ctx, []types.Filter{tagFilter(copyspec.TagCopyToken, token)})
	if err != nil {
		return removed, fmt.Errorf("looking for the snapshots with %s=%s (DescribeSnapshots) failed: %s. %s", copyspec.TagCopyToken, token, awserr.Text(err), removeByHand("", snapshotIDs))
	}
	var errs []error
	tagged := map[string]bool{}
	for _, s := range snaps {
		id := aws.ToString(s.SnapshotId)
		if !owned(s.Tags, ev, token) {
			m.log().Warn("a snapshot carries the copy token but not this resource's stack and logical id; not touching it", "snapshotId", id, "token", token)
			continue
		}
		tagged[id] = true
		err := m.deleteSnapshot(ctx, id)
		if err != nil && !slices.Contains(snapshotGone, awserr.Code(err)) {
			errs = append(errs, fmt.Errorf("EC2 DeleteSnapshot of %s failed: %s", id, awserr.Text(err)))
			continue
		}
		removed = append(removed, id)
	}
	// A snapshot of the copy that does not carry the tags was not tagged by
	// CopyImage's TagSpecifications: leave it, and say so.
	for _, id := range snapshotIDs {
		if !tagged[id] {
			errs = append(errs, fmt.Errorf("the snapshot %s of the copy does not carry this resource's tags: not deleting it", id))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("%w. %s", err, removeByHand("", snapshotIDs))
	}
	return removed, nil
}

// availableError is removeCopy's answer (with keepAvailable) when an image
// with the token is available: it is not removed.
type availableError struct{ image types.Image }

func (e *availableError) Error() string {
	return fmt.Sprintf("the image %s is available: not removing it", aws.ToString(e.image.ImageId))
}

// availableNow returns img (a copy with token of the resource of ev), as
// listed or as EC2 describes it now, if it is available; nil otherwise. A
// DescribeImages that fails or finds nothing leaves the listed state.
func (m *Machine) availableNow(ctx context.Context, ev cfn.Event, token string, img types.Image) *types.Image {
	if img.State == types.ImageStateAvailable {
		return &img
	}
	fresh, err := m.describeImage(ctx, aws.ToString(img.ImageId))
	if err != nil || fresh == nil || fresh.State != types.ImageStateAvailable || !owned(fresh.Tags, ev, token) {
		return nil
	}
	return fresh
}

// snapshotInUseRetries bounds how often DeleteSnapshot is retried, 5 s
// apart, while EC2 still says the snapshot is in use by the image just
// deregistered: EC2 is eventually consistent, and its guide says to retry
// with a backoff ("Eventual consistency in the Amazon EC2 API",
// https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html).
// A snapshot that stays in use (another image was registered from it) then
// fails the removal, loudly.
const snapshotInUseRetries = 4

// deleteSnapshot deletes one snapshot, retrying while EC2 still sees it in use.
func (m *Machine) deleteSnapshot(ctx context.Context, id string) error {
	for attempt := 0; ; attempt++ {
		_, err := m.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
		if awserr.Code(err) != "InvalidSnapshot.InUse" || attempt == snapshotInUseRetries {
			return err
		}
		if m.clock().Sleep(ctx, time.Duration(attempt+1)*5*time.Second) != nil {
			return err
		}
	}
}

// removeByHand gives the commands that remove a copy by hand.
func removeByHand(imageID string, snapshotIDs []string) string {
	var cmds []string
	if imageID != "" {
		cmds = append(cmds, "aws ec2 deregister-image --image-id "+imageID)
	}
	for _, s := range snapshotIDs {
		cmds = append(cmds, "aws ec2 delete-snapshot --snapshot-id "+s)
	}
	if len(cmds) == 0 {
		return "Find what is left with: aws ec2 describe-images --owners self --filters Name=tag-key,Values=" + copyspec.TagCopyToken
	}
	return "Remove it by hand: " + strings.Join(cmds, "; ")
}

// owned reports whether tags mark an image or snapshot as a copy of the
// resource of ev (and, when token is not empty, as the copy with token).
func owned(tags []types.Tag, ev cfn.Event, token string) bool {
	return tag(tags, copyspec.TagStackId) == ev.StackID &&
		tag(tags, copyspec.TagLogicalId) == ev.LogicalResourceID &&
		(token == "" || tag(tags, copyspec.TagCopyToken) == token)
}

func tag(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func tagFilter(key, value string) types.Filter {
	return types.Filter{Name: aws.String("tag:" + key), Values: []string{value}}
}

// describeImage returns the image id of this account, or nil when EC2 no
// longer knows it.
func (m *Machine) describeImage(ctx context.Context, id string) (*types.Image, error) {
	out, err := m.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, Owners: []string{"self"}})
	if slices.Contains(imageGone, awserr.Code(err)) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for i := range out.Images {
		if aws.ToString(out.Images[i].ImageId) == id {
			return &out.Images[i], nil
		}
	}
	return nil, nil
}

// findImages lists this account's images that match filters, every page.
func (m *Machine) findImages(ctx context.Context, filters []types.Filter) ([]types.Image, error) {
	var out []types.Image
	in := &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: filters}
	for {
		page, err := m.EC2.DescribeImages(ctx, in)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Images...)
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

// findSnapshots lists this account's snapshots that match filters, every page.
func (m *Machine) findSnapshots(ctx context.Context, filters []types.Filter) ([]types.Snapshot, error) {
	var out []types.Snapshot
	in := &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: filters}
	for {
		page, err := m.EC2.DescribeSnapshots(ctx, in)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Snapshots...)
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

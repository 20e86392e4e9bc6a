// Package amipermissionlifecycle implements the Custom::AmiLaunchPermission
// resource: launch permission on one AMI for accounts, an organization or
// organizational units (ec2:ModifyImageAttribute), and optionally
// create-volume permission on the AMI's snapshots for the accounts
// (ec2:ModifySnapshotAttribute, in its Attribute / OperationType / UserIds
// form).
//
//   - Create looks the AMI up, refuses an AMI whose snapshots are encrypted
//     with the AWS managed key aws/ebs (no other account can use that key:
//     the FAILED reason says to copy the AMI with a customer managed key),
//     and adds the permissions: launch permission first, then create-volume
//     permission snapshot by snapshot.
//   - Just before its ModifyImageAttribute a Create records its physical id
//     as the one to answer if it fails from then on (the snapshot step
//     fails, the handler's deadline passes during a call). The Delete
//     CloudFormation sends on rollback (same properties, that id) is an
//     ordinary Delete: it removes the launch permissions the properties
//     name and, with ShareSnapshots, the accounts' create-volume permission
//     on every snapshot of the AMI, whether the failed Create got to add
//     them or not. A Create that fails before that call (invalid
//     properties, an AMI that is not there, an aws/ebs key) or whose
//     ModifyImageAttribute EC2 rejects (a client error: nothing was added)
//     answers the request id, whose Delete makes no call. As with every
//     Delete, a permission that someone had granted by hand to one of the
//     same accounts, organizations or OUs before the Create is removed by
//     the rollback too: EC2 keeps one permission per account, not one per
//     grantor, and the handler does not read the permissions before it
//     writes (its role has no ec2:DescribeImageAttribute).
//   - Update on the same AMI adds what is new and removes what is no longer
//     listed; another AMI is a replacement (CloudFormation then deletes the
//     old resource, which removes its permissions from the old AMI). A
//     replacing Update that fails after it may have shared the new AMI (the
//     snapshot step fails, its deadline passes during a call) removes the
//     permissions its properties name from the new AMI and its snapshots
//     before it answers FAILED, with CleanupReserve of its time kept for
//     that: CloudFormation's rollback Update only re-applies the old AMI,
//     and nothing else would unshare the new one.
//   - Delete removes only the permissions its properties name. An AMI that
//     is gone (InvalidAMIID.NotFound, InvalidAMIID.Unavailable) or a
//     snapshot that is gone ends the Delete successfully. A permission that
//     someone also granted by hand, for the same account, goes with it:
//     EC2 keeps one permission per account, not one per grantor. A physical
//     id that names no AMI (the request id of a Create that failed before
//     sharing) ends the Delete without a call; properties that cannot be
//     decoded fail it, with the commands that unshare the AMI by hand and
//     --retain-resources: answering SUCCESS would leave the AMI shared.
package amipermissionlifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/amipermissionspec"
	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/cleanupreserve"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// EC2 is the part of the EC2 API the lifecycle uses; *ec2.Client has it.
type EC2 interface {
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	ModifyImageAttribute(ctx context.Context, in *ec2.ModifyImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error)
	ModifySnapshotAttribute(ctx context.Context, in *ec2.ModifySnapshotAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error)
}

// KMS tells an AWS managed key from a customer managed one; *kms.Client has it.
type KMS interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// DefaultCleanupReserve is the time a replacing Update keeps, out of its
// deadline, to unshare the new AMI when it fails: one ModifyImageAttribute
// and one ModifySnapshotAttribute per snapshot.
const DefaultCleanupReserve = 30 * time.Second

// Handler is the customresource.Handler of amipermissionspec.ResourceType.
type Handler struct {
	EC2 EC2
	KMS KMS
	// CleanupReserve is kept for the cleanup after a failed replacing
	// Update. Default: DefaultCleanupReserve (at most a third of the time left).
	CleanupReserve time.Duration
}

// New returns the handler over the clients.
func New(ec2Client EC2, kmsClient KMS) *Handler { return &Handler{EC2: ec2Client, KMS: kmsClient} }

var _ customresource.Handler = (*Handler)(nil)

// targets is one set of permissions.
type targets struct {
	accounts, orgs, ous []string
	snapshotAccounts    []string // create-volume permission on the snapshots
}

func targetsOf(p amipermissionspec.Properties) targets {
	t := targets{accounts: p.AccountIds, orgs: p.OrganizationArns, ous: p.OrganizationalUnitArns}
	if p.ShareSnapshots {
		t.snapshotAccounts = p.AccountIds
	}
	return t
}

func (t targets) minus(o targets) targets {
	return targets{accounts: minus(t.accounts, o.accounts), orgs: minus(t.orgs, o.orgs), ous: minus(t.ous, o.ous), snapshotAccounts: minus(t.snapshotAccounts, o.snapshotAccounts)}
}

func (t targets) launch() []types.LaunchPermission {
	var out []types.LaunchPermission
	for _, a := range t.accounts {
		out = append(out, types.LaunchPermission{UserId: aws.String(a)})
	}
	for _, o := range t.orgs {
		out = append(out, types.LaunchPermission{OrganizationArn: aws.String(o)})
	}
	for _, o := range t.ous {
		out = append(out, types.LaunchPermission{OrganizationalUnitArn: aws.String(o)})
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// Create shares the AMI.
func (h *Handler) Create(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := decode(req.Properties)
	if err != nil {
		return customresource.Result{}, err
	}
	res, _, err := h.apply(ctx, req, p, targetsOf(p), targets{})
	return res, err
}

// Update adds and removes the difference (see the package doc).
func (h *Handler) Update(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := decode(req.Properties)
	if err != nil {
		return customresource.Result{}, err
	}
	id, ok := amipermissionspec.ParsePhysicalID(req.PhysicalResourceID)
	old, oldErr := amipermissionspec.Decode(req.OldProperties)
	if !ok || id.ImageId != p.ImageId || oldErr != nil || old.ImageId != p.ImageId {
		customresource.Logger(ctx).Info("the AMI changed; sharing the new one (CloudFormation then deletes the old resource, which stops sharing the old AMI)", "imageId", p.ImageId)
		return h.replace(ctx, req, p)
	}
	now, before := targetsOf(p), targetsOf(old)
	res, _, err := h.apply(ctx, req, p, now.minus(before), before.minus(now))
	return res, err
}

// replace shares the new AMI of a replacing Update. If that fails after it
// may have shared it, the permissions are removed from the new AMI again
// before the answer, under the time CleanupReserve kept.
func (h *Handler) replace(ctx context.Context, req customresource.Request, p amipermissionspec.Properties) (customresource.Result, error) {
	reserve := h.CleanupReserve
	if reserve <= 0 {
		reserve = DefaultCleanupReserve
	}
	work, cancel := cleanupreserve.Keep(ctx, reserve)
	defer cancel()
	res, wrote, err := h.apply(work, req, p, targetsOf(p), targets{})
	if err == nil || !wrote {
		return res, err
	}
	if work.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("gave up before the handler's deadline, keeping time to unshare the new AMI: %w", err)
	}
	customresource.Logger(ctx).Warn("the replacing update failed after sharing the new AMI; unsharing it", "imageId", p.ImageId, "error", err.Error())
	if undoErr := h.unshare(ctx, req, p); undoErr != nil {
		return customresource.Result{}, fmt.Errorf("%w; then unsharing %s failed: %v. Remove the permissions by hand: %s", err, p.ImageId, undoErr, unshareCommands(p))
	}
	return customresource.Result{}, fmt.Errorf("%w; the update removed the permissions it added on %s and its snapshots before answering, so that the rollback leaves it unshared", err, p.ImageId)
}

// Delete removes the permissions the properties name.
func (h *Handler) Delete(ctx context.Context, req customresource.Request) error {
	log := customresource.Logger(ctx)
	id, ok := amipermissionspec.ParsePhysicalID(req.PhysicalResourceID)
	if !ok {
		log.Info("physical id does not name an AMI; nothing to delete", "physicalResourceId", req.PhysicalResourceID)
		return nil
	}
	p, err := amipermissionspec.Decode(req.Properties)
	if err != nil {
		// Answering SUCCESS would leave the AMI shared with nothing left
		// to unshare it.
		return fmt.Errorf("cannot tell which permissions to remove from %s: the properties are not valid (%s). The AMI may still be shared with the accounts, organizations or OUs this resource named: list them (aws ec2 describe-image-attribute --image-id %s --attribute launchPermission), remove those this stack added (%s), then delete the stack again with --retain-resources %s",
			id.ImageId, strings.ReplaceAll(err.Error(), "\n", "; "), id.ImageId, unshareCommands(amipermissionspec.Properties{ImageId: id.ImageId}), req.LogicalResourceID)
	}
	p.ImageId = id.ImageId
	return h.unshare(ctx, req, p)
}

// unshare removes the permissions p names from p's AMI and its snapshots.
func (h *Handler) unshare(ctx context.Context, req customresource.Request, p amipermissionspec.Properties) error {
	log := customresource.Logger(ctx)
	all := targetsOf(p)
	var snapshots []string
	if len(all.snapshotAccounts) > 0 {
		img, err := h.image(ctx, p.ImageId)
		if gone(err) {
			log.Warn("the AMI no longer exists; its snapshots (if any remain) keep their create-volume permissions: remove them by hand", "imageId", p.ImageId, "accounts", all.snapshotAccounts, "error", err.Error())
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking up %s to unshare its snapshots: %w", p.ImageId, err)
		}
		snapshots = snapshotIDs(img)
	}
	if err := h.modify(ctx, p.ImageId, nil, all.launch()); gone(err) {
		log.Warn("the AMI no longer exists; nothing to unshare", "imageId", p.ImageId, "error", err.Error())
		return nil
	} else if err != nil {
		return fmt.Errorf("removing launch permissions from %s: %w (to give up, delete the stack again with --retain-resources %s)", p.ImageId, err, req.LogicalResourceID)
	}
	for _, snap := range snapshots {
		if err := h.modifySnapshot(ctx, snap, types.OperationTypeRemove, all.snapshotAccounts); err != nil && !snapshotGone(err) {
			return fmt.Errorf("removing create-volume permission from %s of %s: %w", snap, p.ImageId, err)
		}
	}
	return nil
}

// unshareCommands are the commands that remove p's permissions by hand
// (placeholders where p names none).
func unshareCommands(p amipermissionspec.Properties) string {
	var remove []string
	for _, a := range p.AccountIds {
		remove = append(remove, "{UserId="+a+"}")
	}
	for _, o := range p.OrganizationArns {
		remove = append(remove, "{OrganizationArn="+o+"}")
	}
	for _, o := range p.OrganizationalUnitArns {
		remove = append(remove, "{OrganizationalUnitArn="+o+"}")
	}
	if len(remove) == 0 {
		remove = []string{"{UserId=<account>}"}
	}
	accounts := strings.Join(p.AccountIds, " ")
	if accounts == "" {
		accounts = "<account>"
	}
	return fmt.Sprintf("aws ec2 modify-image-attribute --image-id %s --launch-permission 'Remove=[%s]', and for each of its snapshots aws ec2 modify-snapshot-attribute --snapshot-id <snap> --attribute createVolumePermission --operation-type remove --user-ids %s",
		p.ImageId, strings.Join(remove, ","), accounts)
}

func decode(raw map[string]interface{}) (amipermissionspec.Properties, error) {
	p, err := amipermissionspec.Decode(raw)
	if err != nil {
		return p, fmt.Errorf("invalid %s properties: %s", amipermissionspec.ResourceType, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return p, nil
}

// apply makes the changes on p's AMI. wrote reports whether a change may
// have been made: a ModifyImageAttribute was sent that EC2 did not reject.
func (h *Handler) apply(ctx context.Context, req customresource.Request, p amipermissionspec.Properties, add, remove targets) (res customresource.Result, wrote bool, err error) {
	img, err := h.image(ctx, p.ImageId)
	if err != nil {
		if gone(err) {
			return customresource.Result{}, false, fmt.Errorf("the AMI %s does not exist in this account and region, or is not available (%s): check ImageId, and that this stack is in the AMI's account and region", p.ImageId, awserr.Text(err))
		}
		return customresource.Result{}, false, fmt.Errorf("looking up %s: %w", p.ImageId, err)
	}
	if len(add.launch()) > 0 || len(add.snapshotAccounts) > 0 {
		if err := h.checkKeys(ctx, img); err != nil {
			return customresource.Result{}, false, err
		}
	}
	id := amipermissionspec.NewPhysicalID(p.ImageId, req.StackID, req.LogicalResourceID)
	creating := req.RequestType == cfn.RequestCreate
	if creating {
		// From the first write on, a failed Create answers the physical id:
		// the rollback Delete then removes what the properties name.
		customresource.FailurePhysicalID(ctx, id.String())
	}
	if err := h.modify(ctx, p.ImageId, add.launch(), remove.launch()); err != nil {
		rejected := awserr.Rejected(err)
		if creating && rejected {
			// EC2 refused the request: nothing was shared, nothing to remove.
			customresource.FailurePhysicalID(ctx, "")
		}
		return customresource.Result{}, !rejected, fmt.Errorf("changing the launch permissions of %s: %w", p.ImageId, err)
	}
	snapshots := snapshotIDs(img)
	for _, snap := range snapshots {
		if len(add.snapshotAccounts) > 0 {
			if err := h.modifySnapshot(ctx, snap, types.OperationTypeAdd, add.snapshotAccounts); err != nil {
				return customresource.Result{}, true, fmt.Errorf("adding create-volume permission on %s of %s for %s: %w", snap, p.ImageId, strings.Join(add.snapshotAccounts, ", "), err)
			}
		}
		if len(remove.snapshotAccounts) > 0 {
			if err := h.modifySnapshot(ctx, snap, types.OperationTypeRemove, remove.snapshotAccounts); err != nil && !snapshotGone(err) {
				return customresource.Result{}, true, fmt.Errorf("removing create-volume permission on %s of %s: %w", snap, p.ImageId, err)
			}
		}
	}
	return customresource.Result{
		PhysicalResourceID: id.String(),
		Data: map[string]interface{}{
			amipermissionspec.AttrImageId:     p.ImageId,
			amipermissionspec.AttrSnapshotIds: strings.Join(snapshots, ","),
		},
	}, true, nil
}

func (h *Handler) image(ctx context.Context, imageID string) (types.Image, error) {
	customresource.Waiting(ctx, "EC2 DescribeImages of "+imageID, nil)
	out, err := h.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		return types.Image{}, err
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == imageID {
			return img, nil
		}
	}
	return types.Image{}, &smithy.GenericAPIError{Code: "InvalidAMIID.NotFound", Message: fmt.Sprintf("The image id '[%s]' does not exist", imageID)}
}

func snapshotIDs(img types.Image) []string {
	var out []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && aws.ToString(m.Ebs.SnapshotId) != "" {
			out = append(out, aws.ToString(m.Ebs.SnapshotId))
		}
	}
	return out
}

// checkKeys fails when a snapshot of the AMI is encrypted with an AWS
// managed key (aws/ebs): other accounts can never use it.
func (h *Handler) checkKeys(ctx context.Context, img types.Image) error {
	var encrypted []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && aws.ToBool(m.Ebs.Encrypted) && aws.ToString(m.Ebs.SnapshotId) != "" {
			encrypted = append(encrypted, aws.ToString(m.Ebs.SnapshotId))
		}
	}
	if len(encrypted) == 0 {
		return nil
	}
	log := customresource.Logger(ctx)
	customresource.Waiting(ctx, "EC2 DescribeSnapshots of "+strings.Join(encrypted, ", "), nil)
	out, err := h.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: encrypted})
	if err != nil {
		log.Warn("cannot read the snapshots' keys; not checking for the AWS managed key", "snapshots", encrypted, "error", err.Error())
		return nil
	}
	managed := map[string]bool{}
	for _, s := range out.Snapshots {
		key := aws.ToString(s.KmsKeyId)
		if key == "" {
			continue
		}
		isAWS, seen := managed[key]
		if !seen {
			customresource.Waiting(ctx, "KMS DescribeKey of "+key, nil)
			d, err := h.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
			if err != nil {
				log.Warn("cannot describe the snapshot's key; not checking for the AWS managed key", "snapshot", aws.ToString(s.SnapshotId), "keyId", key, "error", err.Error())
				managed[key] = false
				continue
			}
			isAWS = d.KeyMetadata != nil && d.KeyMetadata.KeyManager == kmstypes.KeyManagerTypeAws
			managed[key] = isAWS
		}
		if isAWS {
			return fmt.Errorf("the snapshot %s of %s is encrypted with the AWS managed key aws/ebs (%s), which no other account can use: launches and copies from other accounts would fail. Copy the AMI with a customer managed key (aws ec2 copy-image --source-image-id %s --source-region <region> --name <name> --encrypted --kms-key-id <customer managed key ARN>), then share the copy and give its key's policy the statements for the destination accounts",
				aws.ToString(s.SnapshotId), aws.ToString(img.ImageId), key, aws.ToString(img.ImageId))
		}
	}
	return nil
}

func (h *Handler) modify(ctx context.Context, imageID string, add, remove []types.LaunchPermission) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	customresource.Waiting(ctx, "EC2 ModifyImageAttribute of "+imageID, nil)
	_, err := h.EC2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(imageID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: add, Remove: remove},
	})
	return err
}

func (h *Handler) modifySnapshot(ctx context.Context, snapshotID string, op types.OperationType, accounts []string) error {
	customresource.Waiting(ctx, "EC2 ModifySnapshotAttribute of "+snapshotID, nil)
	_, err := h.EC2.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
		SnapshotId:    aws.String(snapshotID),
		Attribute:     types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: op,
		UserIds:       accounts,
	})
	return err
}

// gone and snapshotGone match EC2 error codes: the EC2 SDK models none of
// its service's errors (every one comes as a smithy.GenericAPIError), so the
// code is all there is to match.
func gone(err error) bool {
	c := awserr.Code(err)
	return c == "InvalidAMIID.NotFound" || c == "InvalidAMIID.Unavailable"
}

func snapshotGone(err error) bool { return awserr.Code(err) == "InvalidSnapshot.NotFound" }

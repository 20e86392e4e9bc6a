package grantlifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// The fence of the scheduled check. EventBridge invokes the function
// asynchronously, and Lambda may hold an asynchronous event for hours
// (throttling, a 5xx) or deliver it twice; a check queued before the
// grant's Delete can then run after it. The Delete retires every grant of
// the resource it finds, so a grant re-created after it would be one that
// nothing ever retires. So the check re-creates a grant only while
// CloudFormation shows the grant's Custom::KmsGrant with the physical id
// the event names and a status of a resource the stack keeps
// (liveStatuses): CloudFormation marks a resource DELETE_IN_PROGRESS before
// it invokes its Delete, and a resource that left the stack is unknown to
// DescribeStackResource (or DELETE_COMPLETE, for a deleted stack, which
// DescribeStackResource describes by its unique id for 90 days: AWS
// CloudFormation API Reference, "DescribeStackResource",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResource.html).
//
// A Delete that begins between the first look and the CreateGrant may list
// the grants before the check makes its own: so after a CreateGrant the
// check looks again, and retires the grant it made if the resource is no
// longer alive (or if it cannot tell: a grant retired by mistake comes back
// at the next check; a grant left by mistake stays for good).

// CloudFormation is the part of the CloudFormation API the scheduled check
// uses; *cloudformation.Client has it.
type CloudFormation interface {
	DescribeStackResource(ctx context.Context, in *cloudformation.DescribeStackResourceInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourceOutput, error)
}

// liveStatuses are the statuses of a resource that its stack keeps: created,
// being updated or rolled back to a previous state, or imported. Any other
// (DELETE_*, CREATE_IN_PROGRESS of a resource that is not yet the one the
// event names, or a status CloudFormation adds later) stops the check: a
// grant re-created then might outlive its resource.
var liveStatuses = []cfntypes.ResourceStatus{
	cfntypes.ResourceStatusCreateComplete,
	cfntypes.ResourceStatusUpdateInProgress, cfntypes.ResourceStatusUpdateComplete, cfntypes.ResourceStatusUpdateFailed,
	cfntypes.ResourceStatusUpdateRollbackInProgress, cfntypes.ResourceStatusUpdateRollbackComplete, cfntypes.ResourceStatusUpdateRollbackFailed,
	cfntypes.ResourceStatusImportComplete,
}

// resourceGone says why the grant's resource is not alive.
type resourceGone struct{ why string }

func (g *resourceGone) Error() string { return g.why }

// resourceAlive asks CloudFormation about the grant's resource r. It
// returns nil when r is alive, a *resourceGone when it is not (being
// deleted, deleted, replaced, never there), or the error that kept it from
// telling.
func (h *Handler) resourceAlive(ctx context.Context, r grantspec.HealResource) error {
	if h.CloudFormation == nil {
		return errors.New("this handler has no CloudFormation client, so it cannot tell whether the grant's resource still exists")
	}
	customresource.Waiting(ctx, fmt.Sprintf("CloudFormation DescribeStackResource of %s in %s", r.LogicalResourceID, r.StackID), nil)
	out, err := h.CloudFormation.DescribeStackResource(ctx, &cloudformation.DescribeStackResourceInput{
		StackName: aws.String(r.StackID), LogicalResourceId: aws.String(r.LogicalResourceID),
	})
	// CloudFormation answers ValidationError ("Resource X does not exist for
	// stack Y", "Stack with id Y does not exist"), which its model does not
	// declare, so it is matched by its code.
	if awserr.Code(err) == "ValidationError" && strings.Contains(awserr.Text(err), "does not exist") {
		return &resourceGone{why: fmt.Sprintf("CloudFormation knows no resource %s in stack %s (%s)", r.LogicalResourceID, r.StackID, awserr.Text(err))}
	}
	if err != nil {
		return fmt.Errorf("CloudFormation DescribeStackResource of %s in %s failed: %s%s", r.LogicalResourceID, r.StackID, awserr.Text(err), explainDescribe(err))
	}
	d := out.StackResourceDetail
	if d == nil {
		return fmt.Errorf("CloudFormation DescribeStackResource of %s in %s answered no resource", r.LogicalResourceID, r.StackID)
	}
	if physical := aws.ToString(d.PhysicalResourceId); physical != r.PhysicalResourceID {
		return &resourceGone{why: fmt.Sprintf("the resource %s of stack %s is now %q, not %q as the check's event says (the grant was replaced, and this event is older than the replacement)",
			r.LogicalResourceID, r.StackID, physical, r.PhysicalResourceID)}
	}
	if !slices.Contains(liveStatuses, d.ResourceStatus) {
		return &resourceGone{why: fmt.Sprintf("the resource %s of stack %s is %s", r.LogicalResourceID, r.StackID, d.ResourceStatus)}
	}
	return nil
}

func explainDescribe(err error) string {
	if awserr.Code(err) == "AccessDenied" || awserr.Code(err) == "AccessDeniedException" {
		return ". The handler's role must allow cloudformation:DescribeStackResource on its own stack (the construct grants it with the check)"
	}
	return ""
}

// retireMade retires the grant id the check has just made, for a resource
// that is no longer alive. "Already gone" is success: the resource's Delete
// may have retired it meanwhile.
func (h *Handler) retireMade(ctx context.Context, p grantspec.Properties, id grantspec.PhysicalID) error {
	customresource.Waiting(ctx, fmt.Sprintf("KMS RetireGrant of grant %s on %s", id.GrantId, id.KeyArn), nil)
	_, err := h.KMS.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(id.KeyArn), GrantId: aws.String(id.GrantId)}, inRegion(id.KeyArn))
	if err == nil || awserr.IsA[*types.NotFoundException](err) || awserr.IsA[*types.InvalidGrantIdException](err) {
		return nil
	}
	return fmt.Errorf("KMS RetireGrant of grant %s on %s failed: %s. The grant still gives %s access to the key, and no resource will retire it: remove it by hand (%s)",
		id.GrantId, id.KeyArn, strings.TrimSuffix(awserr.Text(err), "."), p.GranteePrincipal, h.removeCommands(p, id))
}

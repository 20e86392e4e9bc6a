// Package slrlifecycle implements the Custom::AutoScalingServiceLinkedRole
// and Custom::ServiceLinkedRole resources: it makes sure a launcher's
// service-linked role (AWSServiceRoleForAutoScaling, or ..._<CustomSuffix>;
// AWSServiceRoleForEC2Fleet, AWSServiceRoleForEC2SpotFleet,
// AWSServiceRoleForEC2Spot) exists before a grant names it.
//
//   - Create and Update call iam:CreateServiceLinkedRole for the
//     resource's AWSServiceName (autoscaling.amazonaws.com when absent); a
//     role that already exists is success, whoever created it, also when
//     another stack creates it at the same moment (IAM then answers the
//     loser that the name "has been taken").
//     The physical id and the RoleArn attribute are the role's ARN, built
//     from the partition and account of the stack. Update always ensures the
//     role (one call), so a role deleted by hand comes back; a new suffix
//     gives a new physical id.
//   - Delete never deletes the role and makes no call: other stacks and Auto
//     Scaling groups of the account use the same role.
//
// The only permission the handler role needs is iam:CreateServiceLinkedRole
// with the condition iam:AWSServiceName = the services the stack uses.
package slrlifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/slrspec"
)

// IAM is the part of the IAM API the lifecycle uses; *iam.Client has it.
type IAM interface {
	CreateServiceLinkedRole(ctx context.Context, in *iam.CreateServiceLinkedRoleInput, optFns ...func(*iam.Options)) (*iam.CreateServiceLinkedRoleOutput, error)
}

// Handler is the customresource.Handler of slrspec.ResourceType.
type Handler struct {
	IAM IAM
}

// New returns the handler over client.
func New(client IAM) *Handler { return &Handler{IAM: client} }

var _ customresource.Handler = (*Handler)(nil)

// Create ensures the role exists.
func (h *Handler) Create(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	return h.ensure(ctx, req)
}

// Update ensures the role the new properties name exists.
func (h *Handler) Update(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	return h.ensure(ctx, req)
}

// Delete keeps the role.
func (h *Handler) Delete(ctx context.Context, req customresource.Request) error {
	customresource.Logger(ctx).Info("the service-linked role is kept: other stacks and Auto Scaling groups of the account use it", "roleArn", req.PhysicalResourceID)
	return nil
}

func (h *Handler) ensure(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := slrspec.Decode(req.Properties)
	if err != nil {
		return customresource.Result{}, fmt.Errorf("invalid %s properties: %v", p.ResourceType(), err)
	}
	stack, err := req.StackARN()
	if err != nil {
		return customresource.Result{}, err
	}
	role := p.Role()
	roleARN := role.ARN(stack.Partition, stack.Account, p.CustomSuffix)
	in := &iam.CreateServiceLinkedRoleInput{AWSServiceName: aws.String(role.Service)}
	if p.CustomSuffix != "" {
		in.CustomSuffix = aws.String(p.CustomSuffix)
	}
	what := fmt.Sprintf("IAM CreateServiceLinkedRole for %s (%s)", role.Service, role.Name(p.CustomSuffix))
	customresource.Waiting(ctx, what, nil)
	_, err = h.IAM.CreateServiceLinkedRole(ctx, in)
	switch {
	case err == nil:
		customresource.Logger(ctx).Info("service-linked role created", "roleArn", roleARN)
	case exists(err):
		customresource.Logger(ctx).Info("service-linked role already exists", "roleArn", roleARN, "answer", err.Error())
	default:
		return customresource.Result{}, fmt.Errorf("%s failed: %s", what, explain(err, role.Service, roleARN, p.CustomSuffix))
	}
	return customresource.Result{
		PhysicalResourceID: roleARN,
		Data:               map[string]interface{}{slrspec.AttrRoleArn: roleARN},
	}, nil
}

// exists recognises "the role is there already", also when another
// creator (another stack, a first launch) made it a moment ago: IAM
// answers InvalidInput "... has been taken in this account"; moto answers
// EntityAlreadyExists.
// Both are in the IAM model, so the SDK returns them as their modeled types.
func exists(err error) bool {
	if invalid, ok := errors.AsType[*types.InvalidInputException](err); ok {
		return strings.Contains(invalid.ErrorMessage(), "has been taken in this account")
	}
	return awserr.IsA[*types.EntityAlreadyExistsException](err)
}

func explain(err error, service, roleARN, suffix string) string {
	text := awserr.Text(err)
	cliSuffix := ""
	if suffix != "" {
		cliSuffix = " --custom-suffix " + suffix
	}
	// IAM's AccessDenied is not in the IAM model (the SDK returns it as a
	// GenericAPIError), so it is matched by its code.
	if code := awserr.Code(err); code == "AccessDenied" || code == "AccessDeniedException" {
		return fmt.Sprintf("%s. The handler's role needs iam:CreateServiceLinkedRole with the condition iam:AWSServiceName = %s to create %s (or create the role once by hand: aws iam create-service-linked-role --aws-service-name %s%s)", text, service, roleARN, service, cliSuffix)
	}
	return text
}

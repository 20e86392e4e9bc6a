// Package grantlifecycle implements the Custom::KmsGrant resource: one KMS
// grant, created, kept, replaced and revoked as CloudFormation asks.
//
//   - Create calls CreateGrant with a Name derived from the stack and the
//     logical id (grantspec.DefaultName) unless the template names the grant:
//     KMS returns the existing grant when a CreateGrant repeats a Name with
//     the same parameters, so a retried Create does not leave a second grant.
//     The physical id is grantspec.PhysicalID (key ARN and grant id).
//   - Update with a defining change (grantspec.SameGrant false) creates a new
//     grant and answers its new physical id; the old grant is left alone,
//     because CloudFormation deletes it after the update succeeds and needs
//     it for a rollback. Without a defining change Update makes no KMS call,
//     unless VerifyToken changed: then it looks the grant up (ListGrants) and
//     recreates it if someone revoked it.
//   - Delete revokes the grant. With RetireOnDelete it retires it instead;
//     KMS lets only the grant's retiring principal (or a grantee allowed
//     RetireGrant) retire a grant, so this works when the handler's role is
//     the RetiringPrincipal. When KMS denies the retirement, Delete falls
//     back to RevokeGrant. A grant, key or key state that makes the grant
//     unusable anyway (not found, invalid grant id, key disabled or pending
//     deletion) and an access denial end the Delete successfully with a
//     logged warning: a stack stuck in DELETE_FAILED because the source
//     account took its key or its permissions away helps no one, and the
//     warning carries the command that revokes the grant by hand.
//
// The handler's role needs kms:CreateGrant (and, for clean deletes,
// kms:RevokeGrant; kms:ListGrants only for VerifyToken checks) on the key.
package grantlifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// KMS is the part of the KMS API the lifecycle uses; *kms.Client has it.
type KMS interface {
	CreateGrant(ctx context.Context, in *kms.CreateGrantInput, optFns ...func(*kms.Options)) (*kms.CreateGrantOutput, error)
	ListGrants(ctx context.Context, in *kms.ListGrantsInput, optFns ...func(*kms.Options)) (*kms.ListGrantsOutput, error)
	RevokeGrant(ctx context.Context, in *kms.RevokeGrantInput, optFns ...func(*kms.Options)) (*kms.RevokeGrantOutput, error)
	RetireGrant(ctx context.Context, in *kms.RetireGrantInput, optFns ...func(*kms.Options)) (*kms.RetireGrantOutput, error)
}

// Handler is the customresource.Handler of grantspec.ResourceType.
type Handler struct {
	KMS KMS
}

// New returns the handler over client.
func New(client KMS) *Handler { return &Handler{KMS: client} }

var _ customresource.Handler = (*Handler)(nil)

// Create creates the grant.
func (h *Handler) Create(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := decode(req.Properties)
	if err != nil {
		return customresource.Result{}, err
	}
	return h.create(ctx, req, p)
}

// Update keeps, checks or replaces the grant (see the package doc).
func (h *Handler) Update(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := decode(req.Properties)
	if err != nil {
		return customresource.Result{}, err
	}
	log := customresource.Logger(ctx)
	old, oldErr := grantspec.Decode(req.OldProperties)
	id, isGrant := grantspec.ParsePhysicalID(req.PhysicalResourceID)
	switch {
	case oldErr != nil:
		// Typically the rollback of an update to invalid properties.
		log.Info("old properties are not valid; creating the grant the new properties define", "error", oldErr.Error())
		return h.create(ctx, req, p)
	case !isGrant || id.KeyArn != p.KeyArn:
		log.Info("physical id does not name a grant on the key; creating the grant")
		return h.create(ctx, req, p)
	case !grantspec.SameGrant(old, p):
		log.Info("the grant's definition changed; creating a new grant (CloudFormation revokes the old one after the update)")
		return h.create(ctx, req, p)
	case old.VerifyToken == p.VerifyToken:
		return result(id), nil
	}
	exists, err := h.exists(ctx, id)
	switch {
	case err != nil:
		// CreateGrant with the same Name and parameters returns the existing
		// grant on KMS, so it is a sound check of its own.
		log.Warn("cannot look the grant up; calling CreateGrant, which returns the grant if it still exists", "grantId", id.GrantId, "keyArn", id.KeyArn, "error", err.Error())
		return h.create(ctx, req, p)
	case !exists:
		log.Warn("the grant no longer exists (revoked outside CloudFormation?); creating it again", "grantId", id.GrantId, "keyArn", id.KeyArn)
		return h.create(ctx, req, p)
	}
	return result(id), nil
}

// Delete revokes (or retires) the grant the physical id names.
func (h *Handler) Delete(ctx context.Context, req customresource.Request) error {
	log := customresource.Logger(ctx)
	if pending, ok := grantspec.ParsePendingID(req.PhysicalResourceID); ok {
		return h.deletePending(ctx, pending)
	}
	id, ok := grantspec.ParsePhysicalID(req.PhysicalResourceID)
	if !ok {
		// The request id CloudFormation keeps after a Create that failed
		// before reaching KMS, or anything else that never was a grant.
		log.Info("physical id is not a grant id; nothing to delete", "physicalResourceId", req.PhysicalResourceID)
		return nil
	}
	p, err := grantspec.Decode(req.Properties)
	if err != nil {
		log.Warn("properties are not valid; revoking the grant", "error", err.Error())
	}
	if err == nil && p.RetireOnDelete {
		err := h.retire(ctx, id)
		if awserr.Code(err) != "AccessDeniedException" {
			return h.deleteOutcome(ctx, "RetireGrant", id, err)
		}
		log.Warn("KMS denied RetireGrant (is this handler's role the grant's RetiringPrincipal?); revoking instead", "grantId", id.GrantId, "keyArn", id.KeyArn, "error", err.Error())
	}
	return h.deleteOutcome(ctx, "RevokeGrant", id, h.revoke(ctx, id))
}

// deletePending cleans up after a failed Create: KMS may have created the
// grant although the Create did not see the answer. Grants on the key with
// the Create's name are revoked; none found means nothing to do.
func (h *Handler) deletePending(ctx context.Context, pending grantspec.PendingID) error {
	log := customresource.Logger(ctx).With("keyArn", pending.KeyArn, "name", pending.Name)
	customresource.Waiting(ctx, fmt.Sprintf("KMS ListGrants on %s for grants named %s", pending.KeyArn, pending.Name), nil)
	// Whether the grant exists is uncertain, and a stack must not stick in
	// DELETE_FAILED over it: the look-up gets half the remaining time, and
	// any failure ends in success with a warning that says how to check.
	listCtx, cancel := halfTheTime(ctx)
	defer cancel()
	var found []grantspec.PhysicalID
	pages := kms.NewListGrantsPaginator(h.KMS, &kms.ListGrantsInput{KeyId: aws.String(pending.KeyArn)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(listCtx, inRegion(pending.KeyArn))
		if err != nil {
			log.Warn("cannot list the key's grants after a failed create; if KMS created a grant with this name, revoke it by hand",
				"error", err.Error(), "command", fmt.Sprintf("aws kms list-grants --key-id %s --query \"Grants[?Name=='%s']\"", pending.KeyArn, pending.Name))
			return nil
		}
		for _, g := range page.Grants {
			if aws.ToString(g.Name) == pending.Name {
				found = append(found, grantspec.PhysicalID{KeyArn: pending.KeyArn, GrantId: aws.ToString(g.GrantId)})
			}
		}
	}
	if len(found) == 0 {
		log.Info("the failed create left no grant; nothing to delete")
		return nil
	}
	for _, id := range found {
		log.Warn("revoking a grant that a failed create made", "grantId", id.GrantId)
		if err := h.deleteOutcome(ctx, "RevokeGrant", id, h.revoke(ctx, id)); err != nil {
			return err
		}
	}
	return nil
}

// halfTheTime bounds ctx to half of its remaining time.
func halfTheTime(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(deadline)/2)
}

// rejected reports whether err is KMS refusing the request (a client fault
// such as AccessDenied or NotFound), as opposed to an outcome that leaves in
// doubt whether KMS acted on it (a timeout, a server error).
func rejected(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultClient {
		return true
	}
	// Unmodeled errors (AccessDeniedException among them) carry no fault;
	// their HTTP status tells: 4xx means KMS refused the request.
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
}

func decode(raw map[string]interface{}) (grantspec.Properties, error) {
	p, err := grantspec.Decode(raw)
	if err != nil {
		return p, fmt.Errorf("invalid %s properties: %s", grantspec.ResourceType, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return p, nil
}

func result(id grantspec.PhysicalID) customresource.Result {
	return customresource.Result{
		PhysicalResourceID: id.String(),
		Data: map[string]interface{}{
			grantspec.AttrGrantId: id.GrantId,
			grantspec.AttrKeyArn:  id.KeyArn,
		},
	}
}

// inRegion sends a call to the key's region: KMS serves a key only there.
func inRegion(keyARN string) func(*kms.Options) {
	return func(o *kms.Options) {
		if a, err := awsid.ParseKeyARN(keyARN); err == nil {
			o.Region = a.Region
		}
	}
}

func (h *Handler) create(ctx context.Context, req customresource.Request, p grantspec.Properties) (customresource.Result, error) {
	name := p.Name
	if name == "" {
		name = grantspec.DefaultName(req.StackID, req.LogicalResourceID)
	}
	in := &kms.CreateGrantInput{
		KeyId:            aws.String(p.KeyArn),
		GranteePrincipal: aws.String(p.GranteePrincipal),
		Name:             aws.String(name),
	}
	for _, op := range p.Operations {
		in.Operations = append(in.Operations, types.GrantOperation(op))
	}
	if p.RetiringPrincipal != "" {
		in.RetiringPrincipal = aws.String(p.RetiringPrincipal)
	}
	if len(p.EncryptionContextEquals) > 0 || len(p.EncryptionContextSubset) > 0 {
		in.Constraints = &types.GrantConstraints{
			EncryptionContextEquals: p.EncryptionContextEquals,
			EncryptionContextSubset: p.EncryptionContextSubset,
		}
	}
	explain := explainCreate(p)
	if req.RequestType == cfn.RequestCreate {
		// If this Create fails after KMS created the grant (a timeout while
		// the call is in flight), the rollback Delete finds it by name.
		customresource.FailurePhysicalID(ctx, grantspec.PendingID{KeyArn: p.KeyArn, Name: name}.String())
	}
	customresource.Waiting(ctx, fmt.Sprintf("KMS CreateGrant on %s for %s", p.KeyArn, p.GranteePrincipal), explain)
	out, err := h.KMS.CreateGrant(ctx, in, inRegion(p.KeyArn))
	if err != nil && req.RequestType == cfn.RequestCreate && rejected(err) {
		// KMS rejected the request: no grant exists for the rollback to find.
		customresource.FailurePhysicalID(ctx, "")
	}
	if err != nil {
		return customresource.Result{}, fmt.Errorf("KMS CreateGrant on %s for %s failed: %s", p.KeyArn, p.GranteePrincipal, explain(err))
	}
	if out.GrantId == nil || *out.GrantId == "" {
		return customresource.Result{}, fmt.Errorf("KMS CreateGrant on %s for %s answered no grant id", p.KeyArn, p.GranteePrincipal)
	}
	customresource.Logger(ctx).Info("grant created (or found by name)", "grantId", *out.GrantId, "keyArn", p.KeyArn, "name", name)
	return result(grantspec.PhysicalID{KeyArn: p.KeyArn, GrantId: *out.GrantId}), nil
}

// exists looks the grant up with ListGrants filtered by grant id.
func (h *Handler) exists(ctx context.Context, id grantspec.PhysicalID) (bool, error) {
	customresource.Waiting(ctx, fmt.Sprintf("KMS ListGrants on %s for grant %s", id.KeyArn, id.GrantId), nil)
	pages := kms.NewListGrantsPaginator(h.KMS, &kms.ListGrantsInput{KeyId: aws.String(id.KeyArn), GrantId: aws.String(id.GrantId)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, inRegion(id.KeyArn))
		if err != nil {
			if _, ok := errors.AsType[*types.NotFoundException](err); ok {
				return false, nil
			}
			return false, err
		}
		for _, g := range page.Grants {
			if aws.ToString(g.GrantId) == id.GrantId {
				return true, nil
			}
		}
	}
	return false, nil
}

func (h *Handler) revoke(ctx context.Context, id grantspec.PhysicalID) error {
	customresource.Waiting(ctx, fmt.Sprintf("KMS RevokeGrant of grant %s on %s", id.GrantId, id.KeyArn), nil)
	_, err := h.KMS.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(id.KeyArn), GrantId: aws.String(id.GrantId)}, inRegion(id.KeyArn))
	return err
}

func (h *Handler) retire(ctx context.Context, id grantspec.PhysicalID) error {
	customresource.Waiting(ctx, fmt.Sprintf("KMS RetireGrant of grant %s on %s", id.GrantId, id.KeyArn), nil)
	_, err := h.KMS.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(id.KeyArn), GrantId: aws.String(id.GrantId)}, inRegion(id.KeyArn))
	return err
}

// RevokeCommand is the command that revokes the grant by hand, run with
// credentials of the key's account.
func RevokeCommand(id grantspec.PhysicalID) string {
	region := ""
	if a, err := awsid.ParseKeyARN(id.KeyArn); err == nil {
		region = " --region " + a.Region
	}
	return fmt.Sprintf("aws kms revoke-grant%s --key-id %s --grant-id %s", region, id.KeyArn, id.GrantId)
}

func (h *Handler) deleteOutcome(ctx context.Context, op string, id grantspec.PhysicalID, err error) error {
	log := customresource.Logger(ctx).With("grantId", id.GrantId, "keyArn", id.KeyArn)
	switch code := awserr.Code(err); {
	case err == nil:
		log.Info("grant deleted", "operation", op)
		return nil
	case code == "InvalidGrantIdException":
		log.Info("KMS does not know the grant id; nothing to delete", "operation", op, "error", err.Error())
		return nil
	case code == "NotFoundException":
		// The grant was revoked already, or the key itself is gone (and its
		// grants with it).
		log.Warn("the grant or its key no longer exists; nothing to delete", "operation", op, "error", err.Error())
		return nil
	case code == "KMSInvalidStateException" || code == "DisabledException":
		log.Warn("the key is disabled or pending deletion; the grant was not revoked. A pending deletion removes it with the key; if the key is enabled again, revoke it by hand",
			"operation", op, "error", err.Error(), "command", RevokeCommand(id))
		return nil
	case code == "AccessDeniedException":
		log.Warn("KMS denied the revocation (the key policy no longer lets this role revoke grants, or the key's account is gone); the grant was NOT revoked: revoke it by hand with credentials of the key's account",
			"operation", op, "error", err.Error(), "command", RevokeCommand(id))
		return nil
	}
	return fmt.Errorf("KMS %s of grant %s on %s failed: %s (to give up on the grant, revoke it by hand with '%s' and delete the stack again)", op, id.GrantId, id.KeyArn, awserr.Text(err), RevokeCommand(id))
}

// explainCreate turns a CreateGrant error into a sentence a person can act on.
func explainCreate(p grantspec.Properties) func(error) string {
	return func(err error) string {
		text := awserr.Text(err)
		region, account := "", ""
		if a, perr := awsid.ParseKeyARN(p.KeyArn); perr == nil {
			region, account = a.Region, a.Account
		}
		switch awserr.Code(err) {
		case "AccessDeniedException":
			return fmt.Sprintf("%s. The key policy of %s (account %s) does not allow kms:CreateGrant for this handler's role, or the role's own policy does not: add the statements from CrossAccountEncryptedAmi.KeyPolicyStatements() (or the key policy statements the library synthesizes in the source stack) to the key policy and deploy the source stack first", text, p.KeyArn, account)
		case "NotFoundException":
			return fmt.Sprintf("%s. The key %s does not exist: check the ARN, that the key was not deleted, and that it lives in %s (a key is served only in its own region)", text, p.KeyArn, region)
		case "InvalidArnException":
			return fmt.Sprintf("%s. KMS does not know the grantee %s%s: create it first, or wait until it is visible (a new role or service-linked role takes seconds to minutes); for the Auto Scaling service-linked role, deploy a Custom::AutoScalingServiceLinkedRole resource before the grant", text, p.GranteePrincipal, retiring(p))
		case "DisabledException":
			return fmt.Sprintf("%s. The key %s is disabled: enable it in account %s (aws kms enable-key --key-id %s)", text, p.KeyArn, account, p.KeyArn)
		case "KMSInvalidStateException":
			return fmt.Sprintf("%s. The key %s cannot take grants in its current state, usually pending deletion: cancel the deletion in account %s (aws kms cancel-key-deletion --key-id %s) and enable the key", text, p.KeyArn, account, p.KeyArn)
		case "LimitExceededException":
			return fmt.Sprintf("%s. The key %s or the grantee has reached the KMS grants quota: revoke unused grants (aws kms list-grants --key-id %s)", text, p.KeyArn, p.KeyArn)
		}
		return text
	}
}

func retiring(p grantspec.Properties) string {
	if p.RetiringPrincipal == "" {
		return ""
	}
	return " or the retiring principal " + p.RetiringPrincipal
}

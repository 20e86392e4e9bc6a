// Package grantlifecycle implements the Custom::KmsGrant resource: one KMS
// grant, created, kept, replaced and removed as CloudFormation asks, touching
// no grant it did not create.
//
// Ownership. A grant whose RetiringPrincipal is the handler's own role
// (Handler.Role, from grantspec.HandlerRoleEnv) is owned by the handler:
//
//   - it is found with ListRetirableGrants for that role, an IAM permission of
//     the handler's own account that lists only grants naming the role as
//     retiring principal, on any key of any account;
//   - it is removed with RetireGrant, which KMS authorizes from the grant
//     itself, across accounts, with no statement in the key policy.
//
// Any other grant (the generic kmsgrant construct with a RetiringPrincipal of
// the user's choosing, or none) is found with ListGrants on the key and
// removed with RevokeGrant, which the key policy must allow.
//
// In both cases the handler acts only on a grant whose key, name, grantee,
// retiring principal, operations and constraints all match the properties of
// the request, or on the grant id CloudFormation holds as its physical id.
// A hand-made grant with the same name, or another stack's, is never touched.
//
// Lifecycle:
//
//   - Create calls CreateGrant with a Name derived from the stack and the
//     logical id (grantspec.DefaultName) unless the template names the grant:
//     KMS returns the existing grant when a CreateGrant repeats a Name with
//     the same parameters, so a retried Create does not leave a second grant.
//     Before the call it records grantspec.PendingID as its failure physical
//     id: if the Create fails after KMS may have created the grant (a timeout
//     while the call is in flight), the rollback Delete finds that grant and
//     removes it. A Create that KMS rejected answers the request id instead.
//     An AccessDeniedException is retried for PropagationWindow, because a
//     key policy or IAM policy written moments earlier takes a while to
//     reach every KMS host; then the Create fails and names both policies.
//   - Update with a defining change (grantspec.SameGrant false) creates a new
//     grant and answers its new physical id; the old grant is left alone,
//     because CloudFormation deletes it after the update succeeds and needs
//     it for a rollback. It first lists the grants that already match the
//     new definition (in a rollback, KMS answers with the old grant rather
//     than a new one). If CreateGrant then fails in doubt (a timeout, a
//     server error), the handler removes the matching grants that were not
//     there before, keeping CleanupReserve of its time for it: a failed
//     replacing Update leaves exactly the old grant.
//     Without a defining change Update makes no KMS call, unless VerifyToken
//     changed: then it looks the grant up and recreates it if it has vanished.
//     An owned grant is looked up by its definition and name, not by its id
//     (the scheduled check may have re-created it under a new one), and keeps
//     its physical id when re-created; Data's GrantId names the grant found
//     or made (see verifyOwned). Any other grant is looked up by its id, and
//     a re-created one answers its new physical id.
//   - Delete retires an owned grant and revokes any other. Only "already
//     gone" counts as success: NotFoundException (the grant or its key is
//     gone) and InvalidGrantIdException. A denied RetireGrant or RevokeGrant,
//     a disabled key or a key pending deletion fail the Delete with the exact
//     command that removes the grant by hand: a stack reported deleted while
//     the grant still lets another account decrypt with the key would be a
//     lie. See the README's troubleshooting for DELETE_FAILED.
//     For an owned grant, Delete then retires every grant this handler owns
//     under that name that matches the properties, so that a re-created grant
//     never leaks: one RetireGrant, one ListRetirableGrants (per page), and
//     one RetireGrant per re-created grant. If that listing fails, so does
//     the Delete, with the command that lists them.
//   - Heal (the scheduled check, grantspec.HealEvent) looks for an owned
//     grant by its definition and name, re-creates it if it is gone while
//     CloudFormation shows the grant's resource alive, and writes a metric
//     line for an alarm (see heal.go). The only grant it ever removes is one
//     it has just made for a resource whose Delete began meanwhile.
package grantlifecycle

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/cleanupreserve"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// KMS is the part of the KMS API the lifecycle uses; *kms.Client has it.
type KMS interface {
	CreateGrant(ctx context.Context, in *kms.CreateGrantInput, optFns ...func(*kms.Options)) (*kms.CreateGrantOutput, error)
	ListGrants(ctx context.Context, in *kms.ListGrantsInput, optFns ...func(*kms.Options)) (*kms.ListGrantsOutput, error)
	ListRetirableGrants(ctx context.Context, in *kms.ListRetirableGrantsInput, optFns ...func(*kms.Options)) (*kms.ListRetirableGrantsOutput, error)
	RevokeGrant(ctx context.Context, in *kms.RevokeGrantInput, optFns ...func(*kms.Options)) (*kms.RevokeGrantOutput, error)
	RetireGrant(ctx context.Context, in *kms.RetireGrantInput, optFns ...func(*kms.Options)) (*kms.RetireGrantOutput, error)
}

const (
	// DefaultPropagationWindow is how long an AccessDeniedException on
	// CreateGrant is retried. AWS documents that changes to key policies,
	// grants and IAM policies are eventually consistent, usually within
	// seconds and rarely up to five minutes; on a first deploy the source
	// stack writes the key policy moments before the destination asks.
	DefaultPropagationWindow = 3 * time.Minute
	// DefaultCleanupReserve is the time a replacing Update keeps, out of its
	// deadline, to remove a grant its failed CreateGrant may have made.
	DefaultCleanupReserve = time.Minute
)

// Handler is the customresource.Handler of grantspec.ResourceType.
type Handler struct {
	KMS KMS
	// Role is the ARN of the role the handler runs as. Grants that name it
	// as RetiringPrincipal are owned (see the package doc). Empty: none is.
	Role string
	// PropagationWindow bounds the retries of a denied CreateGrant.
	// Default: DefaultPropagationWindow.
	PropagationWindow time.Duration
	// CleanupReserve is kept for the cleanup after a failed replacing
	// Update. Default: DefaultCleanupReserve (at most a third of the time left).
	CleanupReserve time.Duration
	// Metrics receives the scheduled check's metric lines (Heal). Nil:
	// os.Stdout, where Lambda collects them into the function's log group.
	Metrics io.Writer
	// CloudFormation tells the scheduled check whether the grant's resource
	// still exists (see heal_fence.go). Nil: the check refuses to run.
	CloudFormation CloudFormation
}

// New returns the handler over client, running as role.
func New(client KMS, role string) *Handler { return &Handler{KMS: client, Role: role} }

var _ customresource.Handler = (*Handler)(nil)

// owns reports whether the grant p defines is the handler's own: its
// retiring principal is the handler's role.
func (h *Handler) owns(p grantspec.Properties) bool {
	return h.Role != "" && p.RetiringPrincipal == h.Role
}

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
		return h.replace(ctx, req, p, id.GrantId)
	case !isGrant || id.KeyArn != p.KeyArn:
		log.Info("physical id does not name a grant on the key; creating the grant")
		return h.replace(ctx, req, p, id.GrantId)
	case !grantspec.SameGrant(old, p):
		log.Info("the grant's definition changed; creating a new grant (CloudFormation removes the old one after the update)")
		return h.replace(ctx, req, p, id.GrantId)
	case old.VerifyToken == p.VerifyToken:
		return result(id, nameOf(req, p)), nil
	case h.owns(p):
		return h.verifyOwned(ctx, req, p, id)
	}
	exists, err := h.exists(ctx, p, id)
	switch {
	case err != nil:
		// CreateGrant with the same Name and parameters returns the existing
		// grant on KMS, so it is a sound check of its own.
		log.Warn("cannot look the grant up; calling CreateGrant, which returns the grant if it still exists", "grantId", id.GrantId, "keyArn", id.KeyArn, "error", err.Error())
		return h.replace(ctx, req, p, id.GrantId)
	case !exists:
		log.Warn("the grant no longer exists (revoked outside CloudFormation?); creating it again", "grantId", id.GrantId, "keyArn", id.KeyArn)
		return h.replace(ctx, req, p, id.GrantId)
	}
	return result(id, nameOf(req, p)), nil
}

// verifyOwned is the VerifyToken check of a grant the handler owns. Its
// grant is any of the handler's grants that matches the definition and the
// name, whatever its id: the scheduled check re-creates a revoked grant
// under a new id. So the physical id stays, and Data's GrantId names the
// grant found or made: a new physical id would make CloudFormation delete
// the old one, and that Delete retires every grant matching the definition,
// the live one included.
func (h *Handler) verifyOwned(ctx context.Context, req customresource.Request, p grantspec.Properties, id grantspec.PhysicalID) (customresource.Result, error) {
	log := customresource.Logger(ctx).With("grantId", id.GrantId, "keyArn", id.KeyArn)
	name := nameOf(req, p)
	found, err := h.find(ctx, p, name)
	switch {
	case err != nil:
		// CreateGrant with the same Name and parameters returns the existing
		// grant on KMS, so it is a sound check of its own.
		log.Warn("cannot look the grant up; calling CreateGrant, which returns the grant if it still exists", "error", err.Error())
	case slices.Contains(found, id):
		return result(id, name), nil
	case len(found) > 0:
		log.Info("the grant was re-created under a new id; keeping the physical id", "currentGrantId", found[0].GrantId)
		return resultOf(id, found[0].GrantId, name), nil
	default:
		log.Warn("the grant no longer exists (revoked outside CloudFormation?); creating it again, keeping the physical id")
	}
	// A CreateGrant that fails in doubt may leave the grant: it is this
	// resource's grant all the same, which its Delete retires.
	res, err := h.create(ctx, req, p)
	if err != nil {
		return customresource.Result{}, err
	}
	made, _ := grantspec.ParsePhysicalID(res.PhysicalResourceID) // create answers a grant's
	return resultOf(id, made.GrantId, name), nil
}

// Delete removes the grant the physical id names, or, after a failed
// Create, the grant that Create may have made. For a grant the handler
// owns it then retires every other grant of the handler that matches the
// properties and the name (see removeRecreated).
func (h *Handler) Delete(ctx context.Context, req customresource.Request) error {
	log := customresource.Logger(ctx)
	if pending, ok := grantspec.ParsePendingID(req.PhysicalResourceID); ok {
		return h.deletePending(ctx, req, pending)
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
		// The grant id alone identifies the grant; the retiring principal
		// says how to remove it.
		log.Warn("properties are not valid; removing the grant the physical id names", "error", err.Error())
		p = grantspec.Properties{KeyArn: id.KeyArn}
		if s, ok := req.Properties[grantspec.PropRetiringPrincipal].(string); ok {
			p.RetiringPrincipal = s
		}
		return h.remove(ctx, req, p, id)
	}
	if err := h.remove(ctx, req, p, id); err != nil {
		return err
	}
	if !h.owns(p) || p.KeyArn != id.KeyArn {
		return nil
	}
	return h.removeRecreated(ctx, req, p, id)
}

// removeRecreated retires, after the grant the physical id names, every
// other grant the handler owns that matches p under the resource's name:
// the scheduled check (Heal) and a VerifyToken Update re-create a revoked
// grant under a new id that the physical id does not name, and a Delete
// that left it would leak it. Only grants matching the definition exactly
// are touched, and only the handler's own (ListRetirableGrants of its role).
func (h *Handler) removeRecreated(ctx context.Context, req customresource.Request, p grantspec.Properties, id grantspec.PhysicalID) error {
	name := nameOf(req, p)
	found, err := h.find(ctx, p, name)
	if err != nil {
		return fmt.Errorf("the grant %s on %s is removed, but listing the other grants named %s that this handler owns (a grant re-created after a revocation has an id of its own) failed: %s. Check with '%s', remove what it shows (%s), then delete the stack again; or keep the stack's record of it with --retain-resources %s",
			id.GrantId, id.KeyArn, name, awserr.Text(err), h.findCommand(p, name), h.removeHint(p), req.LogicalResourceID)
	}
	for _, other := range found {
		if other.GrantId == id.GrantId {
			continue // listed a moment after its retirement (KMS is eventually consistent)
		}
		customresource.Logger(ctx).Info("removing a grant of this resource that was re-created under a new id", "grantId", other.GrantId, "keyArn", other.KeyArn, "name", name)
		if err := h.remove(ctx, req, p, other); err != nil {
			return err
		}
	}
	return nil
}

// deletePending cleans up after a failed Create: KMS may have created the
// grant although the Create did not see the answer. The grants found are the
// ones that match the Create's properties exactly.
func (h *Handler) deletePending(ctx context.Context, req customresource.Request, pending grantspec.PendingID) error {
	log := customresource.Logger(ctx).With("keyArn", pending.KeyArn, "name", pending.Name)
	p, err := grantspec.Decode(req.Properties)
	if err != nil || p.KeyArn != pending.KeyArn {
		// A pending id is answered only after the properties decoded, so
		// this is not a Delete of that Create: nothing can be matched.
		log.Warn("the properties do not describe the failed create; nothing can be matched, nothing removed", "error", fmt.Sprint(err))
		return nil
	}
	found, err := h.find(ctx, p, pending.Name)
	if err != nil {
		if awserr.IsA[*types.NotFoundException](err) {
			log.Info("the key no longer exists; the failed create left no grant that could be used")
			return nil
		}
		return fmt.Errorf("cannot tell whether the failed create left a grant named %s on %s: %s. Check with '%s'; remove what it shows (%s), then delete again, or give up with --retain-resources %s",
			pending.Name, pending.KeyArn, awserr.Text(err), h.findCommand(p, pending.Name), h.removeHint(p), req.LogicalResourceID)
	}
	if len(found) == 0 {
		log.Info("the failed create left no grant; nothing to delete")
		return nil
	}
	for _, id := range found {
		log.Warn("removing a grant that a failed create made", "grantId", id.GrantId)
		if err := h.remove(ctx, req, p, id); err != nil {
			return err
		}
	}
	return nil
}

func decode(raw map[string]interface{}) (grantspec.Properties, error) {
	p, err := grantspec.Decode(raw)
	if err != nil {
		return p, fmt.Errorf("invalid %s properties: %s", grantspec.ResourceType, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return p, nil
}

// result answers the physical id id of the grant named name.
func result(id grantspec.PhysicalID, name string) customresource.Result {
	return resultOf(id, id.GrantId, name)
}

// resultOf answers the physical id id with Data naming grantID, the grant
// in force (an owned grant re-created after a revocation has an id the
// physical id does not name), and the grant's name (the scheduled check of
// a grant of the default name reads it, grantspec.AttrGrantName).
func resultOf(id grantspec.PhysicalID, grantID, name string) customresource.Result {
	return customresource.Result{
		PhysicalResourceID: id.String(),
		Data: map[string]interface{}{
			grantspec.AttrGrantId:   grantID,
			grantspec.AttrKeyArn:    id.KeyArn,
			grantspec.AttrGrantName: name,
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

func nameOf(req customresource.Request, p grantspec.Properties) string {
	if p.Name != "" {
		return p.Name
	}
	return grantspec.DefaultName(req.StackID, req.LogicalResourceID)
}

// createGrantInput is the CreateGrant of the grant p defines under name:
// the same request for Create, Update and the scheduled check, so that KMS
// answers a repeat with the existing grant.
func createGrantInput(p grantspec.Properties, name string) *kms.CreateGrantInput {
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
	return in
}

func (h *Handler) create(ctx context.Context, req customresource.Request, p grantspec.Properties) (customresource.Result, error) {
	name := nameOf(req, p)
	in := createGrantInput(p, name)
	window := h.propagationWindow()
	explain := h.explainCreate(p, window)
	if req.RequestType == cfn.RequestCreate {
		// If this Create fails after KMS created the grant (a timeout while
		// the call is in flight), the rollback Delete finds it by its name
		// and properties.
		customresource.FailurePhysicalID(ctx, h.pendingID(ctx, p, name))
	}
	customresource.Waiting(ctx, fmt.Sprintf("KMS CreateGrant on %s for %s", p.KeyArn, p.GranteePrincipal), explain)
	until := time.Now().Add(window)
	out, err := h.KMS.CreateGrant(ctx, in, inRegion(p.KeyArn), func(o *kms.Options) {
		o.Retryer = awserr.RetryCodesUntil(o.Retryer, until, "AccessDeniedException")
	})
	if err != nil && req.RequestType == cfn.RequestCreate && awserr.Rejected(err) {
		// KMS rejected the request: no grant exists for the rollback to find.
		customresource.FailurePhysicalID(ctx, "")
	}
	if err != nil {
		return customresource.Result{}, &explained{text: fmt.Sprintf("KMS CreateGrant on %s for %s failed: %s", p.KeyArn, p.GranteePrincipal, explain(err)), cause: err}
	}
	if out.GrantId == nil || *out.GrantId == "" {
		return customresource.Result{}, fmt.Errorf("KMS CreateGrant on %s for %s answered no grant id", p.KeyArn, p.GranteePrincipal)
	}
	customresource.Logger(ctx).Info("grant created (or found by name)", "grantId", *out.GrantId, "keyArn", p.KeyArn, "name", name)
	return result(grantspec.PhysicalID{KeyArn: p.KeyArn, GrantId: *out.GrantId}, name), nil
}

// pendingID is the physical id a Create answers if it fails after its
// CreateGrant may have reached KMS. A derived name is this resource's alone
// (stack id, logical id), so any grant matching it is the Create's. A name
// from the template may already belong to a grant with the same parameters
// (adopting a hand-made grant by name): KMS would answer with it rather than
// make one, so a grant found before the call is not the Create's, and the
// rollback must not remove it; then the Create answers the request id.
func (h *Handler) pendingID(ctx context.Context, p grantspec.Properties, name string) string {
	pending := grantspec.PendingID{KeyArn: p.KeyArn, Name: name}.String()
	if p.Name == "" {
		return pending
	}
	found, err := h.find(ctx, p, name)
	switch {
	case err != nil:
		customresource.Logger(ctx).Warn("cannot tell whether a grant with this name and these parameters exists already; a failed create will leave to you any grant it made", "name", name, "error", err.Error(), "command", h.findCommand(p, name))
		return ""
	case len(found) > 0:
		customresource.Logger(ctx).Info("a grant with this name and these parameters exists already: this create adopts it", "name", name, "grantId", found[0].GrantId)
		return ""
	}
	return pending
}

// replace creates the grant p defines during an Update. KMS answers a
// CreateGrant that repeats a grant's name and parameters with the existing
// grant, so the grants that match p before the call (in a rollback, the old
// grant CloudFormation restores) are listed first: they were not made by
// this call. If CreateGrant then fails in doubt, every grant matching p that
// is neither among them nor keep (the grant CloudFormation holds) was made
// by it and is removed, so that the stack keeps exactly the old grant. The
// create runs under a deadline that leaves time for that.
func (h *Handler) replace(ctx context.Context, req customresource.Request, p grantspec.Properties, keep string) (customresource.Result, error) {
	name := nameOf(req, p)
	before, listErr := h.find(ctx, p, name)
	createCtx, cancel := h.withCleanupReserve(ctx)
	defer cancel()
	res, err := h.create(createCtx, req, p)
	if err == nil || awserr.Rejected(err) {
		return res, err
	}
	if createCtx.Err() != nil && ctx.Err() == nil {
		why := "no answer"
		if last := customresource.LastRetry(createCtx); last != nil {
			why = "last error: " + awserr.Text(last)
		}
		err = fmt.Errorf("timed out waiting for KMS CreateGrant on %s for %s (%s)", p.KeyArn, p.GranteePrincipal, why)
	}
	if listErr != nil {
		// Without the list from before, no grant can be shown to be this
		// call's: touch none, and say how to check.
		return customresource.Result{}, fmt.Errorf("%w; the grants matching it could not be listed before the call (%s), so none is removed: check with '%s' and remove one made now (%s)", err, awserr.Text(listErr), h.findCommand(p, name), h.removeHint(p))
	}
	customresource.Logger(ctx).Warn("the replacing CreateGrant failed in doubt; removing any grant it made", "name", name, "keep", keep, "error", err.Error())
	found, findErr := h.find(ctx, p, name)
	if findErr != nil {
		return customresource.Result{}, fmt.Errorf("%w; then listing the grants it may have made failed: %s (check with '%s')", err, awserr.Text(findErr), h.findCommand(p, name))
	}
	for _, id := range found {
		if id.GrantId == keep || slices.Contains(before, id) {
			continue
		}
		if rmErr := h.remove(ctx, req, p, id); rmErr != nil {
			return customresource.Result{}, fmt.Errorf("%w; then removing the grant %s it made failed: %v", err, id.GrantId, rmErr)
		}
	}
	return customresource.Result{}, err
}

// explained is an AWS error told in words a person can act on; it unwraps
// to the error, so that callers still see what KMS answered.
type explained struct {
	text  string
	cause error
}

func (e *explained) Error() string { return e.text }
func (e *explained) Unwrap() error { return e.cause }

// withCleanupReserve bounds ctx so that CleanupReserve (at most a third of
// the remaining time) is left after it.
func (h *Handler) withCleanupReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	reserve := h.CleanupReserve
	if reserve <= 0 {
		reserve = DefaultCleanupReserve
	}
	return cleanupreserve.Keep(ctx, reserve)
}

func (h *Handler) propagationWindow() time.Duration {
	if h.PropagationWindow > 0 {
		return h.PropagationWindow
	}
	return DefaultPropagationWindow
}

// exists looks up a grant the handler does not own, with ListGrants
// filtered by grant id (an owned grant is looked up by its definition, see
// verifyOwned).
func (h *Handler) exists(ctx context.Context, p grantspec.Properties, id grantspec.PhysicalID) (bool, error) {
	customresource.Waiting(ctx, fmt.Sprintf("KMS ListGrants on %s for grant %s", id.KeyArn, id.GrantId), nil)
	pages := kms.NewListGrantsPaginator(h.KMS, &kms.ListGrantsInput{KeyId: aws.String(id.KeyArn), GrantId: aws.String(id.GrantId)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, inRegion(id.KeyArn))
		if err != nil {
			if awserr.IsA[*types.NotFoundException](err) {
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

// find returns the grants named name that match p exactly: among the
// handler's retirable grants when it owns the grant, else among the key's.
func (h *Handler) find(ctx context.Context, p grantspec.Properties, name string) ([]grantspec.PhysicalID, error) {
	var found []grantspec.PhysicalID
	keep := func(g types.GrantListEntry) {
		if matches(p, name, g) {
			found = append(found, grantspec.PhysicalID{KeyArn: p.KeyArn, GrantId: aws.ToString(g.GrantId)})
		}
	}
	if h.owns(p) {
		customresource.Waiting(ctx, fmt.Sprintf("KMS ListRetirableGrants of %s for grants named %s", p.RetiringPrincipal, name), nil)
		return found, h.eachRetirable(ctx, p, keep)
	}
	customresource.Waiting(ctx, fmt.Sprintf("KMS ListGrants on %s for grants named %s", p.KeyArn, name), nil)
	pages := kms.NewListGrantsPaginator(h.KMS, &kms.ListGrantsInput{KeyId: aws.String(p.KeyArn)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, inRegion(p.KeyArn))
		if err != nil {
			return nil, err
		}
		for _, g := range page.Grants {
			keep(g)
		}
	}
	return found, nil
}

// eachRetirable calls fn for every grant the handler's role may retire in
// the key's region.
func (h *Handler) eachRetirable(ctx context.Context, p grantspec.Properties, fn func(types.GrantListEntry)) error {
	pages := kms.NewListRetirableGrantsPaginator(h.KMS, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(p.RetiringPrincipal)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, inRegion(p.KeyArn))
		if err != nil {
			return err
		}
		for _, g := range page.Grants {
			fn(g)
		}
	}
	return nil
}

// matches reports whether g is the grant p defines under name: same key,
// name, grantee, retiring principal, operations and constraints.
func matches(p grantspec.Properties, name string, g types.GrantListEntry) bool {
	ops := make([]string, 0, len(g.Operations))
	for _, op := range g.Operations {
		ops = append(ops, string(op))
	}
	var equals, subset map[string]string
	if g.Constraints != nil {
		equals, subset = g.Constraints.EncryptionContextEquals, g.Constraints.EncryptionContextSubset
	}
	return sameKey(aws.ToString(g.KeyId), p.KeyArn) &&
		aws.ToString(g.Name) == name &&
		aws.ToString(g.GranteePrincipal) == p.GranteePrincipal &&
		aws.ToString(g.RetiringPrincipal) == p.RetiringPrincipal &&
		grantspec.SameOperations(ops, p.Operations) &&
		maps.Equal(equals, p.EncryptionContextEquals) &&
		maps.Equal(subset, p.EncryptionContextSubset)
}

// sameKey reports whether a grant's KeyId (a key ARN on AWS, a bare key id
// on some emulators) is the key keyARN.
func sameKey(keyID, keyARN string) bool {
	return keyID == keyARN || (keyID != "" && strings.HasSuffix(keyARN, ":key/"+keyID))
}

// remove retires an owned grant and revokes any other, and judges the outcome.
func (h *Handler) remove(ctx context.Context, req customresource.Request, p grantspec.Properties, id grantspec.PhysicalID) error {
	owned := h.owns(p)
	op := "RevokeGrant"
	if owned {
		op = "RetireGrant"
	}
	customresource.Waiting(ctx, fmt.Sprintf("KMS %s of grant %s on %s", op, id.GrantId, id.KeyArn), nil)
	var err error
	if owned {
		_, err = h.KMS.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(id.KeyArn), GrantId: aws.String(id.GrantId)}, inRegion(id.KeyArn))
	} else {
		_, err = h.KMS.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(id.KeyArn), GrantId: aws.String(id.GrantId)}, inRegion(id.KeyArn))
	}
	return h.removeOutcome(ctx, req, op, p, id, err)
}

func (h *Handler) removeOutcome(ctx context.Context, req customresource.Request, op string, p grantspec.Properties, id grantspec.PhysicalID, err error) error {
	log := customresource.Logger(ctx).With("grantId", id.GrantId, "keyArn", id.KeyArn, "operation", op)
	var why string
	// KMS errors are matched by their modeled types; AccessDeniedException
	// is not in the KMS model (the SDK returns it as a GenericAPIError), so
	// it is matched by its code.
	switch denied := awserr.Code(err) == "AccessDeniedException"; {
	case err == nil:
		log.Info("grant removed")
		return nil
	case awserr.IsA[*types.InvalidGrantIdException](err):
		log.Info("KMS does not know the grant id; nothing to remove", "error", err.Error())
		return nil
	case awserr.IsA[*types.NotFoundException](err):
		// The grant was removed already, or the key itself is gone (and its
		// grants with it).
		log.Warn("the grant or its key no longer exists; nothing to remove", "error", err.Error())
		return nil
	case awserr.IsA[*types.KMSInvalidStateException](err) || awserr.IsA[*types.DisabledException](err):
		why = "the key is disabled or pending deletion, so KMS kept the grant: it is back in force as soon as the key is enabled again (cancelling a deletion leaves the key disabled). Remove it once the key is enabled"
	case denied && op == "RetireGrant":
		why = "KMS denied the retirement although this handler's role is the grant's retiring principal (was the role deleted and created again? KMS knows a role by its unique id)"
	case denied:
		why = "KMS denied the revocation: the key policy no longer allows kms:RevokeGrant for this handler's role"
	default:
		why = "KMS did not remove the grant"
	}
	return fmt.Errorf("KMS %s of grant %s on %s failed: %s. %s. The grant still gives %s access to the key. Remove it by hand (%s), then delete the stack again; if the key's owner will not remove it, keep the stack's record of it with --retain-resources %s",
		op, id.GrantId, id.KeyArn, strings.TrimSuffix(awserr.Text(err), "."), why, p.GranteePrincipal, h.removeCommands(p, id), req.LogicalResourceID)
}

// removeCommands are the commands that remove the grant by hand.
func (h *Handler) removeCommands(p grantspec.Properties, id grantspec.PhysicalID) string {
	region, account := "", "the key's account"
	if a, err := awsid.ParseKeyARN(id.KeyArn); err == nil {
		region, account = " --region "+a.Region, "account "+a.Account
	}
	revoke := fmt.Sprintf("aws kms revoke-grant%s --key-id %s --grant-id %s, with credentials of %s (its key administrators may always revoke)", region, id.KeyArn, id.GrantId, account)
	if !h.owns(p) {
		return revoke
	}
	// KMS documents that the account in which a grant was created may also
	// retire it; whether a principal other than that account's root user may
	// do so is not settled by the documentation, so revoke comes first.
	return fmt.Sprintf("%s; or aws kms retire-grant%s --key-id %s --grant-id %s in this stack's account, which KMS lets retire the grants created in it", revoke, region, id.KeyArn, id.GrantId)
}

func (h *Handler) removeHint(p grantspec.Properties) string {
	if h.owns(p) {
		return "aws kms retire-grant --key-id <key ARN> --grant-id <id>"
	}
	return "aws kms revoke-grant --key-id <key ARN> --grant-id <id>"
}

// findCommand is the command that lists the grants find looks at.
func (h *Handler) findCommand(p grantspec.Properties, name string) string {
	region := ""
	if a, err := awsid.ParseKeyARN(p.KeyArn); err == nil {
		region = " --region " + a.Region
	}
	if h.owns(p) {
		return fmt.Sprintf("aws kms list-retirable-grants%s --retiring-principal %s --query \"Grants[?Name=='%s']\"", region, p.RetiringPrincipal, name)
	}
	return fmt.Sprintf("aws kms list-grants%s --key-id %s --query \"Grants[?Name=='%s']\"", region, p.KeyArn, name)
}

// explainCreate turns a CreateGrant error into a sentence a person can act
// on; window is how long a denial was retried (0: not at all).
func (h *Handler) explainCreate(p grantspec.Properties, window time.Duration) func(error) string {
	return func(err error) string {
		text := strings.TrimSuffix(awserr.Text(err), ".")
		region, account := "", ""
		if a, perr := awsid.ParseKeyARN(p.KeyArn); perr == nil {
			region, account = a.Region, a.Account
		}
		// KMS errors are matched by their modeled types; AccessDeniedException
		// is not in the KMS model (the SDK returns it as a GenericAPIError),
		// so it is matched by its code.
		switch {
		case awserr.Code(err) == "AccessDeniedException":
			caller := "this handler's role"
			if h.Role != "" {
				caller = h.Role
			}
			retried := ""
			if window > 0 {
				retried = fmt.Sprintf(", also when asked again (a denial is retried for up to %v while policies written moments earlier propagate)", window)
			}
			return fmt.Sprintf("%s. KMS denied kms:CreateGrant%s. Two policies must allow it: "+
				"(1) the key policy of %s (account %s) must allow kms:CreateGrant to %s with kms:GranteePrincipal %s, kms:GrantOperations within %s%s "+
				"(the statement CrossAccountEncryptedAmi places on the key, or KeyPolicyStatements() for an imported key; deploy the key's stack first); "+
				"(2) the IAM policy of %s in this stack (the grant's HandlerPolicy, which it depends on) must allow the same on the key",
				text, retried, p.KeyArn, account, caller, p.GranteePrincipal, strings.Join(p.Operations, " "), retiringCondition(p), caller)
		case awserr.IsA[*types.NotFoundException](err):
			return fmt.Sprintf("%s. The key %s does not exist: check the ARN, that the key was not deleted, and that it lives in %s (a key is served only in its own region)", text, p.KeyArn, region)
		case awserr.IsA[*types.InvalidArnException](err):
			return fmt.Sprintf("%s. KMS does not know the grantee %s%s: create it first, or wait until it is visible (a new role or service-linked role takes seconds to minutes); for the Auto Scaling service-linked role, deploy a Custom::AutoScalingServiceLinkedRole resource before the grant", text, p.GranteePrincipal, retiring(p))
		case awserr.IsA[*types.DisabledException](err):
			return fmt.Sprintf("%s. The key %s is disabled: enable it in account %s (aws kms enable-key --key-id %s)", text, p.KeyArn, account, p.KeyArn)
		case awserr.IsA[*types.KMSInvalidStateException](err):
			return fmt.Sprintf("%s. The key %s cannot take grants in its current state, usually pending deletion: cancel the deletion in account %s (aws kms cancel-key-deletion --key-id %s) and enable the key", text, p.KeyArn, account, p.KeyArn)
		case awserr.IsA[*types.LimitExceededException](err):
			return fmt.Sprintf("%s. The key %s or the grantee has reached the KMS grants quota: revoke unused grants (aws kms list-grants --key-id %s)", text, p.KeyArn, p.KeyArn)
		}
		return text
	}
}

func retiringCondition(p grantspec.Properties) string {
	if p.RetiringPrincipal == "" {
		return ""
	}
	return " and kms:RetiringPrincipal " + p.RetiringPrincipal
}

func retiring(p grantspec.Properties) string {
	if p.RetiringPrincipal == "" {
		return ""
	}
	return " or the retiring principal " + p.RetiringPrincipal
}

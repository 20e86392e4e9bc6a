package grantlifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/emf"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

var _ customresource.EventHandler = (*Handler)(nil).Heal

// Heal is the scheduled check of one grant the handler owns (the Input of
// an EventBridge rule, grantspec.HealEvent). It first asks CloudFormation
// whether the grant's resource, which the event names, is alive (see
// heal_fence.go): when it is being deleted, deleted or replaced, the check
// does nothing more, writes no metric, and succeeds. Otherwise it lists the
// grants the handler's role may retire and looks for one that matches the
// event's properties and name (matches, as every other lookup). Present: it
// logs the grant and changes nothing. Gone (revoked by hand, in an
// incident): it calls CreateGrant with the same name and parameters as the
// Create did, which makes the grant again under a new id, then asks
// CloudFormation again: if the resource's Delete began meanwhile (or the
// answer cannot be had), it retires the grant it just made. The resource's
// Delete retires a re-created grant too.
//
// Each run that gets past the fence writes one metric line
// (grantspec.MetricNamespace, dimension GrantName): GrantRecreated 1 or 0
// and GrantCheckFailed 0 when the check succeeded, GrantCheckFailed 1 alone
// when it failed, and then the invocation fails as well. An event that
// names no resource (a rule of an older version) fails the check: it might
// be a late delivery after the Delete, so it re-creates nothing.
//
// A grant the handler does not own cannot be checked: ListRetirableGrants
// for the handler's role does not list it, and ListGrants on a key of
// another account needs the key policy's leave. The check refuses it.
//
// Calls: DescribeStackResource; ListRetirableGrants (one per page);
// CreateGrant when the grant is gone, then DescribeStackResource again, and
// RetireGrant of the new grant when the resource is no longer alive. A
// denied CreateGrant is not retried: nothing was written moments earlier
// that could still be propagating.
func (h *Handler) Heal(ctx context.Context, raw json.RawMessage) (string, error) {
	p, r, err := grantspec.DecodeHealEvent(raw)
	if err != nil {
		return "", h.checkFailed(ctx, grantspec.HealEventName(raw), err)
	}
	log := customresource.Logger(ctx).With("keyArn", p.KeyArn, "name", p.Name, "stackId", r.StackID, "logicalResourceId", r.LogicalResourceID)
	if !h.owns(p) {
		return "", h.checkFailed(ctx, p.Name, h.notOwned(p))
	}
	var gone *resourceGone
	if err := h.resourceAlive(ctx, r); errors.As(err, &gone) {
		log.Warn("the grant's resource is being deleted or is gone (a late or repeated event?); checking nothing, re-creating nothing", "why", gone.why)
		return fmt.Sprintf("grant %s on %s not checked: %s", p.Name, p.KeyArn, gone.why), nil
	} else if err != nil {
		return "", h.checkFailed(ctx, p.Name, fmt.Errorf("cannot tell whether the resource of the grant %s on %s still exists, so the check does nothing: %v", p.Name, p.KeyArn, err))
	}
	found, err := h.find(ctx, p, p.Name)
	if err != nil {
		return "", h.checkFailed(ctx, p.Name, fmt.Errorf("cannot tell whether the grant %s on %s still exists: KMS ListRetirableGrants of %s failed: %s",
			p.Name, p.KeyArn, p.RetiringPrincipal, explainList(h.Role, err)))
	}
	if len(found) > 0 {
		ids := make([]string, 0, len(found))
		for _, id := range found {
			ids = append(ids, id.GrantId)
		}
		log.Info("grant present", "grantId", found[0].GrantId, "grantIds", ids)
		if err := h.checked(p.Name, 0); err != nil {
			return "", err
		}
		return fmt.Sprintf("grant %s on %s present: %s", p.Name, p.KeyArn, found[0].GrantId), nil
	}

	customresource.Waiting(ctx, fmt.Sprintf("KMS CreateGrant on %s for %s", p.KeyArn, p.GranteePrincipal), nil)
	out, err := h.KMS.CreateGrant(ctx, createGrantInput(p, p.Name), inRegion(p.KeyArn))
	if err == nil && aws.ToString(out.GrantId) == "" {
		err = errors.New("KMS answered no grant id")
	}
	if err != nil {
		return "", h.checkFailed(ctx, p.Name, fmt.Errorf("the grant %s on %s is gone, and re-creating it failed: KMS CreateGrant on %s for %s failed: %s",
			p.Name, p.KeyArn, p.KeyArn, p.GranteePrincipal, h.explainCreate(p, 0)(err)))
	}
	made := grantspec.PhysicalID{KeyArn: p.KeyArn, GrantId: aws.ToString(out.GrantId)}
	if err := h.resourceAlive(ctx, r); err != nil {
		return h.undoHeal(ctx, p, made, err)
	}
	log.Warn("grant was gone (revoked or retired outside CloudFormation?); re-created it under its name", "grantId", made.GrantId)
	if err := h.checked(p.Name, 1); err != nil {
		return "", err
	}
	return fmt.Sprintf("grant %s on %s re-created: %s", p.Name, p.KeyArn, made.GrantId), nil
}

// undoHeal retires the grant made, because after the CreateGrant the
// resource is no longer alive (why is a *resourceGone) or its state could
// not be had (why is that error): the resource's Delete may have listed
// the grants before this one existed.
func (h *Handler) undoHeal(ctx context.Context, p grantspec.Properties, made grantspec.PhysicalID, why error) (string, error) {
	log := customresource.Logger(ctx).With("keyArn", p.KeyArn, "name", p.Name, "grantId", made.GrantId)
	var gone *resourceGone
	isGone := errors.As(why, &gone)
	if err := h.retireMade(ctx, p, made); err != nil {
		return "", h.checkFailed(ctx, p.Name, fmt.Errorf("re-created the grant %s on %s as %s, then found its resource no longer alive (%v), and retiring it failed: %w", p.Name, p.KeyArn, made.GrantId, why, err))
	}
	if isGone {
		log.Warn("the grant's resource began its Delete while the check re-created the grant; retired the grant it made", "why", gone.why)
		return fmt.Sprintf("grant %s on %s re-created as %s and retired again: %s", p.Name, p.KeyArn, made.GrantId, gone.why), nil
	}
	return "", h.checkFailed(ctx, p.Name, fmt.Errorf("re-created the grant %s on %s as %s, but then could not tell whether its resource still exists, so it retired that grant again (a grant left behind after the resource's Delete would stay for good; the next check re-creates it): %v",
		p.Name, p.KeyArn, made.GrantId, why))
}

// notOwned is why the check refuses a grant of another retiring principal.
func (h *Handler) notOwned(p grantspec.Properties) error {
	if h.Role == "" {
		return fmt.Errorf("cannot check the grant %s on %s: this handler does not know its role (%s is not set), so it owns no grant, and it checks only grants it owns",
			p.Name, p.KeyArn, grantspec.HandlerRoleEnv)
	}
	return fmt.Errorf("cannot check the grant %s on %s: its RetiringPrincipal is %q, not this handler's role %s. The check looks for a grant with ListRetirableGrants of that role, which lists only the grants it may retire, and re-creates only those: give the grant RetiringPrincipal %s, or check it by hand (aws kms list-grants --key-id %s)",
		p.Name, p.KeyArn, p.RetiringPrincipal, h.Role, h.Role, p.KeyArn)
}

// explainList turns a ListRetirableGrants error into words a person can act on.
func explainList(role string, err error) string {
	text := awserr.Text(err)
	// AccessDeniedException is not in the KMS model (the SDK returns it as
	// a GenericAPIError), so it is matched by its code.
	if awserr.Code(err) == "AccessDeniedException" {
		return fmt.Sprintf("%s. The IAM policy of %s must allow kms:ListRetirableGrants (Resource *); the construct grants it to the handler of every grant it owns", text, role)
	}
	return text
}

// checked writes the metrics of a check that succeeded; recreated is 1
// when the grant was made again.
func (h *Handler) checked(name string, recreated float64) error {
	if err := h.emit(name, emf.Metric{Name: grantspec.MetricGrantRecreated, Unit: emf.Count, Value: recreated},
		emf.Metric{Name: grantspec.MetricGrantCheckFailed, Unit: emf.Count, Value: 0}); err != nil {
		return fmt.Errorf("the check of grant %s succeeded, but its metric could not be written: %v", name, err)
	}
	return nil
}

// checkFailed writes GrantCheckFailed 1 under name (when there is one: a
// metric needs its dimension) and returns err, for the invocation to fail.
// GrantRecreated is left out, so that it has no data for a check that did
// not run through.
func (h *Handler) checkFailed(ctx context.Context, name string, err error) error {
	if name == "" {
		customresource.Logger(ctx).Error("the check failed before it knew the grant's name; no metric written", "error", err.Error())
		return err
	}
	if emitErr := h.emit(name, emf.Metric{Name: grantspec.MetricGrantCheckFailed, Unit: emf.Count, Value: 1}); emitErr != nil {
		return fmt.Errorf("%w (and its metric could not be written: %v)", err, emitErr)
	}
	return err
}

func (h *Handler) emit(name string, metrics ...emf.Metric) error {
	w := &emf.Writer{Out: h.Metrics}
	return w.Write(grantspec.MetricNamespace, map[string]string{grantspec.MetricDimensionGrantName: name}, metrics...)
}

// FailingHeal is the scheduled check of a function that could not load its
// AWS configuration: it fails every run with cause, after writing
// GrantCheckFailed 1, so that the alarm sees it as it sees any other failure.
func FailingHeal(metrics io.Writer, cause error) customresource.EventHandler {
	h := &Handler{Metrics: metrics}
	return func(ctx context.Context, raw json.RawMessage) (string, error) {
		return "", h.checkFailed(ctx, grantspec.HealEventName(raw), fmt.Errorf("the handler could not load its AWS configuration: %v", cause))
	}
}

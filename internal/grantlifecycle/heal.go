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
// an EventBridge rule, grantspec.HealEvent): it lists the grants the
// handler's role may retire and looks for one that matches the event's
// properties and name (matches, as every other lookup). Present: it logs
// the grant and changes nothing. Gone (revoked by hand, in an incident): it
// calls CreateGrant with the same name and parameters as the Create did,
// which makes the grant again under a new id. It never revokes or retires
// anything; the resource's Delete retires the re-created grant too.
//
// Each run writes one metric line (grantspec.MetricNamespace, dimension
// GrantName): GrantRecreated 1 or 0 and GrantCheckFailed 0 when the check
// succeeded, GrantCheckFailed 1 alone when it failed, and then the
// invocation fails as well.
//
// A grant the handler does not own cannot be checked: ListRetirableGrants
// for the handler's role does not list it, and ListGrants on a key of
// another account needs the key policy's leave. The check refuses it.
//
// KMS calls: ListRetirableGrants (one per page); CreateGrant when the grant
// is gone. A denied CreateGrant is not retried: nothing was written moments
// earlier that could still be propagating.
func (h *Handler) Heal(ctx context.Context, raw json.RawMessage) (string, error) {
	p, err := grantspec.DecodeHealEvent(raw)
	if err != nil {
		return "", h.checkFailed(ctx, grantspec.HealEventName(raw), err)
	}
	log := customresource.Logger(ctx).With("keyArn", p.KeyArn, "name", p.Name)
	if !h.owns(p) {
		return "", h.checkFailed(ctx, p.Name, h.notOwned(p))
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
	log.Warn("grant was gone (revoked or retired outside CloudFormation?); re-created it under its name", "grantId", aws.ToString(out.GrantId))
	if err := h.checked(p.Name, 1); err != nil {
		return "", err
	}
	return fmt.Sprintf("grant %s on %s re-created: %s", p.Name, p.KeyArn, aws.ToString(out.GrantId)), nil
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

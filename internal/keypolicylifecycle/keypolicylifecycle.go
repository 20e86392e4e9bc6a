// Package keypolicylifecycle implements the Custom::KmsKeyPolicyStatements
// resource: statements, identified by their Sids, kept in the policy of a
// KMS key that another team owns. It runs in the key's account (KMS does not
// allow PutKeyPolicy from another account).
//
// Every event reads the policy (GetKeyPolicy), merges by Sid, writes it
// (PutKeyPolicy) and reads it back to verify:
//
//   - Create adds the statements. A statement with one of its Sids that is
//     already there with the same content is adopted (so statements applied
//     by hand from CrossAccountEncryptedAmi's warning are taken over); with
//     other content it is a conflict and the Create fails.
//   - A Create that fails once it may have written the policy (the
//     read-back fails, the policy does not converge, the handler's deadline
//     passes during or after a PutKeyPolicy) answers FAILED with a rollback
//     id (keypolicyspec.RollbackID) instead of the request id: the
//     resource's physical id and, when it adopted statements, their indexes
//     in the properties' Statements. Adopted means present with the same
//     Sid and content in the policy read just before the Create's first
//     PutKeyPolicy; a statement that a concurrent writer removed and the
//     Create wrote again in a later round stays adopted, one that appeared
//     only after that read (the Create's own write among them) does not.
//     The rollback id is recorded before that PutKeyPolicy, so that a
//     timeout while the call is in flight answers it too. The Delete
//     CloudFormation sends on rollback (same properties, that id) removes
//     the statements the Create added and leaves the adopted ones: the
//     policy is as before the Create, unless someone else changed it in
//     between (the Delete removes by Sid) and except for the whitespace
//     between top-level fields and between statements, which every write of
//     this handler compacts. A Create that fails before any write (invalid
//     properties, a Sid conflict, the size limit, a failed GetKeyPolicy, or
//     KMS rejecting the first PutKeyPolicy with a client error) answers the
//     request id: there is nothing to remove, and its Delete makes no call.
//   - Update on the same key removes the old properties' Sids that are no
//     longer wanted and replaces or adds the new ones. Another key is a
//     replacement: the statements are added to the new key under a new
//     physical id, and CloudFormation's Delete of the old id removes them
//     from the old key.
//   - Delete removes the statements by Sid, adopted ones included: a
//     resource that was created owns every statement of its properties
//     (only the rollback id of a failed Create keeps some). A key that is
//     gone, disabled or pending deletion ends the Delete successfully with
//     a warning. An access denial fails the Delete: the statements give
//     another account access to the key, and leaving them behind silently
//     is worse than a DELETE_FAILED that says which Sids to remove by hand
//     (then delete the stack again with --retain-resources <logical id>).
//
// Statements without one of this resource's Sids are never dropped,
// reordered or rewritten: they are written back as the exact bytes KMS
// returned, and so are the policy's other top-level fields.
//
// KMS has no conditional write: a writer that reads the policy before this
// handler writes it and writes after drops this resource's statements; the
// read-back sees that and the handler tries again, up to Attempts times, then
// fails with the last difference. A writer whose write lands between this
// handler's read and write loses its change; nothing outside KMS can
// prevent that.
//
// The merged policy is checked against KMS's 32 KB limit, in bytes of the
// JSON sent, before it is written. BypassPolicyLockoutSafetyCheck is never set.
package keypolicylifecycle

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

// KMS is the part of the KMS API the lifecycle uses; *kms.Client has it.
type KMS interface {
	GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
}

// DefaultAttempts bounds the read-merge-write-verify rounds of one event.
const DefaultAttempts = 5

// Handler is the customresource.Handler of keypolicyspec.ResourceType.
type Handler struct {
	KMS KMS
	// Attempts bounds the read-merge-write-verify rounds. Default: DefaultAttempts.
	Attempts int
	// Backoff is the pause before round n+1 (n from 1). Default: n seconds.
	Backoff func(n int) time.Duration
}

// New returns the handler over client.
func New(client KMS) *Handler { return &Handler{KMS: client} }

var _ customresource.Handler = (*Handler)(nil)

// Create adds the statements to the key policy. Before its first write it
// records the rollback id (see the package doc) as the physical id of a
// failed answer.
func (h *Handler) Create(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := decode(req.Properties)
	if err != nil {
		return customresource.Result{}, err
	}
	id := keypolicyspec.NewPhysicalID(p.KeyArn, req.StackID, req.LogicalResourceID)
	rollback := func(before *document) string {
		keep := before.holds(p.Statements)
		if len(keep) > 0 {
			_, adopted := keypolicyspec.RollbackID{Keep: keep}.Split(p.Statements)
			customresource.Logger(ctx).Info("adopting statements already in the key policy with the same content; the rollback of this create, if it fails, leaves them", "keyArn", p.KeyArn, "sids", adopted)
		}
		return keypolicyspec.RollbackID{PhysicalID: id, Keep: keep}.String()
	}
	return h.put(ctx, req, p, change{upsert: p.Statements}, rollback)
}

// Update replaces this resource's statements (see the package doc).
func (h *Handler) Update(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := decode(req.Properties)
	if err != nil {
		return customresource.Result{}, err
	}
	id, ok := keypolicyspec.ParsePhysicalID(req.PhysicalResourceID)
	if !ok || id.KeyArn != p.KeyArn {
		customresource.Logger(ctx).Info("the key changed; adding the statements to the new key (CloudFormation then deletes the old resource, which removes them from the old key)", "oldPhysicalResourceId", req.PhysicalResourceID, "keyArn", p.KeyArn)
		return h.put(ctx, req, p, change{upsert: p.Statements}, nil)
	}
	c := change{upsert: p.Statements, owned: map[string]bool{}}
	if old, err := keypolicyspec.Decode(req.OldProperties); err == nil {
		for _, s := range old.Statements {
			c.owned[s.Sid] = true
			c.remove = append(c.remove, s.Sid)
		}
	} else {
		customresource.Logger(ctx).Warn("old properties are not valid; only adding the new statements", "error", err.Error())
	}
	return h.put(ctx, req, p, c, nil)
}

// Delete removes the statements' Sids from the key the physical id names,
// except those a rollback id keeps.
func (h *Handler) Delete(ctx context.Context, req customresource.Request) error {
	log := customresource.Logger(ctx)
	id, ok := keypolicyspec.ParseRollbackID(req.PhysicalResourceID)
	if !ok {
		log.Info("physical id does not name a key; nothing to delete", "physicalResourceId", req.PhysicalResourceID)
		return nil
	}
	p, err := keypolicyspec.Decode(req.Properties)
	if err != nil {
		log.Warn("properties are not valid; cannot tell which statements to remove, leaving the key policy alone", "keyArn", id.KeyArn, "error", err.Error())
		return nil
	}
	sids, kept := id.Split(p.Statements)
	if len(id.Keep) > 0 {
		log.Info("rollback of a failed create: leaving the statements it adopted (they were in the key policy before it), removing the others", "keyArn", id.KeyArn, "kept", kept, "removed", sids)
		if len(kept) < len(id.Keep) {
			log.Warn("the physical id keeps statements the properties do not have; ignoring those", "keep", id.Keep, "statements", len(p.Statements))
		}
	}
	if len(sids) == 0 {
		return nil
	}
	_, err = h.apply(ctx, id.KeyArn, change{remove: sids}, nil)
	switch {
	case err == nil:
		return nil
	case awserr.IsA[*types.NotFoundException](err):
		log.Warn("the key no longer exists; nothing to remove", "keyArn", id.KeyArn, "error", err.Error())
		return nil
	case awserr.IsA[*types.KMSInvalidStateException](err) || awserr.IsA[*types.DisabledException](err):
		log.Warn("the key is disabled or pending deletion; its policy was left as it is. If the key is enabled again, remove these statements by hand", "keyArn", id.KeyArn, "sids", sids, "error", err.Error())
		return nil
	}
	return fmt.Errorf("removing the statements %s from the policy of %s: %w (to give up on them, remove them from the key policy by hand and delete the stack again with --retain-resources %s)", quoteAll(sids), id.KeyArn, err, req.LogicalResourceID)
}

func decode(raw map[string]interface{}) (keypolicyspec.Properties, error) {
	p, err := keypolicyspec.Decode(raw)
	if err != nil {
		return p, fmt.Errorf("invalid %s properties: %s", keypolicyspec.ResourceType, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return p, nil
}

func (h *Handler) put(ctx context.Context, req customresource.Request, p keypolicyspec.Properties, c change, rollback func(before *document) string) (customresource.Result, error) {
	size, err := h.apply(ctx, p.KeyArn, c, rollback)
	if err != nil {
		return customresource.Result{}, fmt.Errorf("merging %d statements (%s) into the policy of %s: %w", len(p.Statements), quoteAll(keypolicyspec.Sids(p.Statements)), p.KeyArn, err)
	}
	id := keypolicyspec.NewPhysicalID(p.KeyArn, req.StackID, req.LogicalResourceID)
	return customresource.Result{
		PhysicalResourceID: id.String(),
		Data: map[string]interface{}{
			keypolicyspec.AttrKeyArn:      p.KeyArn,
			keypolicyspec.AttrPolicyBytes: size,
		},
	}, nil
}

// apply reads, merges, writes and verifies until the policy holds c, and
// returns the policy's size in bytes.
//
// rollback, when not nil (on Create), gives the physical id a failed Create
// answers once it may have written: apply calls it with the policy read in
// the round of the first write, before the merge, and records its id just
// before that first PutKeyPolicy. When KMS rejects that first write (a
// client error: nothing was written) the record is cleared again, so the
// Create fails with the request id.
func (h *Handler) apply(ctx context.Context, keyArn string, c change, rollback func(before *document) string) (int, error) {
	log := customresource.Logger(ctx).With("keyArn", keyArn)
	attempts := h.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	var lastDiff error
	wrote := false
	for n := 1; n <= attempts; n++ {
		if n > 1 {
			if err := sleep(ctx, h.backoff(n-1)); err != nil {
				return 0, err
			}
		}
		current, err := h.get(ctx, keyArn)
		if err != nil {
			return 0, err
		}
		doc, err := parseDocument(current)
		if err != nil {
			return 0, err
		}
		if doc.check(c) == nil {
			log.Info("the key policy already holds this resource's statements; no write", "attempt", n)
			return len(current), nil
		}
		failureID := ""
		if rollback != nil && !wrote {
			failureID = rollback(doc) // from the policy as read, before the merge
		}
		if err := doc.merge(c); err != nil {
			return 0, err
		}
		merged := doc.render()
		if len(merged) > keypolicyspec.MaxPolicyBytes {
			return 0, fmt.Errorf("the merged key policy would be %d bytes (%d of them this resource's statements); KMS accepts at most %d bytes. Remove statements from the key policy, or use NewOrganizationKeyAccess, whose statements keep a constant size for every account of an organization",
				len(merged), upsertBytes(c), keypolicyspec.MaxPolicyBytes)
		}
		if failureID != "" {
			customresource.FailurePhysicalID(ctx, failureID)
		}
		if err := h.write(ctx, keyArn, merged); err != nil {
			if failureID != "" && awserr.Rejected(err) {
				customresource.FailurePhysicalID(ctx, "")
			}
			return 0, err
		}
		wrote = true
		back, err := h.get(ctx, keyArn)
		if err != nil {
			return 0, err
		}
		backDoc, err := parseDocument(back)
		if err != nil {
			return 0, err
		}
		if lastDiff = backDoc.check(c); lastDiff == nil {
			log.Info("key policy written and verified", "attempt", n, "policyBytes", len(merged))
			return len(merged), nil
		}
		log.Warn("the key policy read back differs from what was written: another writer changed it; trying again", "attempt", n, "difference", lastDiff.Error())
	}
	return 0, fmt.Errorf("the key policy did not converge after %d read-merge-write-verify attempts: another writer keeps changing it (last difference: %v). Find that writer (CloudTrail PutKeyPolicy events on the key) and deploy again", attempts, lastDiff)
}

func (h *Handler) backoff(n int) time.Duration {
	if h.Backoff != nil {
		return h.Backoff(n)
	}
	return time.Duration(n) * time.Second
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func upsertBytes(c change) int {
	n := 0
	for _, s := range c.upsert {
		n += len(s.JSON) + 1
	}
	return n
}

// inRegion sends a call to the key's region: KMS serves a key only there.
func inRegion(keyArn string) func(*kms.Options) {
	return func(o *kms.Options) {
		if a, err := awsid.ParseKeyARN(keyArn); err == nil {
			o.Region = a.Region
		}
	}
}

const policyName = "default"

func (h *Handler) get(ctx context.Context, keyArn string) (string, error) {
	customresource.Waiting(ctx, "KMS GetKeyPolicy on "+keyArn, nil)
	out, err := h.KMS.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyArn), PolicyName: aws.String(policyName)}, inRegion(keyArn))
	if err != nil {
		return "", &apiError{op: "GetKeyPolicy", keyArn: keyArn, err: err}
	}
	return aws.ToString(out.Policy), nil
}

func (h *Handler) write(ctx context.Context, keyArn, policy string) error {
	customresource.Waiting(ctx, "KMS PutKeyPolicy on "+keyArn, nil)
	// BypassPolicyLockoutSafetyCheck stays false: KMS must keep refusing a
	// policy that would lock the key's administrators out.
	_, err := h.KMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyArn), PolicyName: aws.String(policyName), Policy: aws.String(policy)}, inRegion(keyArn))
	if err != nil {
		return &apiError{op: "PutKeyPolicy", keyArn: keyArn, err: err}
	}
	return nil
}

// apiError explains a KMS error with what a person can do about it.
type apiError struct {
	op, keyArn string
	err        error
}

func (e *apiError) Unwrap() error { return e.err }

func (e *apiError) Error() string {
	text := awserr.Text(e.err)
	account := ""
	if a, err := awsid.ParseKeyARN(e.keyArn); err == nil {
		account = a.Account
	}
	// KMS errors are matched by their modeled types; AccessDeniedException
	// is not in the KMS model (the SDK returns it as a GenericAPIError), so
	// it is matched by its code.
	switch {
	case awserr.Code(e.err) == "AccessDeniedException":
		return fmt.Sprintf("KMS %s: %s. This handler's role needs kms:GetKeyPolicy and kms:PutKeyPolicy on the key (the construct puts them in the role's policy), the key policy must let IAM policies of account %s apply (a statement with Principal arn:aws:iam::%s:root and kms:*, as in KMS's default policy) or name the role, and the handler must run in account %s: KMS allows PutKeyPolicy only in the key's own account", e.op, text, account, account, account)
	case awserr.IsA[*types.NotFoundException](e.err):
		return fmt.Sprintf("KMS %s: %s. The key %s does not exist: check the ARN and its region", e.op, text, e.keyArn)
	case awserr.IsA[*types.KMSInvalidStateException](e.err):
		return fmt.Sprintf("KMS %s: %s. The key is pending deletion or unavailable: cancel the deletion (aws kms cancel-key-deletion --key-id %s)", e.op, text, e.keyArn)
	case awserr.IsA[*types.MalformedPolicyDocumentException](e.err):
		return fmt.Sprintf("KMS %s: %s. KMS rejected the merged policy: a principal the statements name may not exist yet (KMS rejects a policy naming a role that does not exist), or a statement is not valid", e.op, text)
	}
	return fmt.Sprintf("KMS %s: %s", e.op, text)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// Package keypolicylifecycle implements the Custom::KmsKeyPolicyStatements
// resource: statements, identified by their Sids, kept in the policy of a
// KMS key that another team owns. It runs in the key's account (KMS does not
// allow PutKeyPolicy from another account).
//
// Every event reads the policy (GetKeyPolicy), merges by Sid, writes it
// (PutKeyPolicy) and reads it back to verify.
//
// Ownership is in the Sids: every statement the resource writes has a Sid
// ending with its stack's mark (keypolicyspec.SidSuffix, " [crossaccountami
// <8 hex>]"), which the handler recomputes from the event's StackId and
// checks against the properties' SidSuffix. A statement whose Sid lacks the
// mark (one applied by hand from CrossAccountEncryptedAmi's synth warning,
// another stack's, the key owner's) is never adopted, rewritten or removed:
// the marked copy sits beside a hand-applied one until a person removes
// that. A statement with a marked Sid is this resource's own wherever it
// came from (an earlier delivery of the same Create, a retried Create), so
// every Delete, the rollbacks' included, removes exactly the marked Sids of
// its properties and nothing that was there before the stack wrote it.
//
//   - Create adds the statements. A marked Sid already there with the same
//     content is kept (no write for it); with other content it is a
//     conflict and the Create fails before writing. Properties without a
//     SidSuffix, or with another stack's, fail the Create before any call.
//     Just before its first PutKeyPolicy the Create records its physical id
//     as the answer of a failure (the read-back fails, the policy does not
//     converge, the deadline passes during or after a write), so the
//     rollback Delete removes what it wrote. A Create that fails before any
//     write (invalid properties, a Sid conflict, the size limit, a failed
//     GetKeyPolicy, or KMS rejecting the first PutKeyPolicy with a client
//     error) answers the request id, whose Delete makes no call.
//   - Update on the same key removes the old properties' Sids that are no
//     longer wanted and replaces or adds the new ones, in one write per
//     round. CloudFormation's rollback Update does the reverse. A resource
//     created before marks existed (0.2: unmarked Sids in OldProperties)
//     migrates in its first Update: the marked statements replace the
//     unmarked ones it owned in the same write, so no version of the policy
//     lacks the access.
//   - Update to another key is a replacement: the statements go to the new
//     key under a new physical id, and CloudFormation's Delete of the old id
//     (after success) removes them from the old key. If that Update fails
//     after it may have written the new key's policy, it removes from the
//     new key the statements it wrote there (not those that were there
//     before it, with the same content) before it answers FAILED, with
//     CleanupReserve of its time kept for that: CloudFormation's rollback
//     Update only re-applies the old properties to the old key.
//   - Delete removes the properties' Sids from the key the physical id
//     names. A rollback id of 0.2 ("<physical id>/keep-<bitmap>") keeps the
//     statements its failed Create adopted. A physical id that names no key
//     (the request id of a Create that failed before writing) ends the
//     Delete without a call. Properties that cannot be decoded, or that
//     carry another stack's mark, fail the Delete: it cannot tell what to
//     remove, and the FAILED reason says how to remove the statements by
//     hand and to delete again with --retain-resources <logical id>. A key
//     that is gone, disabled or pending deletion ends the Delete
//     successfully with a warning. An access denial fails the Delete: the
//     statements give another account access to the key, and leaving them
//     behind silently is worse than a DELETE_FAILED that says which Sids to
//     remove by hand.
//
// Statements without one of this resource's Sids are never dropped,
// reordered or rewritten: they are written back as the exact bytes KMS
// returned, and so are the policy's other top-level fields. Every write
// compacts the whitespace between top-level fields and between statements.
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
	"github.com/crossaccountami/crossaccountami/internal/cleanupreserve"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

// KMS is the part of the KMS API the lifecycle uses; *kms.Client has it.
type KMS interface {
	GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
}

const (
	// DefaultAttempts bounds the read-merge-write-verify rounds of one event.
	DefaultAttempts = 5
	// DefaultCleanupReserve is the time a replacing Update keeps, out of
	// its deadline, to remove what it wrote on the new key when it fails:
	// one read-merge-write-verify round takes a few hundred milliseconds.
	DefaultCleanupReserve = 30 * time.Second
)

// Handler is the customresource.Handler of keypolicyspec.ResourceType.
type Handler struct {
	KMS KMS
	// Attempts bounds the read-merge-write-verify rounds. Default: DefaultAttempts.
	Attempts int
	// Backoff is the pause before round n+1 (n from 1). Default: n seconds.
	Backoff func(n int) time.Duration
	// CleanupReserve is kept for the cleanup after a failed replacing
	// Update. Default: DefaultCleanupReserve (at most a third of the time left).
	CleanupReserve time.Duration
}

// New returns the handler over client.
func New(client KMS) *Handler { return &Handler{KMS: client} }

var _ customresource.Handler = (*Handler)(nil)

// Create adds the statements to the key policy. Just before its first
// write it records its physical id as the answer of a failure.
func (h *Handler) Create(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := decode(req.Properties)
	if err == nil {
		err = checkMark(req, p, true)
	}
	if err != nil {
		return customresource.Result{}, err
	}
	id := keypolicyspec.NewPhysicalID(p.KeyArn, req.StackID, req.LogicalResourceID)
	res, _, err := h.put(ctx, req, p, change{upsert: p.Statements}, id.String(), nil)
	return res, err
}

// Update replaces this resource's statements (see the package doc).
func (h *Handler) Update(ctx context.Context, req customresource.Request) (customresource.Result, error) {
	p, err := decode(req.Properties)
	if err == nil {
		err = checkMark(req, p, false)
	}
	if err != nil {
		return customresource.Result{}, err
	}
	id, ok := keypolicyspec.ParsePhysicalID(req.PhysicalResourceID)
	if !ok || id.KeyArn != p.KeyArn {
		customresource.Logger(ctx).Info("the key changed; adding the statements to the new key (CloudFormation then deletes the old resource, which removes them from the old key)", "oldPhysicalResourceId", req.PhysicalResourceID, "keyArn", p.KeyArn)
		return h.replace(ctx, req, p)
	}
	c := change{upsert: p.Statements, owned: map[string]bool{}}
	if old, err := keypolicyspec.Decode(req.OldProperties); err == nil {
		// The old Sids are this resource's: marked ones, or the unmarked
		// ones a 0.2 resource owned, which this write replaces.
		for _, s := range old.Statements {
			c.owned[s.Sid] = true
			c.remove = append(c.remove, s.Sid)
		}
	} else {
		customresource.Logger(ctx).Warn("old properties are not valid; only adding the new statements", "error", err.Error())
	}
	res, _, err := h.put(ctx, req, p, c, "", nil)
	return res, err
}

// replace adds the statements to a new key. If that fails after it may
// have written, it removes them from the new key again before answering,
// under the time CleanupReserve kept: CloudFormation's rollback Update only
// re-applies the old properties to the old key, and nothing else would
// remove them.
func (h *Handler) replace(ctx context.Context, req customresource.Request, p keypolicyspec.Properties) (customresource.Result, error) {
	work, cancel := cleanupreserve.Keep(ctx, h.cleanupReserve())
	defer cancel()
	var before *document
	res, wrote, err := h.put(work, req, p, change{upsert: p.Statements}, "", func(d *document) { before = d })
	if err == nil || !wrote {
		return res, err
	}
	if work.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("gave up before the handler's deadline, keeping time to remove what was written: %w", err)
	}
	undo := ownedOnNewKey(p, before)
	customresource.Logger(ctx).Warn("the replacing update failed after writing the new key's policy; removing its statements from the new key", "keyArn", p.KeyArn, "sids", undo, "error", err.Error())
	if len(undo) == 0 {
		return customresource.Result{}, err
	}
	if _, _, undoErr := h.apply(ctx, p.KeyArn, change{remove: undo}, "", nil); undoErr != nil {
		return customresource.Result{}, fmt.Errorf("%w; then removing the statements it wrote on %s failed: %v. Remove the statements %s from that key's policy by hand (aws kms get-key-policy --key-id %s --policy-name default, then aws kms put-key-policy without them)",
			err, p.KeyArn, undoErr, quoteAll(undo), p.KeyArn)
	}
	return customresource.Result{}, fmt.Errorf("%w; the update removed the statements it wrote on %s (%s) before answering, so that the rollback leaves that key's policy as it was", err, p.KeyArn, quoteAll(undo))
}

// ownedOnNewKey lists the Sids a failed replacing Update removes from the
// new key: those it wrote, that is every Sid of p that was not there with
// the same content in the policy read before its first write. What was
// there before stays: the Update undoes its own writes and nothing else
// (should CloudFormation's rollback send the old properties as an Update
// to the new physical id, the old key already holds them, so a failure
// then removes nothing from it).
func ownedOnNewKey(p keypolicyspec.Properties, before *document) []string {
	if before == nil {
		return keypolicyspec.Sids(p.Statements)
	}
	remove, _ := keypolicyspec.RollbackID{Keep: before.holds(p.Statements)}.Split(p.Statements)
	return remove
}

func (h *Handler) cleanupReserve() time.Duration {
	if h.CleanupReserve > 0 {
		return h.CleanupReserve
	}
	return DefaultCleanupReserve
}

// checkMark refuses properties whose SidSuffix is not the mark of the
// event's stack, and, when required (Create), properties without one.
func checkMark(req customresource.Request, p keypolicyspec.Properties, required bool) error {
	if p.SidSuffix == "" {
		if required {
			return fmt.Errorf("invalid %s properties: %s: required, got none: every statement this resource writes carries the mark of its stack in its Sid, so that it never takes over a statement it did not write (the construct writes it; properties without one were written by crossaccountami 0.2)", keypolicyspec.ResourceType, keypolicyspec.PropSidSuffix)
		}
		return nil
	}
	want, err := keypolicyspec.SidSuffixOfStack(req.StackID)
	if err != nil {
		return err
	}
	if p.SidSuffix != want {
		return fmt.Errorf("%s: the stack %s marks its statements with %q, got %q: the template was synthesized for another stack name, account or region; deploy it as the stack it was synthesized for (the mark tells its statements from those of every other stack on the key)", keypolicyspec.PropSidSuffix, req.StackID, want, p.SidSuffix)
	}
	return nil
}

// Delete removes the statements' Sids from the key the physical id names,
// except those a 0.2 rollback id keeps.
func (h *Handler) Delete(ctx context.Context, req customresource.Request) error {
	log := customresource.Logger(ctx)
	id, ok := keypolicyspec.ParseRollbackID(req.PhysicalResourceID)
	if !ok {
		log.Info("physical id does not name a key; nothing to delete", "physicalResourceId", req.PhysicalResourceID)
		return nil
	}
	p, err := keypolicyspec.Decode(req.Properties)
	if err == nil {
		err = checkMark(req, p, false)
	}
	if err != nil {
		return cannotTell(req, id.KeyArn, err)
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
	_, _, err = h.apply(ctx, id.KeyArn, change{remove: sids}, "", nil)
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

// cannotTell is the failure of a Delete whose properties do not say which
// statements to remove: answering SUCCESS would leave another account's
// access in the key policy with nothing left to remove it.
func cannotTell(req customresource.Request, keyArn string, why error) error {
	region := ""
	if a, err := awsid.ParseKeyARN(keyArn); err == nil {
		region = " --region " + a.Region
	}
	which := "The statements this resource wrote"
	if want, err := keypolicyspec.SidSuffixOfStack(req.StackID); err == nil {
		which = fmt.Sprintf("The statements whose Sids end with %q (this stack's mark; for a resource created by crossaccountami 0.2, the Sids its template listed)", want)
	}
	return fmt.Errorf("cannot tell which statements to remove from the policy of %s: the properties are not valid (%s). %s may still give other accounts access to the key: read the policy (aws kms get-key-policy --key-id %s --policy-name default%s), remove them, write it back (aws kms put-key-policy --key-id %s --policy-name default --policy file://policy.json%s, never with --bypass-policy-lockout-safety-check), then delete the stack again with --retain-resources %s",
		keyArn, strings.ReplaceAll(why.Error(), "\n", "; "), which, keyArn, region, keyArn, region, req.LogicalResourceID)
}

func decode(raw map[string]interface{}) (keypolicyspec.Properties, error) {
	p, err := keypolicyspec.Decode(raw)
	if err != nil {
		return p, fmt.Errorf("invalid %s properties: %s", keypolicyspec.ResourceType, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return p, nil
}

// put applies c to p's key and answers the resource's physical id. wrote
// reports whether a PutKeyPolicy may have changed the policy (see apply).
func (h *Handler) put(ctx context.Context, req customresource.Request, p keypolicyspec.Properties, c change, failureID string, firstWrite func(before *document)) (res customresource.Result, wrote bool, err error) {
	size, wrote, err := h.apply(ctx, p.KeyArn, c, failureID, firstWrite)
	if err != nil {
		return customresource.Result{}, wrote, fmt.Errorf("merging %d statements (%s) into the policy of %s: %w", len(p.Statements), quoteAll(keypolicyspec.Sids(p.Statements)), p.KeyArn, err)
	}
	id := keypolicyspec.NewPhysicalID(p.KeyArn, req.StackID, req.LogicalResourceID)
	return customresource.Result{
		PhysicalResourceID: id.String(),
		Data: map[string]interface{}{
			keypolicyspec.AttrKeyArn:      p.KeyArn,
			keypolicyspec.AttrPolicyBytes: size,
		},
	}, true, nil
}

// apply reads, merges, writes and verifies until the policy holds c, and
// returns the policy's size in bytes. wrote reports whether a PutKeyPolicy
// was sent that KMS did not reject with a client error: the policy may have
// changed.
//
// failureID, when not empty (on Create), is recorded as the physical id a
// failed Create answers, just before the first PutKeyPolicy; when KMS
// rejects that first write (nothing was written) the record is cleared
// again, so the Create fails with the request id. firstWrite, when not nil,
// is called with the policy as read in the round of the first write, before
// the merge.
func (h *Handler) apply(ctx context.Context, keyArn string, c change, failureID string, firstWrite func(before *document)) (size int, wrote bool, err error) {
	log := customresource.Logger(ctx).With("keyArn", keyArn)
	attempts := h.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	var lastDiff error
	for n := 1; n <= attempts; n++ {
		if n > 1 {
			if err := sleep(ctx, h.backoff(n-1)); err != nil {
				return 0, wrote, err
			}
		}
		current, err := h.get(ctx, keyArn)
		if err != nil {
			return 0, wrote, err
		}
		doc, err := parseDocument(current)
		if err != nil {
			return 0, wrote, err
		}
		if doc.check(c) == nil {
			log.Info("the key policy already holds this resource's statements; no write", "attempt", n)
			return len(current), wrote, nil
		}
		first := !wrote
		if first && firstWrite != nil {
			firstWrite(doc.clone())
		}
		if err := doc.merge(c); err != nil {
			return 0, wrote, err
		}
		merged := doc.render()
		if len(merged) > keypolicyspec.MaxPolicyBytes {
			return 0, wrote, fmt.Errorf("the merged key policy would be %d bytes (%d of them this resource's statements); KMS accepts at most %d bytes. Remove statements from the key policy, or use NewOrganizationKeyAccess, whose statements keep a constant size for every account of an organization",
				len(merged), upsertBytes(c), keypolicyspec.MaxPolicyBytes)
		}
		if first && failureID != "" {
			customresource.FailurePhysicalID(ctx, failureID)
		}
		if err := h.write(ctx, keyArn, merged); err != nil {
			if awserr.Rejected(err) {
				if first && failureID != "" {
					customresource.FailurePhysicalID(ctx, "")
				}
				return 0, wrote, err
			}
			return 0, true, err
		}
		wrote = true
		back, err := h.get(ctx, keyArn)
		if err != nil {
			return 0, wrote, err
		}
		backDoc, err := parseDocument(back)
		if err != nil {
			return 0, wrote, err
		}
		if lastDiff = backDoc.check(c); lastDiff == nil {
			log.Info("key policy written and verified", "attempt", n, "policyBytes", len(merged))
			return len(merged), wrote, nil
		}
		log.Warn("the key policy read back differs from what was written: another writer changed it; trying again", "attempt", n, "difference", lastDiff.Error())
	}
	return 0, wrote, fmt.Errorf("the key policy did not converge after %d read-merge-write-verify attempts: another writer keeps changing it (last difference: %v). Find that writer (CloudTrail PutKeyPolicy events on the key) and deploy again", attempts, lastDiff)
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

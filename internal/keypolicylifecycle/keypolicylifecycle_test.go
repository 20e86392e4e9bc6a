package keypolicylifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/keypolicylifecycle"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/kmserr"
)

const (
	keyArn   = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	otherKey = "arn:aws:kms:us-east-1:111111111111:key/abcdabcd-12ab-34cd-56ef-1234567890ab"
	stackID  = "arn:aws:cloudformation:us-east-1:111111111111:stack/Source/11111111-2222-3333-4444-555555555555"
)

// foreign is a policy as KMS returns it: pretty-printed, with statements
// of the key's owner (one without a Sid) around which ours must fit.
const foreign = `{
  "Version" : "2012-10-17",
  "Id" : "key-consolepolicy-3",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : { "AWS" : "arn:aws:iam::111111111111:root" },
    "Action" : "kms:*",
    "Resource" : "*"
  }, {
    "Effect" : "Allow",
    "Principal" : { "AWS" : "arn:aws:iam::111111111111:role/Admin" },
    "Action" : [ "kms:Describe*", "kms:Put*" ],
    "Resource" : "*"
  }, {
    "Sid" : "Allow pipeline",
    "Effect" : "Allow",
    "Principal" : { "AWS" : "arn:aws:iam::111111111111:role/ImageBuilder" },
    "Action" : [ "kms:Encrypt", "kms:GenerateDataKey*" ],
    "Resource" : "*"
  } ]
}`

// fakeKMS keeps one policy per key. afterPut runs after each write (a
// writer that read the policy before our write and writes after it).
type fakeKMS struct {
	policies map[string]string
	errs     map[string]error // by operation
	calls    []string
	puts     []*kms.PutKeyPolicyInput
	afterPut func(f *fakeKMS, n int)
	// stalled, when not nil, makes the first PutKeyPolicy store the policy
	// and then wait for its context to end, as a call in flight when the
	// handler's deadline passes; it is closed when that call returns. Later
	// calls answer at once.
	stalled     chan struct{}
	stalledDone bool
	// getErrOnce, when not nil, fails the next GetKeyPolicy only.
	getErrOnce error
}

func newFake() *fakeKMS {
	return &fakeKMS{policies: map[string]string{keyArn: foreign, otherKey: foreign}, errs: map[string]error{}}
}

func (f *fakeKMS) GetKeyPolicy(_ context.Context, in *kms.GetKeyPolicyInput, _ ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	f.calls = append(f.calls, "GetKeyPolicy")
	if err := f.getErrOnce; err != nil {
		f.getErrOnce = nil
		return nil, err
	}
	if err := f.errs["GetKeyPolicy"]; err != nil {
		return nil, err
	}
	p, ok := f.policies[aws.ToString(in.KeyId)]
	if !ok {
		return nil, apiErr("NotFoundException", "Key '"+aws.ToString(in.KeyId)+"' does not exist")
	}
	return &kms.GetKeyPolicyOutput{Policy: aws.String(p), PolicyName: aws.String("default")}, nil
}

func (f *fakeKMS) PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, _ ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	f.calls = append(f.calls, "PutKeyPolicy")
	f.puts = append(f.puts, in)
	if err := f.errs["PutKeyPolicy"]; err != nil {
		return nil, err
	}
	f.policies[aws.ToString(in.KeyId)] = aws.ToString(in.Policy)
	if f.stalled != nil && !f.stalledDone {
		f.stalledDone = true
		defer close(f.stalled)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.afterPut != nil {
		f.afterPut(f, len(f.puts))
	}
	return &kms.PutKeyPolicyOutput{}, nil
}

// apiErr is a KMS error as the SDK returns it: the modeled type for a code
// the KMS model declares, else a GenericAPIError (AccessDeniedException).
func apiErr(code, msg string) error {
	if modeled, ok := kmserr.Modeled(code, msg); ok {
		return modeled
	}
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

func stmt(sid, account string) string {
	return fmt.Sprintf(`{"Sid":%q,"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":["kms:Decrypt"],"Resource":"*"}`, sid, account)
}

// mark is the SidSuffix of the stack stackID names (account 111111111111,
// us-east-1, stack "Source"): the first 8 hex digits of
// sha256("111111111111\x00us-east-1\x00Source").
const mark = " [crossaccountami 7cdacd29]"

// mine is a statement of this resource: its Sid carries the stack's mark.
func mine(sid, account string) string { return stmt(sid+mark, account) }

// props are the properties the construct writes: marked statements and the mark.
func props(key string, stmts ...string) map[string]interface{} {
	p := legacyProps(key, stmts...)
	p["SidSuffix"] = mark
	return p
}

// legacyProps are properties written before marks existed (0.2): no SidSuffix.
func legacyProps(key string, stmts ...string) map[string]interface{} {
	return map[string]interface{}{
		"ServiceToken": "arn:aws:lambda:us-east-1:111111111111:function:f",
		"KeyArn":       key,
		"Statements":   "[" + strings.Join(stmts, ",") + "]",
	}
}

func handler(f *fakeKMS) *keypolicylifecycle.Handler {
	h := keypolicylifecycle.New(f)
	h.Backoff = func(int) time.Duration { return 0 }
	return h
}

func req(rt cfn.RequestType, physical string, p, old map[string]interface{}) customresource.Request {
	return customresource.Request{RequestType: rt, ResourceType: keypolicyspec.ResourceType, StackID: stackID, RequestID: "r", LogicalResourceID: "KeyPolicy", PhysicalResourceID: physical, Properties: p, OldProperties: old}
}

// rawStatements returns the statements of a policy as the exact bytes of
// each, in order, and the top-level keys in order.
func rawStatements(t *testing.T, policy string) (stmts []string, keys []string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(policy))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		tok, _ := dec.Token()
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if tok == "Statement" {
			var items []json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				stmts = append(stmts, string(it))
			}
		}
	}
	return stmts, keys
}

func sids(t *testing.T, policy string) []string {
	stmts, _ := rawStatements(t, policy)
	var out []string
	for _, s := range stmts {
		var h struct{ Sid string }
		_ = json.Unmarshal([]byte(s), &h)
		out = append(out, h.Sid)
	}
	return out
}

func TestCreateKeepsForeignStatementsByteForByte(t *testing.T) {
	// GIVEN a key whose policy has three statements of its owner
	f := newFake()
	before, beforeKeys := rawStatements(t, foreign)

	// WHEN the resource is created with two statements
	res, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, mine("A", "222222222222"), mine("B", "333333333333")), nil))
	if err != nil {
		t.Fatal(err)
	}

	// THEN the owner's statements are there, first, in order, byte for byte,
	// and ours follow
	after, afterKeys := rawStatements(t, f.policies[keyArn])
	if strings.Join(beforeKeys, ",") != strings.Join(afterKeys, ",") {
		t.Errorf("top-level keys %v, want %v", afterKeys, beforeKeys)
	}
	if len(after) != 5 {
		t.Fatalf("%d statements: %s", len(after), f.policies[keyArn])
	}
	for i := range before {
		if after[i] != before[i] {
			t.Errorf("foreign statement %d rewritten:\n got %s\nwant %s", i, after[i], before[i])
		}
	}
	if after[3] != mine("A", "222222222222") || after[4] != mine("B", "333333333333") {
		t.Errorf("our statements: %s / %s", after[3], after[4])
	}
	// AND the answer names the key and the policy size; the calls are read, write, read back
	id, ok := keypolicyspec.ParsePhysicalID(res.PhysicalResourceID)
	if !ok || id.KeyArn != keyArn || res.Data["PolicyBytes"] != len(f.policies[keyArn]) {
		t.Errorf("result %+v", res)
	}
	if got := strings.Join(f.calls, ","); got != "GetKeyPolicy,PutKeyPolicy,GetKeyPolicy" {
		t.Errorf("calls %s", got)
	}
	if f.puts[0].BypassPolicyLockoutSafetyCheck {
		t.Error("BypassPolicyLockoutSafetyCheck set")
	}
}

// A statement with this resource's marked Sid is its own: the same content
// is kept without a write (a duplicate delivery, a retried Create), other
// content is a conflict. A statement with the unmarked Sid, as the synth
// warning prints it and a person applied it, is not this resource's: it is
// neither adopted nor rewritten, and the marked copy goes beside it.
func TestCreateAdoptsIdenticalAndRefusesDifferentStatements(t *testing.T) {
	handApplied := `{"Sid" : "A", "Effect" : "Allow", "Principal" : {"AWS" : "arn:aws:iam::222222222222:root"}, "Action" : ["kms:Decrypt"], "Resource" : "*"}`
	for _, tc := range []struct {
		name     string
		existing string
		wantErr  string
		want     string // the policy after; "" for unchanged
	}{
		{"our marked statement, already there", `{"Sid" : "A` + mark + `", "Effect" : "Allow", "Principal" : {"AWS" : "arn:aws:iam::222222222222:root"}, "Action" : ["kms:Decrypt"], "Resource" : "*"}`, "", ""},
		{"other content under our marked Sid", mine("A", "999999999999"), `Sid "A` + mark + `" and other content`, ""},
		{"the same statement applied by hand, unmarked", handApplied, "",
			`{"Version":"2012-10-17","Statement":[` + stmt("Owner", "111111111111") + `,` + handApplied + `,` + mine("A", "222222222222") + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.policies[keyArn] = `{"Version":"2012-10-17","Statement":[` + stmt("Owner", "111111111111") + `,` + tc.existing + `]}`
			want := tc.want
			if want == "" {
				want = f.policies[keyArn]
			}
			_, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, mine("A", "222222222222")), nil))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if f.policies[keyArn] != want {
				t.Errorf("policy (%d puts)\n%s\nwant\n%s", len(f.puts), f.policies[keyArn], want)
			}
		})
	}
}

func TestUpdateReplacesOnlyItsOwnSids(t *testing.T) {
	// GIVEN the resource created with A and B, and a statement of the owner added after it
	f := newFake()
	h := handler(f)
	oldProps := props(keyArn, mine("A", "222222222222"), mine("B", "333333333333"))
	res, err := h.Create(context.Background(), req(cfn.RequestCreate, "", oldProps, nil))
	if err != nil {
		t.Fatal(err)
	}
	f.policies[keyArn] = strings.TrimSuffix(strings.TrimSpace(f.policies[keyArn]), "]}") + `,` + stmt("Owner later", "111111111111") + `]}`
	before, _ := rawStatements(t, f.policies[keyArn])

	// WHEN it is updated: A changes, B goes, C comes
	newProps := props(keyArn, mine("A", "444444444444"), mine("C", "555555555555"))
	res2, err := h.Update(context.Background(), req(cfn.RequestUpdate, res.PhysicalResourceID, newProps, oldProps))
	if err != nil {
		t.Fatal(err)
	}

	// THEN A is replaced in place, B removed, C appended; the others unchanged
	after, _ := rawStatements(t, f.policies[keyArn])
	want := []string{before[0], before[1], before[2], mine("A", "444444444444"), before[5], mine("C", "555555555555")}
	if strings.Join(after, "\n") != strings.Join(want, "\n") {
		t.Errorf("statements\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(want, "\n"))
	}
	if res2.PhysicalResourceID != res.PhysicalResourceID {
		t.Errorf("physical id changed on the same key: %s -> %s", res.PhysicalResourceID, res2.PhysicalResourceID)
	}
}

func TestUpdateToAnotherKeyIsAReplacement(t *testing.T) {
	f := newFake()
	h := handler(f)
	oldProps := props(keyArn, mine("A", "222222222222"))
	res, _ := h.Create(context.Background(), req(cfn.RequestCreate, "", oldProps, nil))
	withA := f.policies[keyArn]

	newProps := props(otherKey, mine("A", "222222222222"))
	res2, err := h.Update(context.Background(), req(cfn.RequestUpdate, res.PhysicalResourceID, newProps, oldProps))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := keypolicyspec.ParsePhysicalID(res2.PhysicalResourceID); id.KeyArn != otherKey {
		t.Errorf("new physical id %s", res2.PhysicalResourceID)
	}
	if f.policies[keyArn] != withA || !strings.Contains(f.policies[otherKey], `"Sid":"A`+mark+`"`) {
		t.Errorf("old key %s\nnew key %s", f.policies[keyArn], f.policies[otherKey])
	}
	// CloudFormation then deletes the old resource: A leaves the old key only.
	if err := h.Delete(context.Background(), req(cfn.RequestDelete, res.PhysicalResourceID, oldProps, nil)); err != nil {
		t.Fatal(err)
	}
	if f.policies[keyArn] == withA || !strings.Contains(f.policies[otherKey], `"Sid":"A`+mark+`"`) {
		t.Errorf("after delete: old key %s\nnew key %s", f.policies[keyArn], f.policies[otherKey])
	}
}

func TestDeleteRemovesOnlyItsOwnSids(t *testing.T) {
	f := newFake()
	h := handler(f)
	p := props(keyArn, mine("A", "222222222222"))
	res, _ := h.Create(context.Background(), req(cfn.RequestCreate, "", p, nil))
	if err := h.Delete(context.Background(), req(cfn.RequestDelete, res.PhysicalResourceID, p, nil)); err != nil {
		t.Fatal(err)
	}
	before, _ := rawStatements(t, foreign)
	after, _ := rawStatements(t, f.policies[keyArn])
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("after delete\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
}

func TestDeleteOutcomes(t *testing.T) {
	p := props(keyArn, mine("A", "222222222222"))
	id := keypolicyspec.NewPhysicalID(keyArn, stackID, "KeyPolicy").String()
	for _, tc := range []struct {
		name     string
		physical string
		getErr   error
		putErr   error
		wantErr  string
	}{
		{"failed create's request id", "r", nil, nil, ""},
		{"key gone", id, apiErr("NotFoundException", "gone"), nil, ""},
		{"pending deletion", id, nil, apiErr("KMSInvalidStateException", "pending deletion"), ""},
		{"disabled", id, nil, apiErr("DisabledException", "disabled"), ""},
		{"access denied", id, apiErr("AccessDeniedException", "no"), nil, `removing the statements "A` + mark + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.policies[keyArn] = `{"Statement":[` + mine("A", "222222222222") + `]}`
			f.errs["GetKeyPolicy"], f.errs["PutKeyPolicy"] = tc.getErr, tc.putErr
			err := handler(f).Delete(context.Background(), req(cfn.RequestDelete, tc.physical, p, nil))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--retain-resources KeyPolicy")) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestConcurrentWriter(t *testing.T) {
	const writerStmt = `{"Sid":"Writer","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/Other"},"Action":"kms:Decrypt","Resource":"*"}`
	t.Run("writes after us from a read before ours: retried until ours stay", func(t *testing.T) {
		// GIVEN a writer that read the policy before our write and writes its
		// own version (with its statement, without ours) right after our first write
		f := newFake()
		f.afterPut = func(f *fakeKMS, n int) {
			if n == 1 {
				f.policies[keyArn] = strings.TrimSuffix(foreign, "]\n}") + ", " + writerStmt + " ]\n}"
			}
		}
		// WHEN the resource is created
		_, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, mine("A", "222222222222")), nil))
		// THEN the handler saw the difference, merged again and both statements are there
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(sids(t, f.policies[keyArn]), ","); got != "Enable IAM User Permissions,,Allow pipeline,Writer,A"+mark {
			t.Errorf("Sids %s", got)
		}
		if got := strings.Join(f.calls, ","); got != "GetKeyPolicy,PutKeyPolicy,GetKeyPolicy,GetKeyPolicy,PutKeyPolicy,GetKeyPolicy" {
			t.Errorf("calls %s", got)
		}
	})
	t.Run("a writer that never stops: bounded, clear failure", func(t *testing.T) {
		f := newFake()
		f.afterPut = func(f *fakeKMS, n int) { f.policies[keyArn] = foreign }
		_, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, mine("A", "222222222222")), nil))
		if err == nil || !strings.Contains(err.Error(), "did not converge after 5 read-merge-write-verify attempts") || !strings.Contains(err.Error(), `"A`+mark+`" is missing`) {
			t.Errorf("error %v", err)
		}
		if len(f.puts) != keypolicylifecycle.DefaultAttempts {
			t.Errorf("%d writes, want %d", len(f.puts), keypolicylifecycle.DefaultAttempts)
		}
	})
}

func TestPolicySizeLimit(t *testing.T) {
	// GIVEN a key policy of about 31 KB
	f := newFake()
	var big []string
	for i := 0; i < 250; i++ {
		big = append(big, stmt(fmt.Sprintf("Owner %03d", i), "111111111111"))
	}
	f.policies[keyArn] = `{"Version":"2012-10-17","Statement":[` + strings.Join(big, ",") + `]}`
	before := f.policies[keyArn]
	// WHEN the resource adds statements that take it over 32 KB
	var ours []string
	for i := 0; i < 20; i++ {
		ours = append(ours, mine(fmt.Sprintf("Mine %02d", i), "222222222222"))
	}
	_, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, ours...), nil))
	// THEN it fails before writing, saying how large the policy would be
	wantSize := len(strings.TrimSuffix(before, "]}")) + len(strings.Join(ours, ",")) + 1 + len("]}")
	want := fmt.Sprintf("the merged key policy would be %d bytes", wantSize)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "at most 32768 bytes") {
		t.Errorf("error %v, want %q", err, want)
	}
	if len(f.puts) != 0 || f.policies[keyArn] != before {
		t.Error("the policy was written")
	}
}

func TestCreateErrorsExplain(t *testing.T) {
	for _, tc := range []struct {
		code string
		want string
	}{
		{"AccessDeniedException", "KMS allows PutKeyPolicy only in the key's own account"},
		{"MalformedPolicyDocumentException", "may not exist yet"},
		{"NotFoundException", "does not exist"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f := newFake()
			f.errs["PutKeyPolicy"] = apiErr(tc.code, "msg")
			_, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, mine("A", "222222222222")), nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.code+": msg") || !strings.Contains(err.Error(), keyArn) {
				t.Errorf("error %v", err)
			}
		})
	}
}

// TestReadBackAsKMSMayRewriteIt: KMS may return a statement's lists in
// another order and an account id principal as the account's ARN (IAM:
// "the service might convert it to the principal ARN"); the statements of
// an account list (KeyPolicyStyle_ACCOUNTS) are still this resource's, so
// the write verifies at once and a retried Create writes nothing.
func TestReadBackAsKMSMayRewriteIt(t *testing.T) {
	// GIVEN a KMS that stores what it is given rewritten: each account id
	// principal as its ARN, the lists reversed
	f := newFake()
	accounts := fmt.Sprintf(`{"Sid":%q,"Effect":"Allow","Principal":{"AWS":["222222222222","333333333333","444444444444"]},"Action":["kms:CreateGrant"],"Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/crossaccountami/*"}}}`, "Accounts"+mark)
	rewritten := fmt.Sprintf(`{"Sid":%q,"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444444444444:root","arn:aws:iam::333333333333:root","arn:aws:iam::222222222222:root"]},"Action":"kms:CreateGrant","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/crossaccountami/*"}}}`, "Accounts"+mark)
	f.afterPut = func(f *fakeKMS, _ int) {
		f.policies[keyArn] = strings.Replace(f.policies[keyArn], accounts, rewritten, 1)
	}

	// WHEN the resource is created with the account list's statement
	if _, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, accounts), nil)); err != nil {
		t.Fatal(err)
	}
	// THEN the read-back holds it: one write
	if !strings.Contains(f.policies[keyArn], rewritten) {
		t.Fatalf("the fake did not rewrite the statement: %s", f.policies[keyArn])
	}
	if got := strings.Join(f.calls, ","); got != "GetKeyPolicy,PutKeyPolicy,GetKeyPolicy" {
		t.Errorf("calls %s, want one write verified at once", got)
	}
	// AND a retried Create finds it there and writes nothing
	f.calls = nil
	if _, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, accounts), nil)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, ","); got != "GetKeyPolicy" {
		t.Errorf("a retried Create made calls %s, want only the read", got)
	}
	// AND another statement under the Sid (another account) is still other content
	other := strings.Replace(accounts, "444444444444", "555555555555", 1)
	if _, err := handler(f).Create(context.Background(), req(cfn.RequestCreate, "", props(keyArn, other), nil)); err == nil {
		t.Error("a statement with another account under the same Sid was taken as the same")
	}
}

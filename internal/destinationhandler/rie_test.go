package destinationhandler_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
	"github.com/crossaccountami/crossaccountami/internal/testenv/fakekms"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
	"github.com/crossaccountami/crossaccountami/internal/testenv/rie"
)

func underRIE(e *rie.Emulator) invoker {
	return func(t *testing.T, payload []byte) []byte {
		t.Helper()
		return e.MustInvoke(t, payload)
	}
}

// TestBootstrapUnderRIE runs the same event sequences as the in-process
// test through the real bootstrap binary under the Lambda Runtime Interface
// Emulator, with KMS and IAM pointed at moto through the environment: the
// scheduled check's event included.
func TestBootstrapUnderRIE(t *testing.T) {
	bootstrap := rie.HostBootstrap(t, handlerbuild.DestinationHandler)
	m := moto.Start(t)
	proxy := m.CountingProxy(t)
	e := rie.Start(t, rie.Options{Bootstrap: bootstrap, Env: handlerEnv(proxy.URL), FunctionTimeout: rieFunctionTimeout})
	h := &harness{invoke: underRIE(e), cfn: cfnresponse.Start(t), proxy: proxy, kms: motoKMS(m), stacks: motoStacks(m), output: e.Log}

	t.Run("grant", func(t *testing.T) { grantSequence(t, h) })
	t.Run("rollback of a failed create", func(t *testing.T) { rollbackSequence(t, h) })
	// The check's metric lines are the bootstrap's stdout, as on Lambda.
	t.Run("scheduled check", func(t *testing.T) { healSequence(t, h) })
	t.Run("service-linked role", func(t *testing.T) { slrSequence(t, h) })
	// Each launcher's principal (issue 19), through the real bootstrap too.
	t.Run("other launchers' service-linked roles", func(t *testing.T) { otherSLRSequence(t, h) })
	t.Run("three launchers' grants", func(t *testing.T) { launcherGrantSequence(t, h) })
	t.Run("malformed", func(t *testing.T) { malformed(t, h) })
	t.Run("late create", func(t *testing.T) { lateCreate(t, h, e) })
	if t.Failed() {
		t.Logf("emulator and function output:\n%s", e.Log())
	}
}

// TestBootstrapAnswersBeforeTheLambdaTimeout points KMS at an endpoint that
// never answers: the bootstrap must still answer FAILED, once, before the
// emulator's function timeout.
func TestBootstrapAnswersBeforeTheLambdaTimeout(t *testing.T) {
	bootstrap := rie.HostBootstrap(t, handlerbuild.DestinationHandler)
	kmsSrv := fakekms.Start(t)
	kmsSrv.Inject("CreateGrant", fakekms.Fault{Hang: true})
	env := handlerEnv(kmsSrv.URL)
	e := rie.Start(t, rie.Options{Bootstrap: bootstrap, Env: env, FunctionTimeout: rieFunctionTimeout})
	proxy := &moto.Proxy{} // no AWS call is counted here
	h := &harness{invoke: underRIE(e), cfn: cfnresponse.Start(t), proxy: proxy}
	key := "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	kmsSrv.AddKey(key, fakekms.Enabled)

	a, _ := h.send(t, loadEvent(t, "grant-create.json"))

	want := "timed out waiting for KMS CreateGrant on " + key + " for " + slrARN
	// The grant may exist although CreateGrant never answered: the physical
	// id names the key and the grant name, for the rollback Delete to find it.
	pending, isPending := grantspec.ParsePendingID(a.PhysicalResourceId)
	if a.Status != "FAILED" || !strings.HasPrefix(a.Reason, want) || !isPending || pending.KeyArn != key {
		t.Errorf("answer %s, want FAILED %q...", a.Body, want)
	}
	if calls := kmsSrv.Calls(); len(calls) == 0 || calls[0] != "CreateGrant" {
		t.Errorf("KMS calls %v", calls)
	}
	if t.Failed() {
		t.Logf("emulator and function output:\n%s", e.Log())
	}
}

// TestBootstrapDeleteFailsWhileTheGrantStays runs the real bootstrap under
// the emulator against a KMS that denies the retirement: the Delete answers
// FAILED with the commands that remove the grant by hand, because the grant
// still gives the service-linked role access to the key. A grant that is
// gone makes the Delete succeed.
func TestBootstrapDeleteFailsWhileTheGrantStays(t *testing.T) {
	bootstrap := rie.HostBootstrap(t, handlerbuild.DestinationHandler)
	kmsSrv := fakekms.Start(t)
	e := rie.Start(t, rie.Options{Bootstrap: bootstrap, Env: handlerEnv(kmsSrv.URL), FunctionTimeout: rieFunctionTimeout})
	h := &harness{invoke: underRIE(e), cfn: cfnresponse.Start(t), proxy: &moto.Proxy{}}
	key := "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	kmsSrv.AddKey(key, fakekms.Enabled)
	kmsSrv.SetCaller(handlerRole)

	// GIVEN a grant the handler created, retirable by its role
	created, _ := h.send(t, loadEvent(t, "grant-create.json"))
	id := grantOf(t, created)
	del := loadEvent(t, "grant-delete.json").with("PhysicalResourceId", id.String())

	// WHEN KMS denies the retirement (the caller is not the retiring principal)
	kmsSrv.SetCaller("arn:aws:iam::123456789012:role/someone-else")
	a, _ := h.send(t, del)

	// THEN the Delete fails, says why and how to remove the grant, and the grant is still there
	for _, w := range []string{"KMS RetireGrant of grant " + id.GrantId, "AccessDeniedException", "aws kms revoke-grant --region us-east-1 --key-id " + key + " --grant-id " + id.GrantId, "--retain-resources AmiGrant"} {
		if a.Status != "FAILED" || !strings.Contains(a.Reason, w) {
			t.Errorf("answer %s, want FAILED containing %q", a.Body, w)
		}
	}
	if len(kmsSrv.Grants(key)) != 1 {
		t.Errorf("grants %v, want the grant kept", kmsSrv.Grants(key))
	}

	// WHEN the retirement is allowed again, the same Delete succeeds and the grant is gone
	kmsSrv.SetCaller(handlerRole)
	if a, _ := h.send(t, del); a.Status != "SUCCESS" || len(kmsSrv.Grants(key)) != 0 {
		t.Errorf("second delete %s, grants %v", a.Body, kmsSrv.Grants(key))
	}
	if t.Failed() {
		t.Logf("emulator and function output:\n%s", e.Log())
	}
}

// lateCreate sends a Create whose response URL expired before it arrived, as
// a throttled event that Lambda held for hours would: CloudFormation stopped
// waiting, and its rollback may have run already. The bootstrap fails the
// invocation naming the expiry, calls no AWS API, creates no grant and PUTs
// nothing.
func lateCreate(t *testing.T, h *harness, e *rie.Emulator) {
	key := newKey(t, h.kms)
	signed := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	create := loadEvent(t, "grant-create.json")
	create = create.with("ResourceProperties", create.props("ResourceProperties", "KeyArn", key),
		"ResponseURL", cfnresponse.PresignedURL(h.cfn.URL, signed, 2*time.Hour))
	payload, err := json.Marshal(create)
	if err != nil {
		t.Fatal(err)
	}
	h.cfn.Reset()
	h.proxy.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), rieFunctionTimeout+10*time.Second)
	defer cancel()

	out, err := e.Invoke(ctx, payload)

	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var fnErr struct{ ErrorMessage, ErrorType string }
	_ = json.Unmarshal(out, &fnErr)
	expiredAt := signed.Add(2 * time.Hour).UTC().Format(time.RFC3339)
	if fnErr.ErrorType != "ResponseURLExpiredError" || !strings.Contains(fnErr.ErrorMessage, "its response URL expired at "+expiredAt) {
		t.Errorf("the function answered %s, want a ResponseURLExpiredError naming %s", out, expiredAt)
	}
	if calls := h.proxy.Calls(); len(calls) != 0 {
		t.Errorf("AWS calls %v, want none", calls)
	}
	if got := h.grants(t, key); len(got) != 0 {
		t.Errorf("grants %v on the key, want none", got)
	}
	if a := h.cfn.Answers(); len(a) != 0 {
		t.Errorf("answers %q, want none", a)
	}
	if !strings.Contains(h.output(), `"msg":"response URL expired before the request arrived: not acting, not answering"`) {
		t.Errorf("the function's log lacks the refusal")
	}
}

package destinationhandler_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
	"github.com/crossaccountami/crossaccountami/internal/testenv/fakekms"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

// TestAgainstFakeKMS covers what moto does not do like KMS, through the
// router, the real SDK client and its retryer (LoadConfig), with KMS
// faked at the HTTP level.
func TestAgainstFakeKMS(t *testing.T) {
	const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	srv := fakekms.Start(t)
	srv.AddKey(key, fakekms.Enabled)
	h := &harness{invoke: inProcess(t, srv.URL), cfn: cfnresponse.Start(t), proxy: &moto.Proxy{}}
	create := loadEvent(t, "grant-create.json")
	del := loadEvent(t, "grant-delete.json")
	send := func(t *testing.T, ev event) (cfnresponse.Answer, []string) {
		t.Helper()
		srv.ResetCalls()
		a, _ := h.send(t, ev)
		return a, srv.Calls()
	}

	t.Run("a retried Create returns the same grant (Name)", func(t *testing.T) {
		a1, _ := send(t, create)
		a2, calls := send(t, create)
		expect(t, "retried create", a2, "SUCCESS", calls, []string{"CreateGrant"})
		if a1.PhysicalResourceId != a2.PhysicalResourceId || len(srv.Grants(key)) != 1 {
			t.Errorf("physical ids %s and %s, grants %v", a1.PhysicalResourceId, a2.PhysicalResourceId, srv.Grants(key))
		}
		if g := srv.Grants(key)[0]; g.Name != grantspec.DefaultName(create.str("StackId"), "AmiGrant") {
			t.Errorf("grant name %q", g.Name)
		}
		a, _ := send(t, del.with("PhysicalResourceId", a1.PhysicalResourceId))
		expect(t, "delete", a, "SUCCESS", nil, nil)
	})

	for _, tc := range []struct {
		code   string
		status int
	}{
		{"InvalidArnException", 400},
		{"ThrottlingException", 400},
		{"DependencyTimeoutException", 500},
		{"KMSInternalException", 500},
	} {
		t.Run(tc.code+" three times, then success", func(t *testing.T) {
			srv.Inject("CreateGrant", fakekms.Fault{Code: tc.code, Status: tc.status, Message: "not yet", Times: 3})
			// Throttling backs off from 1 s with full jitter: three retries
			// can take up to 7 s, so this case gets a Lambda timeout that
			// always leaves room for them.
			h := &harness{invoke: inProcessWithin(t, srv.URL, 3*inProcessMargin+10*time.Second), cfn: h.cfn, proxy: h.proxy}
			srv.ResetCalls()
			a, _ := h.send(t, create)
			calls := srv.Calls()
			expect(t, tc.code, a, "SUCCESS", calls, slices.Repeat([]string{"CreateGrant"}, 4))
			a, _ = send(t, del.with("PhysicalResourceId", a.PhysicalResourceId))
			expect(t, "delete", a, "SUCCESS", nil, nil)
		})
	}

	t.Run("InvalidArnException until the deadline", func(t *testing.T) {
		srv.Inject("CreateGrant", fakekms.Fault{Code: "InvalidArnException", Message: "ARN does not exist", Times: 1 << 30})
		a, calls := send(t, create)
		srv.ClearFaults()
		want := "timed out waiting for KMS CreateGrant on " + key + " for " + slrARN + ": last error: InvalidArnException: ARN does not exist. KMS does not know the grantee " + slrARN
		if a.Status != "FAILED" || !strings.HasPrefix(a.Reason, want) || len(calls) < 2 {
			t.Errorf("answer %s after %d calls, want FAILED %q...", a.Body, len(calls), want)
		}
	})

	t.Run("AccessDenied once (policies propagating), then success", func(t *testing.T) {
		srv.Inject("CreateGrant", fakekms.Fault{Code: "AccessDeniedException", Message: "not yet", Times: 1})
		a, calls := send(t, create)
		expect(t, "denied once", a, "SUCCESS", calls, []string{"CreateGrant", "CreateGrant"})
		a, _ = send(t, del.with("PhysicalResourceId", a.PhysicalResourceId))
		expect(t, "delete", a, "SUCCESS", nil, nil)
	})

	t.Run("AccessDenied until the deadline names both policies", func(t *testing.T) {
		srv.Inject("CreateGrant", fakekms.Fault{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/handler/x is not authorized to perform: kms:CreateGrant", Times: 1 << 30})
		a, calls := send(t, create)
		srv.ClearFaults()
		expect(t, "denied", a, "FAILED", nil, nil)
		for _, w := range []string{"timed out waiting for KMS CreateGrant", "assumed-role/handler/x", "the key policy of " + key, "kms:RetiringPrincipal " + handlerRole, "the IAM policy of " + handlerRole} {
			if !strings.Contains(a.Reason, w) {
				t.Errorf("Reason %q lacks %q", a.Reason, w)
			}
		}
		if len(calls) < 2 {
			t.Errorf("calls %v: a denial on a first deploy is retried", calls)
		}
	})

	foreign := del.with("ResourceProperties", del.props("ResourceProperties", "RetiringPrincipal", nil))
	for _, tc := range []struct {
		name    string
		setup   func() string // returns the physical id to delete
		del     event
		status  string
		want    []string
		wantMsg string
	}{
		{"grant already retired", func() string {
			id := createGrant(t, send, create)
			a, _ := send(t, del.with("PhysicalResourceId", id))
			expect(t, "first delete", a, "SUCCESS", nil, nil)
			return id
		}, del, "SUCCESS", []string{"RetireGrant", "ListRetirableGrants"}, ""},
		{"invalid grant id", func() string {
			return grantspec.PhysicalID{KeyArn: key, GrantId: "deadbeef"}.String()
		}, del, "SUCCESS", []string{"RetireGrant", "ListRetirableGrants"}, ""},
		{"key deleted", func() string {
			id := createGrant(t, send, create)
			srv.DeleteKey(key)
			return id
		}, del, "SUCCESS", []string{"RetireGrant", "ListRetirableGrants"}, ""},
		{"key pending deletion", func() string {
			id := createGrant(t, send, create)
			srv.SetKeyState(key, fakekms.PendingDeletion)
			return id
		}, del, "FAILED", []string{"RetireGrant"}, "back in force as soon as the key is enabled again"},
		{"key disabled", func() string {
			id := createGrant(t, send, create)
			srv.SetKeyState(key, fakekms.Disabled)
			return id
		}, del, "FAILED", []string{"RetireGrant"}, "aws kms retire-grant --region us-east-1 --key-id " + key},
		{"retire denied (the role is not the retiring principal)", func() string {
			id := createGrant(t, send, create)
			srv.SetCaller("arn:aws:iam::123456789012:role/someone-else")
			return id
		}, del, "FAILED", []string{"RetireGrant"}, "--retain-resources AmiGrant"},
		{"a grant the handler does not own is revoked", func() string {
			return createGrant(t, send, create.with("ResourceProperties", create.props("ResourceProperties", "RetiringPrincipal", nil)))
		}, foreign, "SUCCESS", []string{"RevokeGrant"}, ""},
		{"revoke denied", func() string {
			id := createGrant(t, send, create.with("ResourceProperties", create.props("ResourceProperties", "RetiringPrincipal", nil)))
			srv.Inject("RevokeGrant", fakekms.Fault{Code: "AccessDeniedException", Message: "not authorized", Times: 1})
			return id
		}, foreign, "FAILED", []string{"RevokeGrant"}, "no longer allows kms:RevokeGrant"},
	} {
		t.Run("Delete: "+tc.name, func(t *testing.T) {
			srv.AddKey(key, fakekms.Enabled)
			srv.SetCaller(handlerRole)
			id := tc.setup()
			a, calls := send(t, tc.del.with("PhysicalResourceId", id))
			expect(t, tc.name, a, tc.status, calls, tc.want)
			if !strings.Contains(a.Reason, tc.wantMsg) {
				t.Errorf("%s: Reason %q lacks %q", tc.name, a.Reason, tc.wantMsg)
			}
			srv.AddKey(key, fakekms.Enabled)
			srv.SetCaller(handlerRole)
		})
	}
}

func createGrant(t *testing.T, send func(*testing.T, event) (cfnresponse.Answer, []string), create event) string {
	t.Helper()
	a, _ := send(t, create)
	if a.Status != "SUCCESS" {
		t.Fatalf("create: %s", a.Body)
	}
	return a.PhysicalResourceId
}

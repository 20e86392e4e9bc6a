package sourcehandler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
	"github.com/crossaccountami/crossaccountami/internal/testenv/rie"
)

const rieFunctionTimeout = 24 * time.Second

func underRIE(e *rie.Emulator) invoker {
	return func(t *testing.T, payload []byte) {
		t.Helper()
		e.MustInvoke(t, payload)
	}
}

// TestBootstrapUnderRIE runs the same sequences through the real bootstrap
// (built by handlerbuild, for the host's architecture) under the Lambda
// Runtime Interface Emulator, with KMS and EC2 pointed at moto through the
// environment.
func TestBootstrapUnderRIE(t *testing.T) {
	bootstrap := rie.HostBootstrap(t, handlerbuild.SourceHandler)
	m := moto.Start(t)
	e := rie.Start(t, rie.Options{Bootstrap: bootstrap, Env: env(m.URL), FunctionTimeout: rieFunctionTimeout})
	h := newHarness(t, m, underRIE(e))

	t.Run("key policy", func(t *testing.T) { keyPolicySequence(t, h) })
	t.Run("AMI sharing", func(t *testing.T) { sharingSequence(t, h) })
	t.Run("unknown resource type", func(t *testing.T) {
		a := h.send(t, "Create", "Custom::KmsGrant", "", map[string]interface{}{"ServiceToken": "x"}, nil)
		if a.Status != "FAILED" || !strings.Contains(a.Reason, keypolicyspec.ResourceType) {
			t.Errorf("answer %s", a.Body)
		}
	})
	t.Run("no region: every event still answered", func(t *testing.T) {
		noRegion := env(m.URL)
		noRegion["AWS_REGION"], noRegion["AWS_DEFAULT_REGION"] = "", ""
		broken := newHarness(t, m, underRIE(rie.Start(t, rie.Options{Bootstrap: bootstrap, Env: noRegion, FunctionTimeout: rieFunctionTimeout})))
		a := broken.send(t, "Create", keypolicyspec.ResourceType, "", keyPolicyProps("arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000", statement("A", "222222222222")), nil)
		if a.Status != "FAILED" || !strings.Contains(a.Reason, "AWS_REGION is not set") {
			t.Errorf("answer %s", a.Body)
		}
	})
	if t.Failed() {
		t.Logf("emulator and function output:\n%s", e.Log())
	}
}

package copylifecycle

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// A hand-over's payload is read back as the same request and state, and is
// never taken for a CloudFormation event (no RequestType or ResponseURL at
// its top level).
func TestHandOverPayloadRoundTrip(t *testing.T) {
	h := newHarness(t)
	ev := h.event(cfn.RequestCreate, requestA, "", props(sourceA), nil)
	st := State{Token: "ca0123456789abcdef0123456789abcdef", ImageId: "ami-0123456789abcdef0", Deadline: time.Date(2026, 12, 2, 12, 59, 30, 0, time.UTC), Continuations: 2, FailedPhysicalID: "pending-copy/ca0123456789abcdef0123456789abcdef"}
	var payload []byte
	ic := InvokeContinuer{Invoke: func(_ context.Context, p []byte) error { payload = p; return nil }}
	if err := ic.Continue(context.Background(), Continuation{Kind: ContinuationKind, Event: ev, State: st}); err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		t.Fatal(err)
	}
	if _, ok := top["RequestType"]; ok {
		t.Errorf("the payload has a top-level RequestType: %s", payload)
	}
	if _, ok := top["ResponseURL"]; ok {
		t.Errorf("the payload has a top-level ResponseURL: %s", payload)
	}
	ends := time.Now()
	inv, err := DecodeInvocation(payload, ends)
	if err != nil {
		t.Fatal(err)
	}
	if inv.State == nil || *inv.State != st || inv.Event.RequestID != requestA || inv.Event.ResponseURL != ev.ResponseURL || !inv.Ends.Equal(ends) {
		t.Errorf("decoded %+v (state %+v)", inv, inv.State)
	}
	t.Logf("a hand-over's payload is %d bytes", len(payload))

	// CloudFormation's own event decodes without a state.
	raw, _ := json.Marshal(ev)
	if inv, err := DecodeInvocation(raw, ends); err != nil || inv.State != nil || inv.Event.RequestType != cfn.RequestCreate {
		t.Errorf("CloudFormation's event: %+v, %v", inv, err)
	}
	// A continuation without its state is refused.
	if _, err := DecodeInvocation([]byte(`{"crossaccountami":"copy-continuation","event":{}}`), ends); err == nil || !strings.Contains(err.Error(), "names no token") {
		t.Errorf("a continuation without state: %v", err)
	}
}

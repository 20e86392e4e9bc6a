package customresource_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// FitResponse cuts a long reason so that the whole body, Data included,
// stays below CloudFormation's limit, and refuses a body that is too long
// without any reason.
func TestFitResponse(t *testing.T) {
	ev := cfn.Event{RequestID: "r1", LogicalResourceID: "Copy", StackID: "arn:aws:cloudformation:eu-west-1:222222222222:stack/app/x"}
	r := cfn.NewResponse(&ev)
	r.Status, r.PhysicalResourceID = cfn.StatusSuccess, "ami-0123456789abcdef0/ca0123456789abcdef0123456789abcdef"
	r.Data = map[string]interface{}{"SnapshotIds": strings.Repeat("snap-0123456789abcdef0,", 80)}
	r.Reason = strings.Repeat("é<", 2000)
	if err := customresource.FitResponse(r); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(r)
	if len(body) >= customresource.MaxResponseBytes || len(body) < customresource.MaxResponseBytes-64 || !strings.HasSuffix(r.Reason, " [cut to fit the response; the full text is in the log]") {
		t.Errorf("body %d bytes, reason ends %q", len(body), r.Reason[max(0, len(r.Reason)-60):])
	}

	r.Data = map[string]interface{}{"SnapshotIds": strings.Repeat("snap-0123456789abcdef0,", 200)}
	r.Reason = "x"
	if err := customresource.FitResponse(r); err == nil || !strings.Contains(err.Error(), "without a reason") {
		t.Errorf("a Data too long: %v", err)
	}
}

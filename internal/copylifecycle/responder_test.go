package copylifecycle

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// The responder PUTs one body to the response URL, with a long reason cut
// below CloudFormation's limit.
func TestCFNResponderPutsOneBodyBelowTheLimit(t *testing.T) {
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			t.Errorf("method %s", r.Method)
		}
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
	}))
	defer srv.Close()
	ev := cfn.Event{RequestID: "r1", LogicalResourceID: "Copy", StackID: "arn:aws:cloudformation:eu-west-1:222222222222:stack/app/x", ResponseURL: srv.URL + "/answer"}

	err := CFNResponder{}.Respond(context.Background(), ev, Answer{Status: cfn.StatusFailed, PhysicalResourceID: "pending-copy/ca00", Reason: strings.Repeat("é", 5000)})
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 1 {
		t.Fatalf("%d PUTs", len(bodies))
	}
	if len(bodies[0]) >= customresource.MaxResponseBytes {
		t.Errorf("body is %d bytes", len(bodies[0]))
	}
	var got cfn.Response
	if err := json.Unmarshal([]byte(bodies[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != cfn.StatusFailed || got.PhysicalResourceID != "pending-copy/ca00" || got.RequestID != "r1" || !strings.HasSuffix(got.Reason, " [cut to fit the response; the full text is in the log]") {
		t.Errorf("response %+v", got)
	}
}

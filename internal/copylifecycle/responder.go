package copylifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// CFNResponder sends an answer as aws-lambda-go's cfn.Response does (a PUT
// of the JSON body to the pre-signed ResponseURL), with the reason cut so
// that the body stays below CloudFormation's limit
// (customresource.MaxResponseBytes); the full reason is in the log.
type CFNResponder struct{}

var _ Responder = CFNResponder{}

const cutNote = " [cut to fit the response; the full text is in the log]"

// Respond sends a for ev.
func (CFNResponder) Respond(_ context.Context, ev cfn.Event, a Answer) error {
	r := response(ev, a)
	if _, err := fit(r); err != nil {
		return err
	}
	return r.Send()
}

func response(ev cfn.Event, a Answer) *cfn.Response {
	r := cfn.NewResponse(&ev)
	r.Status, r.PhysicalResourceID, r.Data, r.Reason = a.Status, a.PhysicalResourceID, a.Data, a.Reason
	return r
}

// fit cuts r.Reason until r's body is below the limit, and returns the body.
func fit(r *cfn.Response) ([]byte, error) {
	for {
		body, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encoding the answer: %v", err)
		}
		over := len(body) - (customresource.MaxResponseBytes - 1)
		if over <= 0 {
			return body, nil
		}
		reason := strings.TrimSuffix(r.Reason, cutNote)
		if len(reason) == 0 {
			return nil, fmt.Errorf("the answer is %d bytes without a reason; CloudFormation accepts less than %d", len(body), customresource.MaxResponseBytes)
		}
		keep := max(len(reason)-over-len(cutNote), 0)
		for keep > 0 && !utf8.RuneStart(reason[keep]) {
			keep--
		}
		r.Reason = reason[:keep] + cutNote
	}
}

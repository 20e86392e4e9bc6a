package copylifecycle

import (
	"context"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// CFNResponder sends an answer as aws-lambda-go's cfn.Response does (a PUT
// of the JSON body to the pre-signed ResponseURL), with the reason cut
// (customresource.FitResponse, as the router cuts its own) so that the body
// stays below CloudFormation's limit; the full reason is in the log.
type CFNResponder struct{}

var _ Responder = CFNResponder{}

// Respond sends a for ev.
func (CFNResponder) Respond(_ context.Context, ev cfn.Event, a Answer) error {
	r := cfn.NewResponse(&ev)
	r.Status, r.PhysicalResourceID, r.Data, r.Reason = a.Status, a.PhysicalResourceID, a.Data, a.Reason
	if err := customresource.FitResponse(r); err != nil {
		return err
	}
	return r.Send()
}

// Package routertest runs one CloudFormation event through a
// customresource.Router, as the Lambda function does, for the lifecycle
// packages' tests: what they check is the answer CloudFormation would see,
// the physical id of a FAILED answer included.
package routertest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// Serve answers ev with h registered for resourceType, under a Lambda
// deadline of timeout (the router keeps a quarter of it as its margin), and
// returns the physical id and error of the answer. "" with an error means
// cfn.LambdaWrap answers with its fallback: the request id on Create, the
// event's physical id on Update and Delete.
func Serve(t testing.TB, resourceType string, h customresource.Handler, ev cfn.Event, timeout time.Duration) (string, error) {
	t.Helper()
	router := customresource.NewRouter()
	router.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	router.SafetyMargin = timeout / 4
	router.Handle(resourceType, h)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	id, _, err := router.Serve(ctx, ev)
	return id, err
}

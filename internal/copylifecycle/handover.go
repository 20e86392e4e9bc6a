package copylifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// AsyncInvoke invokes the function itself asynchronously with payload: in
// Lambda, lambda.Client.Invoke with InvocationType Event and the function's
// own ARN (AWS_LAMBDA_FUNCTION_NAME). It is a function, not the Lambda
// client, so that this package does not import the Lambda SDK.
type AsyncInvoke func(ctx context.Context, payload []byte) error

// InvokeContinuer hands a request over by invoking the function with the
// Continuation's JSON.
type InvokeContinuer struct{ Invoke AsyncInvoke }

var _ Continuer = InvokeContinuer{}

// Continue sends c.
func (ic InvokeContinuer) Continue(ctx context.Context, c Continuation) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding the continuation: %v", err)
	}
	return ic.Invoke(ctx, payload)
}

// DecodeInvocation reads what the function was invoked with: a
// continuation (its member "crossaccountami" is ContinuationKind) or
// CloudFormation's event. ends is the invocation's deadline.
func DecodeInvocation(raw json.RawMessage, ends time.Time) (Invocation, error) {
	var probe struct {
		Kind string `json:"crossaccountami"`
	}
	_ = json.Unmarshal(raw, &probe)
	if probe.Kind == ContinuationKind {
		c, err := DecodeContinuation(raw)
		if err != nil {
			return Invocation{}, err
		}
		return Invocation{Event: c.Event, State: &c.State, Ends: ends}, nil
	}
	var ev cfn.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Invocation{}, fmt.Errorf("neither a copy continuation nor a CloudFormation event: %v", err)
	}
	return Invocation{Event: ev, Ends: ends}, nil
}

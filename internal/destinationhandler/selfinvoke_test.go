package destinationhandler_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	lambdasvc "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/crossaccountami/crossaccountami/internal/destinationhandler"
)

// invokeFunc is a fake of the Lambda client's Invoke.
type invokeFunc func(in *lambdasvc.InvokeInput) (*lambdasvc.InvokeOutput, error)

func (f invokeFunc) Invoke(_ context.Context, in *lambdasvc.InvokeInput, _ ...func(*lambdasvc.Options)) (*lambdasvc.InvokeOutput, error) {
	return f(in)
}

func TestSelfInvoke(t *testing.T) {
	const arn = "arn:aws:lambda:eu-west-1:111122223333:function:dest-CopyHandler"
	withContext := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{InvokedFunctionArn: arn})
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		env      string
		status   int32
		err      error
		wantFn   string
		wantErr  string
		noInvoke bool
	}{
		{name: "the Lambda context's ARN", ctx: withContext, env: "other", status: 202, wantFn: arn},
		{name: "AWS_LAMBDA_FUNCTION_NAME without a context", ctx: context.Background(), env: "dest-CopyHandler", status: 202, wantFn: "dest-CopyHandler"},
		{name: "no name at all", ctx: context.Background(), wantErr: "AWS_LAMBDA_FUNCTION_NAME is not set", noInvoke: true},
		{name: "not queued", ctx: withContext, status: 200, wantFn: arn, wantErr: "of " + arn + " answered HTTP 200, expected 202 (queued)"},
		{name: "refused", ctx: withContext, err: errors.New("AccessDeniedException: no"), wantFn: arn, wantErr: "Lambda Invoke (InvocationType Event) of " + arn + " failed: AccessDeniedException: no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_LAMBDA_FUNCTION_NAME", tc.env)
			var got []*lambdasvc.InvokeInput
			invoke := destinationhandler.SelfInvoke(invokeFunc(func(in *lambdasvc.InvokeInput) (*lambdasvc.InvokeOutput, error) {
				got = append(got, in)
				if tc.err != nil {
					return nil, tc.err
				}
				return &lambdasvc.InvokeOutput{StatusCode: tc.status}, nil
			}))

			err := invoke(tc.ctx, []byte(`{"crossaccountami":"copy-continuation"}`))

			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if tc.noInvoke {
				if len(got) != 0 {
					t.Errorf("Invoke called %d times, want never", len(got))
				}
				return
			}
			if len(got) != 1 || aws.ToString(got[0].FunctionName) != tc.wantFn || got[0].InvocationType != "Event" || string(got[0].Payload) != `{"crossaccountami":"copy-continuation"}` {
				t.Errorf("Invoke inputs %+v, want one Event invocation of %s with the payload", got, tc.wantFn)
			}
		})
	}
}

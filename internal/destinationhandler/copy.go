package destinationhandler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	lambdasvc "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/copylifecycle"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// ContinuationKey is the member that marks a copy's hand-over payload
// ({"crossaccountami":"copy-continuation",...}), as grantspec.HealEventKey
// marks the scheduled check's event.
const ContinuationKey = "crossaccountami"

// RegisterCopy adds Custom::CrossAccountAmiCopy to router, served by m:
// CloudFormation's events and the hand-overs (copylifecycle.Continuation)
// by which one invocation passes a copy still being made to the next. m's
// Responder and Continuer are wrapped so that the router knows when the
// request is settled (answered or handed over): the router answers FAILED
// for a panic only before that.
func RegisterCopy(router *customresource.Router, m *copylifecycle.Machine) {
	settled := *m
	settled.Responder = settlingResponder{m.Responder}
	settled.Continuer = settlingContinuer{m.Continuer}
	serve := serveCopy(&settled)
	router.HandleSelfAnswering(copyspec.ResourceType, serve)
	router.HandleSelfAnsweringEvent(ContinuationKey, copylifecycle.ContinuationKind, continuationEvent, serve)
}

// continuationEvent is the CloudFormation event a hand-over carries, and
// the physical id of its FAILED answer: the state's (a Create's pending id,
// which names the copy's token for the Delete that follows).
func continuationEvent(raw json.RawMessage) (cfn.Event, string, error) {
	c, err := copylifecycle.DecodeContinuation(raw)
	return c.Event, c.State.FailedPhysicalID, err
}

// serveCopy runs one invocation of the machine: CloudFormation's delivery
// or a continuation (copylifecycle.DecodeInvocation tells them apart). The
// invocation ends at the Lambda deadline, the context's. Its result names
// what it did; an invocation that did nothing for its request (a late
// continuation) or whose answer could not be sent fails, so that it shows
// in the function's Errors metric.
func serveCopy(m *copylifecycle.Machine) customresource.SelfAnsweringHandler {
	return func(ctx context.Context, _ cfn.Event, raw json.RawMessage) (string, error) {
		// Lambda always sets a deadline; without one (outside Lambda) the
		// machine hands over at its first wait.
		ends, _ := ctx.Deadline()
		inv, err := copylifecycle.DecodeInvocation(raw, ends)
		if err != nil {
			return "", err
		}
		out := m.Run(ctx, inv)
		switch {
		case out.Answered != nil && out.RespondErr != nil:
			return "", fmt.Errorf("sending the %s answer (%s) failed: %w", out.Answered.Status, out.Answered.PhysicalResourceID, out.RespondErr)
		case out.Answered != nil:
			return fmt.Sprintf("answered %s (%s)", out.Answered.Status, out.Answered.PhysicalResourceID), nil
		case out.Continued != nil:
			return fmt.Sprintf("handed over to the next invocation (hand-over %d of at most %d)", out.Continued.State.Continuations, copylifecycle.MaxContinuations), nil
		default:
			return "", errors.New(out.Ignored)
		}
	}
}

// settlingResponder marks the request settled before the answer is sent:
// once the PUT may have reached CloudFormation, a second answer must not
// follow, not even for a panic.
type settlingResponder struct{ copylifecycle.Responder }

func (s settlingResponder) Respond(ctx context.Context, ev cfn.Event, a copylifecycle.Answer) error {
	customresource.Settled(ctx)
	return s.Responder.Respond(ctx, ev, a)
}

// settlingContinuer marks the request settled once the hand-over is made.
// A hand-over that failed is not: the machine then cleans up and answers
// FAILED itself, and a panic before that answer is answered by the router.
type settlingContinuer struct{ copylifecycle.Continuer }

func (s settlingContinuer) Continue(ctx context.Context, c copylifecycle.Continuation) error {
	if err := s.Continuer.Continue(ctx, c); err != nil {
		return err
	}
	customresource.Settled(ctx)
	return nil
}

// LambdaInvoker is the part of the Lambda API a hand-over uses;
// *lambda.Client (aws-sdk-go-v2/service/lambda) has it.
type LambdaInvoker interface {
	Invoke(ctx context.Context, in *lambdasvc.InvokeInput, optFns ...func(*lambdasvc.Options)) (*lambdasvc.InvokeOutput, error)
}

// SelfInvoke is the hand-over's copylifecycle.AsyncInvoke: an Invoke of
// the function itself with InvocationType Event, which Lambda queues and
// answers with status 202 ("Invoke",
// https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html; the 202 is
// in InvokeOutput.StatusCode's documentation). The same page says a queued
// event may be delivered more than once (the machine answers duplicates
// alike) and may be lost when the function cannot keep up with its queue:
// then nobody answers and CloudFormation stops waiting at ServiceTimeout.
// Its rollback removes the copy: a Create's rollback Delete (of the id
// CloudFormation makes up) by the copy's tags and definition, an Update's
// rollback Update as a copy of a request CloudFormation gave up on
// (copylifecycle's removeAbandoned), even when it became available in
// the meantime. The payload is about
// 1.2 KB (the hand-overs of TestCopyInProcess); the page's limit for an
// asynchronous invocation is 1 MB. The function invoked is the one this
// invocation runs as: the Lambda context's InvokedFunctionArn (as it was
// invoked, so the hand-over runs the same version), else
// AWS_LAMBDA_FUNCTION_NAME.
func SelfInvoke(client LambdaInvoker) copylifecycle.AsyncInvoke {
	return func(ctx context.Context, payload []byte) error {
		fn := ownFunction(ctx)
		if fn == "" {
			return errors.New("the function's own name is unknown: no Lambda context with InvokedFunctionArn, and AWS_LAMBDA_FUNCTION_NAME is not set")
		}
		out, err := client.Invoke(ctx, &lambdasvc.InvokeInput{
			FunctionName:   aws.String(fn),
			InvocationType: lambdatypes.InvocationTypeEvent,
			Payload:        payload,
		})
		if err != nil {
			return fmt.Errorf("Lambda Invoke (InvocationType Event) of %s failed: %s", fn, awserr.Text(err))
		}
		if out.StatusCode != http.StatusAccepted {
			return fmt.Errorf("Lambda Invoke (InvocationType Event) of %s answered HTTP %d, expected %d (queued)", fn, out.StatusCode, http.StatusAccepted)
		}
		return nil
	}
}

func ownFunction(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.InvokedFunctionArn != "" {
		return lc.InvokedFunctionArn
	}
	return os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
}

// newCopyMachine is the machine NewRouter registers: EC2 and Lambda
// clients, the CloudFormation responder and the wall clock, in the
// function's region (AWS_REGION, the stack's).
func newCopyMachine(ec2Client copylifecycle.EC2, invoker LambdaInvoker, region string, logger *slog.Logger) *copylifecycle.Machine {
	return &copylifecycle.Machine{
		EC2:       ec2Client,
		Continuer: copylifecycle.InvokeContinuer{Invoke: SelfInvoke(invoker)},
		Responder: copylifecycle.CFNResponder{},
		Clock:     copylifecycle.RealClock{},
		Region:    region,
		Logger:    logger,
	}
}

// failingContinuation answers a hand-over FAILED when the function cannot
// load its configuration (mainRouter): the copy cannot be looked at, and
// CloudFormation would otherwise wait until ServiceTimeout. The copy stays
// for the rollback: a Create's Delete of the pending id (the FAILED
// answer's) removes it by its token, an Update's rollback Update as the
// copy of a request CloudFormation gave up on.
func failingContinuation(loadErr error) customresource.SelfAnsweringHandler {
	return func(ctx context.Context, ev cfn.Event, raw json.RawMessage) (string, error) {
		c, err := copylifecycle.DecodeContinuation(raw)
		if err != nil {
			return "", err
		}
		if !time.Now().Before(c.State.Deadline) {
			return "", fmt.Errorf("continuation of the %s request %s arrived after its deadline %s: nothing answered", ev.RequestType, ev.RequestID, c.State.Deadline.UTC().Format(time.RFC3339))
		}
		customresource.Settled(ctx)
		a := copylifecycle.Answer{Status: cfn.StatusFailed, PhysicalResourceID: c.State.FailedPhysicalID,
			Reason: fmt.Sprintf("the handler could not load its AWS configuration to go on waiting for the copy %s: %v", c.State.ImageId, loadErr)}
		if err := (copylifecycle.CFNResponder{}).Respond(ctx, ev, a); err != nil {
			return "", err
		}
		return "answered FAILED", nil
	}
}

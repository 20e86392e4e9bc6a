// Package copylifecycle implements the Custom::CrossAccountAmiCopy
// resource: a copy, in the stack's account and region, of an AMI another
// account shared, encrypted with a key of the stack's account
// (ec2:CopyImage with Encrypted and KmsKeyId), answered to CloudFormation
// once the copy is available.
//
// A copy can take longer than one Lambda run (15 minutes at most), and
// CloudFormation waits for a custom resource up to its ServiceTimeout (one
// hour at most). So the resource is a state machine that a Lambda function
// drives one invocation at a time (Machine.Run):
//
//   - CloudFormation's Create, or an Update that replaces the copy, starts
//     the copy (CopyImage with the ClientToken copyspec.CopyToken and the
//     owner tags as TagSpecifications on the image and its snapshots) and
//     looks at it with DescribeImages every PollInterval.
//   - When the invocation is about to end, it hands the request over to the
//     next one (the Continuer, which invokes the same function
//     asynchronously with the event and the State), and answers nothing.
//     The next invocation goes on looking.
//   - The invocation that sees the copy available answers SUCCESS. One that
//     sees it failed, or reaches the request's deadline (ServiceTimeout
//     after CloudFormation sent the request, less the reserve kept to clean
//     up and answer), deregisters the copy and deletes its snapshots, then
//     answers FAILED. Every invocation either answers or hands over, never
//     both, so CloudFormation gets one answer (see Run for duplicates).
//   - Delete removes only images and snapshots that carry the resource's
//     stack id, logical id and copy token tags, and fails, naming what it
//     left, when it cannot.
//
// The machine talks to EC2, the Continuer, the Responder (which sends the
// answer to the pre-signed ResponseURL) and a Clock through small
// interfaces, so that tests drive it with fakes.
package copylifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

// EC2 is the part of the EC2 API the lifecycle uses; *ec2.Client has it.
type EC2 interface {
	CopyImage(ctx context.Context, in *ec2.CopyImageInput, optFns ...func(*ec2.Options)) (*ec2.CopyImageOutput, error)
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
}

// Continuer hands a request over to the next invocation of the function:
// in Lambda, an asynchronous Invoke (InvocationType Event) of the function
// itself with the Continuation as its payload. An error means the hand-over
// may not have happened; the machine then cleans up and answers FAILED.
type Continuer interface {
	Continue(ctx context.Context, c Continuation) error
}

// Responder sends the one answer of a request to its ResponseURL.
type Responder interface {
	Respond(ctx context.Context, ev cfn.Event, a Answer) error
}

// Clock is the machine's time: Now, and a Sleep that ends early (with the
// context's error) when ctx is done.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx is done.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Defaults of the Machine's durations.
const (
	// DefaultPollInterval: DescribeImages every 20 s is 180 calls in an
	// hour per copy (a light load on EC2's request throttling, which this
	// library has not measured), and an answer at most 20 s after the
	// copy is available.
	DefaultPollInterval = 20 * time.Second
	// DefaultContinueMargin is kept at the end of an invocation for the
	// asynchronous Invoke that hands over (one call, SDK retries included).
	DefaultContinueMargin = 45 * time.Second
	// DefaultCleanupReserve is kept before the request's deadline to
	// deregister the copy, delete its snapshots and answer.
	DefaultCleanupReserve = 60 * time.Second
	// DefaultAnswerMargin: the request's deadline is this long before
	// CloudFormation stops waiting, for the clocks' difference and the PUT.
	DefaultAnswerMargin = 30 * time.Second
	// DefaultMaxEventAge is how old a request may be when it arrives, for
	// a ResponseURL without a signing time (X-Amz-Date): the functions'
	// MaximumEventAgeInSeconds (constructs/internal/provider).
	DefaultMaxEventAge = 240 * time.Second
	// MaxContinuations bounds the hand-overs of one request. The function's
	// 600 s timeout (constructs/internal/provider's FunctionTimeout) waits
	// an hour in 7 invocations, 6 hand-overs
	// (TestAnHourOf600SecondInvocations); the bound catches a function whose
	// timeout is far too short, and stays below the chain of about 16
	// invocations after which Lambda's recursive loop detection may stop
	// the function (https://docs.aws.amazon.com/lambda/latest/dg/invocation-recursion.html).
	MaxContinuations = 12
)

// Machine drives copies. Its zero durations take the defaults.
type Machine struct {
	EC2       EC2
	Continuer Continuer
	Responder Responder
	Clock     Clock
	// Region is the stack's region: the copy's, and the source's when
	// SourceRegion is not set. Default: the region of the event's StackId.
	Region string

	PollInterval   time.Duration
	ContinueMargin time.Duration
	CleanupReserve time.Duration
	AnswerMargin   time.Duration
	MaxEventAge    time.Duration

	Logger *slog.Logger
}

// ContinuationKind marks a Continuation: the function's router sends an
// event whose member "crossaccountami" is this string to the machine
// (customresource.Router.HandleEvent), not to CloudFormation's handlers.
const ContinuationKind = "copy-continuation"

// Continuation is the payload of a hand-over: the CloudFormation event the
// request began with (its ResponseURL included, so the invocation that
// finishes can answer) and the State. Its top level has neither RequestType
// nor ResponseURL, so it is never taken for a CloudFormation event.
type Continuation struct {
	Kind  string    `json:"crossaccountami"`
	Event cfn.Event `json:"event"`
	State State     `json:"state"`
}

// DecodeContinuation reads a hand-over's payload.
func DecodeContinuation(raw json.RawMessage) (Continuation, error) {
	var c Continuation
	if err := json.Unmarshal(raw, &c); err != nil {
		return Continuation{}, fmt.Errorf("malformed copy continuation: %v", err)
	}
	if c.Kind != ContinuationKind {
		return Continuation{}, fmt.Errorf("not a copy continuation: crossaccountami is %q, expected %q", c.Kind, ContinuationKind)
	}
	if c.State.Token == "" || c.State.ImageId == "" || c.State.Deadline.IsZero() {
		return Continuation{}, fmt.Errorf("malformed copy continuation: its state names no token, image or deadline: %+v", c.State)
	}
	return c, nil
}

// State is what one request's invocations pass on.
type State struct {
	// Token is the copy's CopyImage ClientToken and TagCopyToken.
	Token string `json:"token"`
	// ImageId is the copy's image id, as CopyImage answered it.
	ImageId string `json:"imageId"`
	// Deadline is when the request must have answered: ServiceTimeout
	// after CloudFormation sent it, less AnswerMargin, and no later than
	// AnswerMargin before its ResponseURL expires. Fixed by the first
	// invocation; no invocation acts after it.
	Deadline time.Time `json:"deadline"`
	// Continuations counts the hand-overs so far.
	Continuations int `json:"continuations"`
	// Seen records that DescribeImages has shown the copy once. EC2 is
	// eventually consistent: just after CopyImage, DescribeImages may not
	// know the new image yet ("Eventual consistency in the Amazon EC2
	// API", https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html),
	// so a copy not found is taken for gone only once it has been seen.
	Seen bool `json:"seen,omitempty"`
	// FailedPhysicalID is the physical id of a FAILED answer: the pending
	// id of a Create (copyspec.PendingID), the old physical id of an Update.
	FailedPhysicalID string `json:"failedPhysicalId"`
}

// Answer is the one answer of a request.
type Answer struct {
	Status             cfn.StatusType
	PhysicalResourceID string
	Data               map[string]interface{}
	Reason             string
}

// Invocation is one run of the machine.
type Invocation struct {
	// Event is CloudFormation's event (the one the request began with, for
	// a continuation).
	Event cfn.Event
	// State is nil for CloudFormation's own delivery, and the state passed
	// on for a continuation.
	State *State
	// Ends is when this invocation must have returned: the Lambda
	// deadline (lambdacontext's, or ctx.Deadline()).
	Ends time.Time
}

// Outcome says what one invocation did; exactly one field is set.
type Outcome struct {
	// Answered is the answer sent to CloudFormation (Responder.Respond was called).
	Answered *Answer
	// Continued is the hand-over made (Continuer.Continue succeeded).
	Continued *Continuation
	// Ignored says why the invocation did nothing and answered nothing (a
	// continuation after the deadline, a request CloudFormation no longer
	// waits for).
	Ignored string
	// RespondErr is the Responder's error, when sending Answered failed.
	RespondErr error
}

func (m *Machine) poll() time.Duration { return orDefault(m.PollInterval, DefaultPollInterval) }
func (m *Machine) contMargin() time.Duration {
	return orDefault(m.ContinueMargin, DefaultContinueMargin)
}
func (m *Machine) reserve() time.Duration   { return orDefault(m.CleanupReserve, DefaultCleanupReserve) }
func (m *Machine) ansMargin() time.Duration { return orDefault(m.AnswerMargin, DefaultAnswerMargin) }
func (m *Machine) maxAge() time.Duration    { return orDefault(m.MaxEventAge, DefaultMaxEventAge) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (m *Machine) clock() Clock {
	if m.Clock == nil {
		return RealClock{}
	}
	return m.Clock
}

func (m *Machine) log() *slog.Logger {
	if m.Logger == nil {
		return slog.Default()
	}
	return m.Logger
}

// Run performs one invocation: CloudFormation's delivery of a Create,
// Update or Delete, or a continuation. It answers through the Responder or
// hands over through the Continuer (or, for a late event, neither) and
// says which in the Outcome.
//
// Duplicates. Lambda may deliver one asynchronous event twice, and a
// hand-over whose Invoke failed in doubt may still arrive. Two invocations
// of one request see the same copy, whose state only moves forward (pending
// to available or failed), and a SUCCESS needs the copy seen available,
// while a FAILED for the deadline needs it seen not available at the
// deadline: so duplicates answer alike (twice the same answer, never
// SUCCESS and FAILED). A duplicate of a Create repeats CopyImage with the
// same ClientToken after looking the copy up by its token tag: one copy.
func (m *Machine) Run(ctx context.Context, inv Invocation) Outcome {
	if inv.State != nil {
		return m.resume(ctx, inv)
	}
	switch inv.Event.RequestType {
	case cfn.RequestDelete:
		err := m.delete(ctx, inv.Event)
		if err != nil {
			return m.answer(ctx, inv.Event, failed(inv.Event.PhysicalResourceID, err.Error()))
		}
		return m.answer(ctx, inv.Event, Answer{Status: cfn.StatusSuccess, PhysicalResourceID: inv.Event.PhysicalResourceID})
	case cfn.RequestCreate, cfn.RequestUpdate:
		return m.begin(ctx, inv)
	default:
		return m.answer(ctx, inv.Event, failed(customresource.FallbackID(inv.Event), fmt.Sprintf("RequestType: expected Create, Update or Delete, got %q", inv.Event.RequestType)))
	}
}

// answer sends a and reports it.
func (m *Machine) answer(ctx context.Context, ev cfn.Event, a Answer) Outcome {
	if a.PhysicalResourceID == "" {
		a.PhysicalResourceID = customresource.FallbackID(ev)
	}
	level := slog.LevelInfo
	if a.Status != cfn.StatusSuccess {
		level = slog.LevelError
	}
	m.log().Log(ctx, level, "answer", "outcome", string(a.Status), "physicalResourceId", a.PhysicalResourceID, "reason", a.Reason,
		"requestType", string(ev.RequestType), "logicalResourceId", ev.LogicalResourceID, "requestId", ev.RequestID)
	err := m.Responder.Respond(ctx, ev, a)
	if err != nil {
		m.log().Error("sending the answer failed", "error", err.Error(), "requestId", ev.RequestID)
	}
	return Outcome{Answered: &a, RespondErr: err}
}

func failed(physicalID, reason string) Answer {
	return Answer{Status: cfn.StatusFailed, PhysicalResourceID: physicalID, Reason: reason}
}

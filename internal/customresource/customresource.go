// Package customresource is the plumbing every CloudFormation custom
// resource handler of this library shares: a Router that sends each event to
// the Handler of its ResourceType, an internal deadline that answers well
// before Lambda stops the function, reasons cut to what CloudFormation
// accepts, and one structured log line per event.
//
// The same function may also be invoked by a scheduled EventBridge rule
// with a constant Input of this library's (an EventHandler, registered with
// HandleEvent): an event that carries neither RequestType nor ResponseURL is
// not CloudFormation's and goes there, or fails naming what it was.
//
// The response protocol itself (the PUT to the pre-signed URL) is
// github.com/aws/aws-lambda-go/cfn.LambdaWrap: when a handler fails without a
// physical id it falls back to the RequestId on Create (so the Delete that
// follows a failed Create is recognisable) and to the old physical id on
// Update and Delete (so a failed Update never looks like a replacement). A
// handler that panics is answered here, like a failure, so that a Create
// that recorded its pending id (FailurePhysicalID) answers with it; the panic
// then goes on to the Lambda runtime.
//
// A CloudFormation request is acted on only while its answer can still
// land: an event whose pre-signed response URL has expired is refused
// (nothing done, nothing sent, the invocation fails), and the internal
// deadline ends SafetyMargin before the URL expires when that comes before
// the Lambda deadline.
package customresource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

const (
	// SafetyMargin is kept free before the Lambda deadline: the handler gives
	// up at deadline minus SafetyMargin and still has time to send its
	// FAILED answer (one PUT) and log. Without an answer CloudFormation
	// would wait the full hour.
	SafetyMargin = 20 * time.Second

	// MaxResponseBytes is CloudFormation's limit on a custom resource
	// response body. Reasons are cut so that the body stays below it.
	MaxResponseBytes = 4096

	// MaxPhysicalIDBytes is CloudFormation's limit on a physical resource id.
	MaxPhysicalIDBytes = 1024
)

// Request is one CloudFormation event, as a Handler sees it. Properties are
// raw (every scalar a string, as CloudFormation sends them); a handler
// decodes them once with its spec package.
type Request struct {
	RequestType        cfn.RequestType
	ResourceType       string
	StackID            string
	RequestID          string
	LogicalResourceID  string
	PhysicalResourceID string // empty on Create
	Properties         map[string]interface{}
	OldProperties      map[string]interface{} // Update only
}

// StackARN parses the StackId (arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>).
func (r Request) StackARN() (awsid.ARN, error) {
	a, err := awsid.ParseARN(r.StackID)
	if err != nil {
		return awsid.ARN{}, fmt.Errorf("StackId: %v", err)
	}
	if a.Service != "cloudformation" || awsid.ValidateAccount(a.Account) != nil {
		return awsid.ARN{}, fmt.Errorf("StackId: expected arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>, got %q", r.StackID)
	}
	return a, nil
}

// Result is what a successful Create or Update answers.
type Result struct {
	PhysicalResourceID string
	Data               map[string]interface{}
}

// Handler implements the lifecycle of one resource type. An error becomes a
// FAILED answer whose Reason is the error text, so it should say what was
// being done, with which values, and what a person can do about it.
type Handler interface {
	Create(ctx context.Context, req Request) (Result, error)
	Update(ctx context.Context, req Request) (Result, error)
	// Delete keeps the physical id; it has nothing else to answer.
	Delete(ctx context.Context, req Request) error
}

// EventHandler handles an event that did not come from CloudFormation: the
// constant Input of a scheduled EventBridge rule. It runs under the same
// internal deadline as a Handler, with Logger and Waiting; its result is the
// invocation's, and its error fails the invocation (Lambda counts it in the
// function's Errors metric). Nobody waits for an answer, so there is none
// to send.
type EventHandler func(ctx context.Context, raw json.RawMessage) (string, error)

// eventKind is the member (key) and string value (kind) that mark an event
// for one EventHandler.
type eventKind struct{ key, kind string }

func (k eventKind) String() string { return fmt.Sprintf("%q:%q", k.key, k.kind) }

// Router sends each event to the Handler registered for its ResourceType.
type Router struct {
	handlers map[string]Handler
	events   map[eventKind]EventHandler
	// selfAnswering and selfAnsweringEvents are the handlers that send
	// their answers themselves (HandleSelfAnswering), and their hand-overs.
	selfAnswering       map[string]SelfAnsweringHandler
	selfAnsweringEvents map[eventKind]SelfAnsweringHandler
	// Logger receives one JSON line per event (and the handlers' warnings).
	Logger *slog.Logger
	// SafetyMargin overrides the package constant of the same name (tests
	// use a short function deadline).
	SafetyMargin time.Duration
	// Now is the clock the response URL's expiry is read against (nil:
	// time.Now). Deadlines stay on the runtime's clock: the time left
	// until the URL expires is measured with Now when the event arrives,
	// and counted from that arrival on the runtime's clock.
	Now func() time.Time
}

// NewRouter returns a Router that logs JSON to stdout, where Lambda
// collects it.
func NewRouter() *Router {
	return &Router{
		handlers: map[string]Handler{},
		events:   map[eventKind]EventHandler{},
		Logger:   slog.New(slog.NewJSONHandler(os.Stdout, nil)),
	}
}

// Handle registers h for resourceType. Adding a resource type is one call.
func (r *Router) Handle(resourceType string, h Handler) {
	_, self := r.selfAnswering[resourceType]
	if _, dup := r.handlers[resourceType]; dup || self {
		panic("customresource: a handler for " + resourceType + " is already registered")
	}
	r.handlers[resourceType] = h
}

// HandleEvent registers h for the events that are not CloudFormation's and
// whose member key is the string kind, such as {"crossaccountami":"heal-grant",...}.
func (r *Router) HandleEvent(key, kind string, h EventHandler) {
	k := eventKind{key, kind}
	_, self := r.selfAnsweringEvents[k]
	if _, dup := r.events[k]; dup || self {
		panic("customresource: a handler for the event " + k.String() + " is already registered")
	}
	if r.events == nil {
		r.events = map[eventKind]EventHandler{}
	}
	r.events[k] = h
}

// ResourceTypes lists the registered types, sorted.
func (r *Router) ResourceTypes() []string {
	var out []string
	for t := range r.handlers {
		out = append(out, t)
	}
	for t := range r.selfAnswering {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// LambdaHandler returns the function to pass to lambda.Start. It decodes
// the event itself so that an event whose fields have unexpected types
// still gets a FAILED answer when its ResponseURL can be read, instead of
// leaving CloudFormation waiting for an hour.
//
// An event that is not CloudFormation's (isCloudFormation) goes to the
// EventHandler its kind names, and fails the invocation when none does.
func (r *Router) LambdaHandler() func(context.Context, json.RawMessage) (string, error) {
	return func(ctx context.Context, raw json.RawMessage) (string, error) {
		if !isCloudFormation(raw) {
			if h := r.selfAnsweringEventOf(raw); h != nil {
				return h(ctx, cfn.Event{}, raw)
			}
			return r.ServeEvent(ctx, raw)
		}
		ev, err := decodeEvent(raw)
		if h, ok := r.selfAnswering[ev.ResourceType]; ok && err == nil {
			return r.serveSelfAnswering(ctx, ev, "", raw, h)
		}
		w := windowOf(ev.ResponseURL, r.now())
		if w.expired() {
			return "", r.refuseExpired(ev, w)
		}
		var panicked *outcome
		serve := func(ctx context.Context, ev cfn.Event) (string, map[string]interface{}, error) {
			id, data, p, err := r.serve(ctx, ev, w)
			panicked = p
			return id, data, err
		}
		if err != nil {
			serve = func(context.Context, cfn.Event) (string, map[string]interface{}, error) {
				r.logger().Error("malformed event", "error", err.Error(), "requestId", ev.RequestID, "logicalResourceId", ev.LogicalResourceID)
				return "", nil, errors.New(fitReason(ev, FallbackID(ev), err.Error()))
			}
		}
		reason, err := cfn.LambdaWrap(serve)(ctx, ev)
		if panicked != nil {
			// Answered already: the Lambda runtime reports the panic (the
			// invocation counts in Errors) and starts a fresh process.
			panic(panicked.panicked)
		}
		return reason, err
	}
}

// now is the router's clock.
func (r *Router) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// refuseExpired logs why an event whose response URL expired before it
// arrived is not served, and returns the invocation's error. Nothing is
// sent: S3 refuses a PUT to an expired URL, and CloudFormation stopped
// waiting for this answer before the URL expired.
func (r *Router) refuseExpired(ev cfn.Event, w responseWindow) error {
	err := &ResponseURLExpiredError{
		ReceivedAt: w.receivedAt, ExpiredAt: w.expiresAt,
		RequestType: string(ev.RequestType), RequestID: ev.RequestID, LogicalResourceID: ev.LogicalResourceID,
	}
	r.logger().Error("response URL expired before the request arrived: not acting, not answering",
		"receivedAt", w.receivedAt, "expiredAt", w.expiresAt,
		"requestType", string(ev.RequestType), "resourceType", ev.ResourceType,
		"logicalResourceId", ev.LogicalResourceID, "requestId", ev.RequestID, "stackId", ev.StackID,
		"physicalResourceId", ev.PhysicalResourceID, "error", err.Error())
	return err
}

// isCloudFormation reports whether raw is a CloudFormation event: a JSON
// object with a RequestType or a ResponseURL member. Every custom resource
// event has both; an EventBridge event or a rule's Input has neither. An
// object with one of them, malformed or not, is CloudFormation's, so that
// it gets a FAILED answer if its ResponseURL can be read.
func isCloudFormation(raw json.RawMessage) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return false
	}
	_, hasType := fields["RequestType"]
	_, hasURL := fields["ResponseURL"]
	return hasType || hasURL
}

// maxEventExcerpt bounds how much of an unknown event an error quotes.
const maxEventExcerpt = 512

// ServeEvent handles an event that is not CloudFormation's: it finds the
// EventHandler registered for the event's kind and runs it under the
// internal deadline. An event of no registered kind is an error that quotes
// it, so that a misdirected rule shows in the function's errors and log.
func (r *Router) ServeEvent(ctx context.Context, raw json.RawMessage) (string, error) {
	start := time.Now()
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	var kind eventKind
	var h EventHandler
	for k, eh := range r.events {
		var v string
		if json.Unmarshal(fields[k.key], &v) == nil && v == k.kind {
			kind, h = k, eh
			break
		}
	}
	if h == nil {
		err := fmt.Errorf("unknown event: not a CloudFormation custom resource event (it has no RequestType and no ResponseURL) and not of a kind this function serves (%s); received %s",
			r.eventKinds(), excerpt(raw))
		r.logger().Error("unknown event", "error", err.Error())
		return "", err
	}

	log := r.logger().With("event", kind.kind)
	log.Info("event", "input", fields)
	ctx, cancel := r.withDeadline(ctx, responseWindow{})
	defer cancel()
	p := &progress{}
	ctx = context.WithValue(ctx, progressKey{}, p)
	ctx = withLogger(ctx, log)

	// The handler runs on this goroutine: there is no answer to send before
	// the Lambda deadline, and a handler that returns (the SDK honours its
	// context) reports its own outcome, a metric included, before the
	// invocation ends.
	res, err := h(ctx, raw)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%s (%w)", p.timeoutReason("the "+kind.kind+" event handler"), err)
	}
	if err != nil {
		log.Error("outcome", "outcome", "failed", "error", err.Error(), "durationMs", time.Since(start).Milliseconds())
		return "", err
	}
	log.Info("outcome", "outcome", "succeeded", "result", res, "durationMs", time.Since(start).Milliseconds())
	return res, nil
}

// eventKinds lists the registered event kinds, sorted, or says there are none.
func (r *Router) eventKinds() string {
	var out []string
	for k := range r.events {
		out = append(out, k.String())
	}
	for k := range r.selfAnsweringEvents {
		out = append(out, k.String())
	}
	if len(out) == 0 {
		return "none"
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// excerpt quotes at most maxEventExcerpt bytes of raw.
func excerpt(raw json.RawMessage) string {
	if len(raw) <= maxEventExcerpt {
		return string(raw)
	}
	return fmt.Sprintf("%s... (%d bytes)", strings.ToValidUTF8(string(raw[:maxEventExcerpt]), ""), len(raw))
}

// decodeEvent reads a CloudFormation event. When the event does not match
// the expected shape it still returns what it could read of the fields the
// answer needs (ResponseURL, StackId, RequestId, LogicalResourceId, ...).
func decodeEvent(raw json.RawMessage) (cfn.Event, error) {
	var ev cfn.Event
	err := json.Unmarshal(raw, &ev)
	if err == nil {
		return ev, nil
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	str := func(key string) string {
		var s string
		_ = json.Unmarshal(fields[key], &s)
		return s
	}
	ev = cfn.Event{
		RequestType:        cfn.RequestType(str("RequestType")),
		RequestID:          str("RequestId"),
		ResponseURL:        str("ResponseURL"),
		ResourceType:       str("ResourceType"),
		PhysicalResourceID: str("PhysicalResourceId"),
		LogicalResourceID:  str("LogicalResourceId"),
		StackID:            str("StackId"),
	}
	return ev, fmt.Errorf("malformed CloudFormation event: %v", err)
}

// Serve handles one event; it has the signature of cfn.CustomResourceFunction.
// The handler runs in its own goroutine under a deadline SafetyMargin before
// the Lambda deadline, or before the response URL expires if that comes
// first; when that deadline passes Serve answers FAILED "timed out waiting
// for <what>" even if the handler ignores its context. An event whose
// response URL has expired is not handed to the handler (the error is a
// *ResponseURLExpiredError; LambdaHandler sends nothing for it). A handler's
// panic becomes a FAILED answer (with the pending id of a Create) and is
// logged with its stack; LambdaHandler then passes it on to the runtime.
func (r *Router) Serve(ctx context.Context, ev cfn.Event) (physicalID string, data map[string]interface{}, err error) {
	w := windowOf(ev.ResponseURL, r.now())
	if w.expired() {
		return "", nil, r.refuseExpired(ev, w)
	}
	physicalID, data, _, err = r.serve(ctx, ev, w)
	return physicalID, data, err
}

// serve is Serve for an event whose response URL has not expired; it also
// returns the handler's panic, if it panicked.
func (r *Router) serve(ctx context.Context, ev cfn.Event, w responseWindow) (physicalID string, data map[string]interface{}, panicked *outcome, err error) {
	start := time.Now()
	req := Request{
		RequestType:        ev.RequestType,
		ResourceType:       ev.ResourceType,
		StackID:            ev.StackID,
		RequestID:          ev.RequestID,
		LogicalResourceID:  ev.LogicalResourceID,
		PhysicalResourceID: ev.PhysicalResourceID,
		Properties:         ev.ResourceProperties,
		OldProperties:      ev.OldResourceProperties,
	}
	log := r.requestLog(ev, w)

	p := &progress{}
	res, panicked, err := r.run(ctx, req, log, p, w)
	if err == nil {
		physicalID, data = res.PhysicalResourceID, res.Data
		if ev.RequestType == cfn.RequestDelete {
			physicalID, data = ev.PhysicalResourceID, nil
		}
		err = checkAnswer(ev, physicalID, data)
	}
	if err != nil {
		failedID := p.failedID(ev)
		reason := fitReason(ev, failedID, err.Error())
		log.Error("answer", "outcome", string(cfn.StatusFailed), "physicalResourceId", failedID, "reason", err.Error(), "durationMs", time.Since(start).Milliseconds())
		if failedID == FallbackID(ev) {
			failedID = "" // LambdaWrap fills in the same fallback
		}
		return failedID, nil, panicked, errors.New(reason)
	}
	log.Info("answer", "outcome", string(cfn.StatusSuccess), "physicalResourceId", physicalID, "data", data, "durationMs", time.Since(start).Milliseconds())
	return physicalID, data, nil, nil
}

type outcome struct {
	res      Result
	err      error
	panicked interface{}
	stack    []byte
}

// run calls the handler of req under the internal deadline. A panic is
// returned (with the error its answer gives), not raised: the caller answers
// first.
func (r *Router) run(ctx context.Context, req Request, log *slog.Logger, p *progress, w responseWindow) (Result, *outcome, error) {
	res, panicked, err := r.call(ctx, req, log, p, w)
	if panicked != nil {
		log.Error("handler panicked", "panic", fmt.Sprint(panicked.panicked), "stack", string(panicked.stack))
		return Result{}, panicked, fmt.Errorf("%s panicked: %v (the stack is in the function's log)", handlerName(req), panicked.panicked)
	}
	return res, nil, err
}

func (r *Router) call(ctx context.Context, req Request, log *slog.Logger, p *progress, w responseWindow) (Result, *outcome, error) {
	h, ok := r.handlers[req.ResourceType]
	if _, self := r.selfAnswering[req.ResourceType]; self {
		return Result{}, nil, fmt.Errorf("internal error: %s answers its requests itself and is served by LambdaHandler only, not by Serve", req.ResourceType)
	}
	if !ok {
		return Result{}, nil, fmt.Errorf("ResourceType: this handler serves %s, got %q", strings.Join(r.ResourceTypes(), " and "), req.ResourceType)
	}
	var call func(context.Context) (Result, error)
	switch req.RequestType {
	case cfn.RequestCreate:
		call = func(ctx context.Context) (Result, error) { return h.Create(ctx, req) }
	case cfn.RequestUpdate:
		call = func(ctx context.Context) (Result, error) { return h.Update(ctx, req) }
	case cfn.RequestDelete:
		call = func(ctx context.Context) (Result, error) { return Result{}, h.Delete(ctx, req) }
	default:
		return Result{}, nil, fmt.Errorf("RequestType: expected Create, Update or Delete, got %q", req.RequestType)
	}

	margin := r.margin()
	if w.known() && w.left() <= margin {
		// The answer may still land, but acting first might not leave the
		// time to send it.
		return Result{}, nil, fmt.Errorf("the response URL expires at %s, %s after the request arrived; the handler needs %s to act and answer, so it did not act",
			w.expiresAt.UTC().Format(time.RFC3339), w.left().Round(time.Millisecond), margin)
	}
	ctx, cancel := r.withDeadline(ctx, w)
	defer cancel()
	ctx = context.WithValue(ctx, progressKey{}, p)
	ctx = withLogger(ctx, log)

	// The buffer lets a handler that outlives the deadline finish (or panic)
	// without blocking and without a second answer.
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- outcome{panicked: v, stack: debug.Stack()}
			}
		}()
		res, err := call(ctx)
		done <- outcome{res: res, err: err}
	}()

	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		select {
		case o = <-done: // finished at the same moment: keep its answer
		default:
			return Result{}, nil, errors.New(p.timeoutReason(handlerName(req)))
		}
	}
	if o.panicked != nil {
		return Result{}, &o, nil
	}
	if o.err != nil && ctx.Err() != nil {
		// The handler honoured the deadline; its error is usually a bare
		// "context deadline exceeded". Say what it was waiting for.
		return Result{}, nil, fmt.Errorf("%s (%v)", p.timeoutReason(handlerName(req)), o.err)
	}
	return o.res, nil, o.err
}

// handlerName names the handler of req in a timeout reason.
func handlerName(req Request) string {
	return fmt.Sprintf("the %s %s handler", req.ResourceType, req.RequestType)
}

// margin is the router's safety margin.
func (r *Router) margin() time.Duration {
	if r.SafetyMargin > 0 {
		return r.SafetyMargin
	}
	return SafetyMargin
}

// withDeadline derives the internal deadline: the Lambda deadline minus the
// safety margin, or half the remaining time when less than twice the margin
// is left; and no later than the safety margin before the response URL of w
// expires, so that the handler stops while its answer can still land.
func (r *Router) withDeadline(ctx context.Context, w responseWindow) (context.Context, context.CancelFunc) {
	var deadline time.Time
	if lambda, ok := ctx.Deadline(); ok {
		margin := r.margin()
		if remaining := time.Until(lambda); remaining < 2*margin {
			margin = remaining / 2
		}
		deadline = lambda.Add(-margin)
	}
	if w.known() {
		// The time left is measured on the router's clock and counted
		// from the arrival on the runtime's, where the context's deadline
		// lives.
		if byURL := w.arrived.Add(w.left() - r.margin()); deadline.IsZero() || byURL.Before(deadline) {
			deadline = byURL
		}
	}
	if deadline.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline)
}

func (r *Router) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

// FallbackID is the physical id of a FAILED answer that names nothing of its
// own: the request id on Create (so that the Delete CloudFormation sends
// after a failed Create is recognisable), the current physical id
// otherwise (a failed Update never looks like a replacement).
func FallbackID(ev cfn.Event) string {
	if ev.RequestType == cfn.RequestCreate {
		return ev.RequestID
	}
	return ev.PhysicalResourceID
}

func checkAnswer(ev cfn.Event, physicalID string, data map[string]interface{}) error {
	if physicalID == "" {
		return fmt.Errorf("internal error: the %s handler answered no physical resource id", ev.ResourceType)
	}
	if len(physicalID) > MaxPhysicalIDBytes {
		return fmt.Errorf("internal error: the physical resource id is %d bytes long, CloudFormation accepts at most %d: %.100s...", len(physicalID), MaxPhysicalIDBytes, physicalID)
	}
	resp := cfn.NewResponse(&ev)
	resp.Status, resp.PhysicalResourceID, resp.Data = cfn.StatusSuccess, physicalID, data
	body, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("internal error: encoding the response Data: %v", err)
	}
	if len(body) >= MaxResponseBytes {
		return fmt.Errorf("internal error: the response would be %d bytes, CloudFormation accepts less than %d", len(body), MaxResponseBytes)
	}
	return nil
}

const truncated = " [cut to fit the response; the full text is in the log]"

// fitReason cuts reason so that the FAILED response body (with the
// physical id physicalID) stays below MaxResponseBytes.
func fitReason(ev cfn.Event, physicalID, reason string) string {
	resp := cfn.NewResponse(&ev)
	resp.Status = cfn.StatusFailed
	resp.PhysicalResourceID = physicalID
	resp.Reason = reason
	_ = FitResponse(resp) // without Data, the rest always fits
	return resp.Reason
}

// FitResponse cuts resp.Reason, marking the cut, so that resp's body stays
// below MaxResponseBytes (CloudFormation's limit; the full reason belongs
// in the log). It fails when the body is too long even without a reason
// (a Data or physical id too long).
func FitResponse(resp *cfn.Response) error {
	reason := resp.Reason
	resp.Reason = ""
	base, err := json.Marshal(resp) // Reason is omitted while empty
	if err != nil {
		resp.Reason = reason
		return fmt.Errorf("encoding the response: %v", err)
	}
	tooLong := fmt.Errorf("the response is %d bytes without a reason; CloudFormation accepts less than %d", len(base), MaxResponseBytes)
	if reason == "" {
		if len(base) >= MaxResponseBytes {
			return tooLong
		}
		return nil
	}
	budget := MaxResponseBytes - 1 - len(base) - len(`,"Reason":""`)
	if jsonLen(reason) > budget && budget < jsonLen(truncated) {
		resp.Reason = reason
		return tooLong
	}
	resp.Reason = cutReason(reason, budget)
	return nil
}

// cutReason returns reason, or its start and the truncated note, within
// budget bytes of JSON string content.
func cutReason(reason string, budget int) string {
	if jsonLen(reason) <= budget {
		return reason
	}
	budget -= jsonLen(truncated)
	var b strings.Builder
	used := 0
	for _, c := range reason {
		n := jsonLen(string(c))
		if used+n > budget {
			break
		}
		used += n
		b.WriteRune(c)
	}
	return b.String() + truncated
}

// jsonLen is the length of s inside a JSON string, quotes excluded.
func jsonLen(s string) int {
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\"\\<>&\u2028\u2029") || hasControl(s) {
		b, _ := json.Marshal(s)
		return len(b) - 2
	}
	return len(s)
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}

// progress records what the handler is waiting for, so that a timeout can
// name it, and the physical id a failed Create answers with.
type progress struct {
	mu        sync.Mutex
	what      string
	explain   func(error) string
	last      error
	onFailure string
}

// FailurePhysicalID sets the physical id a Create answers with if it fails
// from now on, by error or by timeout. A handler sets it before a call that
// may create something even when the call seems to fail (a timeout while the
// request is in flight), so that the rollback Delete can find and remove it.
// Without it a failed Create answers with the request id, which names
// nothing.
func FailurePhysicalID(ctx context.Context, id string) {
	if p, ok := ctx.Value(progressKey{}).(*progress); ok {
		p.mu.Lock()
		p.onFailure = id
		p.mu.Unlock()
	}
}

// failedID is the physical id of a FAILED answer to ev.
func (p *progress) failedID(ev cfn.Event) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.RequestType == cfn.RequestCreate && p.onFailure != "" && len(p.onFailure) <= MaxPhysicalIDBytes {
		return p.onFailure
	}
	return FallbackID(ev)
}

type progressKey struct{}

// Waiting tells the router what the handler is about to wait for (such as
// "KMS CreateGrant on <key> for <grantee>"). If the deadline passes before
// the next call to Waiting, the FAILED reason is "timed out waiting for
// <what>", followed by the last error recorded with RecordRetry, passed
// through explain when explain is not nil.
func Waiting(ctx context.Context, what string, explain func(error) string) {
	if p, ok := ctx.Value(progressKey{}).(*progress); ok {
		p.mu.Lock()
		p.what, p.explain, p.last = what, explain, nil
		p.mu.Unlock()
	}
}

// RecordRetry notes an error that is being retried (awserr's retryer calls it for
// every retried attempt), so that a timeout can show it.
func RecordRetry(ctx context.Context, err error) {
	if p, ok := ctx.Value(progressKey{}).(*progress); ok {
		p.mu.Lock()
		p.last = err
		p.mu.Unlock()
	}
}

// LastRetry returns the last error recorded with RecordRetry since the last
// call to Waiting, or nil. A handler that gives up on a call before the
// router's deadline (to keep time for a cleanup) uses it to say why.
func LastRetry(ctx context.Context) error {
	if p, ok := ctx.Value(progressKey{}).(*progress); ok {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.last
	}
	return nil
}

// timeoutReason says what the handler was waiting for when its deadline
// passed; handler names it when the handler never said (Waiting).
func (p *progress) timeoutReason(handler string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	what := p.what
	if what == "" {
		what = handler
	}
	msg := "timed out waiting for " + what
	if p.last == nil {
		return msg + " (no answer before the handler's deadline)"
	}
	last := p.last.Error()
	if p.explain != nil {
		last = p.explain(p.last)
	}
	return msg + ": last error: " + last
}

type loggerKey struct{}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// Logger returns the logger of the event being handled (with its request
// type, resource type and logical id), or slog.Default outside the router.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// requestLog is the logger of one request, with the fields that name it,
// after logging the request and, when its response URL has no expiry this
// handler recognises, a warning.
func (r *Router) requestLog(ev cfn.Event, w responseWindow) *slog.Logger {
	log := r.logger().With(
		"requestType", string(ev.RequestType),
		"resourceType", ev.ResourceType,
		"logicalResourceId", ev.LogicalResourceID,
		"requestId", ev.RequestID,
		"stackId", ev.StackID,
	)
	log.Info("request", "physicalResourceId", ev.PhysicalResourceID, "properties", ev.ResourceProperties, "oldProperties", ev.OldResourceProperties)
	if !w.known() {
		// Lenient on purpose: the URL's form is CloudFormation's to change
		// (the expiry parameters are S3's, not a documented part of the
		// custom resource protocol). Refusing every URL of a new form would
		// fail every deploy, update and delete, with no answer, until the
		// handler is updated. Serving keeps the other bounds: the Lambda
		// deadline, and the function's maximum event age, chosen so that
		// no event is delivered after CloudFormation's ServiceTimeout.
		log.Warn("the response URL has no expiry this handler recognises; serving the request without that bound",
			"why", w.unknownWhy.Error(), "responseUrlHost", responseURLHost(ev.ResponseURL))
	}
	return log
}

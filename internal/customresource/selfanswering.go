package customresource

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// SelfAnsweringHandler serves a resource type whose handler sends its
// answer itself, because it may not answer in the invocation that received
// the request: it may hand the request over to a later invocation of the
// function (an asynchronous Invoke of itself) that answers, such as a copy
// that takes longer than one Lambda run (copylifecycle). ev is the request,
// raw the invocation's payload (CloudFormation's event, or the hand-over's
// payload that carries it). The handler calls Settled before it answers or
// once it has handed over; its result and error are the invocation's (an
// error shows in the function's Errors metric; nothing is sent for it).
//
// The router keeps its fences around it: a request whose response URL has
// expired is refused before the handler is called, and a handler that
// panics before Settled is answered FAILED (the request id on Create, the
// physical id otherwise; for a hand-over, the physical id its eventOf
// names), then the panic goes on to the runtime. The
// handler gets the Lambda deadline as its context's deadline, not the
// router's internal one: it keeps its own margins (it hands over before
// the end), and its cleanup must not be cut short by the router's.
type SelfAnsweringHandler func(ctx context.Context, ev cfn.Event, raw json.RawMessage) (string, error)

// HandleSelfAnswering registers h for CloudFormation's events of
// resourceType.
func (r *Router) HandleSelfAnswering(resourceType string, h SelfAnsweringHandler) {
	if _, dup := r.handlers[resourceType]; dup {
		panic("customresource: a handler for " + resourceType + " is already registered")
	}
	if _, dup := r.selfAnswering[resourceType]; dup {
		panic("customresource: a handler for " + resourceType + " is already registered")
	}
	if r.selfAnswering == nil {
		r.selfAnswering = map[string]SelfAnsweringHandler{}
	}
	r.selfAnswering[resourceType] = h
}

// HandleSelfAnsweringEvent registers h for the hand-overs of a
// self-answering handler: events that are not CloudFormation's and whose
// member key is the string kind (such as
// {"crossaccountami":"copy-continuation",...}). eventOf reads the
// CloudFormation event the hand-over carries, and the physical id of a
// FAILED answer for it (failedID; "" for the request id on Create, the
// physical id otherwise). The router applies the same fences to the event
// as to CloudFormation's own delivery (its response URL's expiry, the
// FAILED answer to a panic before Settled, which names failedID: a
// hand-over may carry a copy the request's own id would not lead its
// Delete to).
func (r *Router) HandleSelfAnsweringEvent(key, kind string, eventOf func(raw json.RawMessage) (ev cfn.Event, failedID string, err error), h SelfAnsweringHandler) {
	k := eventKind{key, kind}
	if _, dup := r.events[k]; dup {
		panic("customresource: a handler for the event " + k.String() + " is already registered")
	}
	if _, dup := r.selfAnsweringEvents[k]; dup {
		panic("customresource: a handler for the event " + k.String() + " is already registered")
	}
	if r.selfAnsweringEvents == nil {
		r.selfAnsweringEvents = map[eventKind]SelfAnsweringHandler{}
	}
	r.selfAnsweringEvents[k] = func(ctx context.Context, _ cfn.Event, raw json.RawMessage) (string, error) {
		ev, failedID, err := eventOf(raw)
		if err != nil {
			// Nothing can be answered: the event it would carry is unreadable.
			r.logger().Error("malformed "+kind+" event", "error", err.Error())
			return "", err
		}
		return r.serveSelfAnswering(ctx, ev, failedID, raw, h)
	}
}

// selfAnsweringEventOf returns the handler of raw's kind among the
// self-answering events, or nil.
func (r *Router) selfAnsweringEventOf(raw json.RawMessage) SelfAnsweringHandler {
	if len(r.selfAnsweringEvents) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	for k, h := range r.selfAnsweringEvents {
		var v string
		if json.Unmarshal(fields[k.key], &v) == nil && v == k.kind {
			return h
		}
	}
	return nil
}

// settledKey marks the context of a self-answering request.
type settledKey struct{}

// Settled tells the router that the self-answering handler of this request
// has answered it, is about to, or has handed it over: from now on the
// router must not answer for it, not even when the handler panics. Outside
// a self-answering request it does nothing.
func Settled(ctx context.Context) {
	if s, ok := ctx.Value(settledKey{}).(*atomic.Bool); ok {
		s.Store(true)
	}
}

// serveSelfAnswering runs h for ev under the router's fences. failedID is
// the physical id of the FAILED answer to a panic ("": FallbackID).
func (r *Router) serveSelfAnswering(ctx context.Context, ev cfn.Event, failedID string, raw json.RawMessage, h SelfAnsweringHandler) (string, error) {
	start := time.Now()
	w := windowOf(ev.ResponseURL, r.now())
	if w.expired() {
		return "", r.refuseExpired(ev, w)
	}
	log := r.requestLog(ev, w)
	settled := &atomic.Bool{}
	ctx = context.WithValue(ctx, settledKey{}, settled)
	ctx = context.WithValue(ctx, progressKey{}, &progress{})
	ctx = withLogger(ctx, log)

	var res string
	var err error
	func() {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			stack := debug.Stack()
			log.Error("handler panicked", "panic", fmt.Sprint(v), "stack", string(stack))
			if !settled.Load() {
				r.answerPanic(ev, failedID, v, log)
			}
			panic(v)
		}()
		res, err = h(ctx, ev, raw)
	}()
	if err != nil {
		log.Error("outcome", "outcome", "failed", "error", err.Error(), "durationMs", time.Since(start).Milliseconds())
		return "", err
	}
	log.Info("outcome", "outcome", res, "durationMs", time.Since(start).Milliseconds())
	return res, nil
}

// answerPanic sends the FAILED answer of a self-answering handler that
// panicked before it settled the request, with the physical id id (or,
// when it is "", FallbackID).
func (r *Router) answerPanic(ev cfn.Event, id string, v interface{}, log *slog.Logger) {
	if id == "" {
		id = FallbackID(ev)
	}
	resp := cfn.NewResponse(&ev)
	resp.Status, resp.PhysicalResourceID = cfn.StatusFailed, id
	resp.Reason = fitReason(ev, id, fmt.Sprintf("the %s %s handler panicked: %v (the stack is in the function's log)", ev.ResourceType, ev.RequestType, v))
	if err := resp.Send(); err != nil {
		log.Error("sending the FAILED answer to a panic failed", "error", err.Error())
	}
}

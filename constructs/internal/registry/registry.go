// Package registry keeps Go-side state per stack, such as the one grant
// handler of a stack or the statements placed on a key.
//
// It is keyed by the stack's Go value: jsii-runtime-go hands back the same
// Go value for the same JavaScript object (awscdk.Stack_Of of any construct
// of a stack returns the stack's value), so two apps in one process never
// share state even when their construct paths are equal.
package registry

import (
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
)

var (
	mu     sync.Mutex
	stacks = map[awscdk.Stack]map[string]interface{}{}
)

// Get returns the value stored under name for scope's stack, creating it
// with create on first use. create may itself call Get (the lock is not held
// while it runs); like every construct code, Get is not meant to be called
// from several goroutines on one app at once.
func Get[T any](scope constructs.IConstruct, name string, create func(stack awscdk.Stack) T) T {
	// A stack is its own stack, and a construct made by Child has a known
	// one: asking jsii (Stack_Of) would be a round trip for nothing.
	stack := stackOf(scope)
	mu.Lock()
	v, ok := stacks[stack][name]
	mu.Unlock()
	if ok {
		return v.(T)
	}
	created := create(stack)
	mu.Lock()
	defer mu.Unlock()
	if stacks[stack] == nil {
		stacks[stack] = map[string]interface{}{}
	}
	stacks[stack][name] = created
	return created
}

// known is what this library learned of the constructs it created: their
// stack and path, so that asking jsii again (Stack_Of, Node().Path(): a
// round trip each) is not needed.
type known struct {
	stack awscdk.Stack
	path  string
}

var (
	knownMu sync.Mutex
	knowns  = map[constructs.IConstruct]known{}
)

// Child creates a construct id under scope, as constructs.NewConstruct does,
// and remembers its stack and path when scope's are known (scope is a
// stack whose path is given, or a construct made by Child).
func Child(scope constructs.Construct, id string) constructs.Construct {
	c := constructs.NewConstruct(scope, &id)
	knownMu.Lock()
	defer knownMu.Unlock()
	if k, ok := knowns[scope]; ok {
		knowns[c] = known{stack: k.stack, path: k.path + "/" + id}
	}
	return c
}

// RememberStack records a stack's path, so that Child works under it.
func RememberStack(stack awscdk.Stack, path string) {
	knownMu.Lock()
	defer knownMu.Unlock()
	knowns[stack] = known{stack: stack, path: path}
}

// Path is scope's construct path, from what Child remembered or from jsii.
func Path(scope constructs.IConstruct) string {
	knownMu.Lock()
	k, ok := knowns[scope]
	knownMu.Unlock()
	if ok {
		return k.path
	}
	return *scope.Node().Path()
}

func stackOf(scope constructs.IConstruct) awscdk.Stack {
	if stack, isStack := scope.(awscdk.Stack); isStack {
		return stack
	}
	knownMu.Lock()
	k, ok := knowns[scope]
	knownMu.Unlock()
	if ok {
		return k.stack
	}
	return awscdk.Stack_Of(scope)
}

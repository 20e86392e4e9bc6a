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
	stack := awscdk.Stack_Of(scope)
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

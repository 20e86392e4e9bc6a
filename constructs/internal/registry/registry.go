// Package registry keeps Go-side state per stack instance, such as the one
// grant handler of a stack or the statements placed on a key.
//
// Construct paths and addresses derive from construct ids, so two apps in
// one process (tests, or a program that synthesizes several apps) have
// stacks with equal paths. The registry tells them apart with an empty
// marker construct, numbered per process, placed in the stack on first use.
// The marker adds nothing to the template.
package registry

import (
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

const markerPrefix = "CrossAccountAmiRegistry"

var (
	mu     sync.Mutex
	seq    int
	stacks = map[string]map[string]interface{}{}
)

// Get returns the value stored under name for scope's stack, creating it
// with create on first use. Calls are serialized, create included.
func Get[T any](scope constructs.IConstruct, name string, create func() T) T {
	mu.Lock()
	defer mu.Unlock()
	state := forStack(awscdk.Stack_Of(scope))
	if v, ok := state[name]; ok {
		return v.(T)
	}
	v := create()
	state[name] = v
	return v
}

func forStack(stack awscdk.Stack) map[string]interface{} {
	for _, child := range *stack.Node().Children() {
		if id := *child.Node().Id(); strings.HasPrefix(id, markerPrefix) {
			return stacks[id]
		}
	}
	seq++
	id := fmt.Sprintf("%s%d", markerPrefix, seq)
	constructs.NewConstruct(stack, jsii.String(id))
	stacks[id] = map[string]interface{}{}
	return stacks[id]
}

package registry

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// One small app for every test: each jsii call is a round trip to Node.
func newApp(t *testing.T) (one, two awscdk.Stack) {
	t.Helper()
	app := awscdk.NewApp(nil)
	return awscdk.NewStack(app, jsii.String("One"), nil), awscdk.NewStack(app, jsii.String("Two"), nil)
}

func TestRegistry(t *testing.T) {
	one, two := newApp(t)

	t.Run("Get creates once per stack", func(t *testing.T) {
		type state struct{ stack awscdk.Stack }
		calls := 0
		create := func(stack awscdk.Stack) *state { calls++; return &state{stack: stack} }

		first := Get(one, "test-once", create)
		again := Get(one, "test-once", create)
		// A construct this package did not create: Get asks jsii for its stack.
		fromChild := Get(constructs.NewConstruct(one, jsii.String("Plain")), "test-once", create)

		if calls != 1 || first != again || first != fromChild {
			t.Errorf("create ran %d times for one stack (values %p, %p, %p), want once and one value", calls, first, again, fromChild)
		}
		if first.stack != one {
			t.Errorf("create got the stack %v, want One", first.stack)
		}

		other := Get(two, "test-once", create)
		if calls != 2 || other == first || other.stack != two {
			t.Errorf("stack Two: create ran %d times in all, value %p (One's %p), want a value of its own", calls, other, first)
		}
	})

	t.Run("Get keeps names apart", func(t *testing.T) {
		a := Get(one, "test-a", func(awscdk.Stack) string { return "a" })
		b := Get(one, "test-b", func(awscdk.Stack) string { return "b" })
		if a != "a" || b != "b" {
			t.Errorf("Get(test-a), Get(test-b) = %q, %q", a, b)
		}
	})

	t.Run("Child remembers the stack and the path", func(t *testing.T) {
		RememberStack(one, "One")
		handler := Child(one, "Handler")
		role := Child(handler, "Role")

		for _, c := range []constructs.Construct{handler, role} {
			knownMu.Lock()
			k, ok := knowns[c]
			knownMu.Unlock()
			jsiiPath := *c.Node().Path()
			if !ok || k.stack != one || k.path != jsiiPath {
				t.Errorf("%s: remembered %+v (known: %v), want stack One and the path jsii gives", jsiiPath, k, ok)
			}
			if got := Path(c); got != jsiiPath {
				t.Errorf("Path = %q, want %q", got, jsiiPath)
			}
			if got := stackOf(c); got != one {
				t.Errorf("%s: stackOf = %v, want One", jsiiPath, got)
			}
		}
		if got := Path(role); got != "One/Handler/Role" {
			t.Errorf("Path(role) = %q, want One/Handler/Role", got)
		}
	})

	t.Run("Path falls back to jsii", func(t *testing.T) {
		// Stack Two's path was never remembered: neither its child nor the
		// child's child is known, and Path asks jsii.
		c := Child(two, "Unknown")
		grandchild := Child(c, "Deeper")
		plain := constructs.NewConstruct(one, jsii.String("NotMadeByChild"))
		for want, scope := range map[string]constructs.Construct{"Two/Unknown": c, "Two/Unknown/Deeper": grandchild, "One/NotMadeByChild": plain} {
			knownMu.Lock()
			_, known := knowns[scope]
			knownMu.Unlock()
			if known {
				t.Errorf("%s is remembered, want it unknown", want)
			}
			if got := Path(scope); got != want {
				t.Errorf("Path = %q, want %q", got, want)
			}
		}
		if got := stackOf(grandchild); got != two {
			t.Errorf("stackOf(Two/Unknown/Deeper) = %v, want Two (from jsii)", got)
		}
	})
}

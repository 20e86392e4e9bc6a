// Package cleanupreserve keeps part of a handler's time for undoing its own
// writes. A handler that writes something CloudFormation's rollback will not
// undo (a replacing Update's writes on a new target) runs those writes under
// Keep's context; when they fail, or that context's deadline passes, the
// time left before the handler's own deadline is enough to undo them before
// it answers FAILED.
package cleanupreserve

import (
	"context"
	"time"
)

// Keep returns a context whose deadline is reserve before ctx's, so that
// reserve is left after it ends. The reserve is at most a third of the time
// left, so that the work itself keeps the larger part. Without a deadline on
// ctx there is nothing to keep: the context only adds a cancel.
func Keep(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve = min(reserve, time.Until(deadline)/3)
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

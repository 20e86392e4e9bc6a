package cleanupreserve_test

import (
	"context"
	"testing"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/cleanupreserve"
)

func TestKeep(t *testing.T) {
	for _, tc := range []struct {
		name          string
		left, reserve time.Duration
		want          time.Duration // the reserve kept
	}{
		{"the reserve asked for", 9 * time.Minute, time.Minute, time.Minute},
		{"at most a third of the time left", 90 * time.Second, time.Minute, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deadline := time.Now().Add(tc.left)
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			work, done := cleanupreserve.Keep(ctx, tc.reserve)
			defer done()
			got, ok := work.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			// time.Until in Keep runs a moment after deadline was set: allow
			// a millisecond for the third.
			if kept := deadline.Sub(got); kept < tc.want-time.Millisecond || kept > tc.want {
				t.Errorf("kept %v, want %v", kept, tc.want)
			}
		})
	}
	t.Run("no deadline", func(t *testing.T) {
		work, done := cleanupreserve.Keep(context.Background(), time.Minute)
		if _, ok := work.Deadline(); ok {
			t.Error("a deadline appeared")
		}
		done()
		if work.Err() == nil {
			t.Error("cancel did not cancel")
		}
	})
}

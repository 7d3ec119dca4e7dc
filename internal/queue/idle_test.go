package queue

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// countingStore counts lease transactions.
type countingStore struct {
	store.Store
	leases atomic.Int64
}

func (c *countingStore) LeaseTasks(ctx context.Context, p *store.LeaseParams) ([]store.Lease, error) {
	c.leases.Add(1)
	return c.Store.LeaseTasks(ctx, p)
}

// TestLeaseIdleGate checks that lease calls skip the store while nothing
// can be due, and scan again after a submission, once a delayed task is
// due, and after the gate's poll interval.
func TestLeaseIdleGate(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	cs := &countingStore{Store: b.st}
	b.q = New(Options{Store: cs, Now: b.clock.now, LeaseTTL: 10 * time.Second})
	want := func(step string, jobs, scans int, got int) {
		t.Helper()
		if got != jobs || int(cs.leases.Load()) != scans {
			t.Fatalf("%s: %d jobs after %d scans; want %d after %d", step, got, cs.leases.Load(), jobs, scans)
		}
	}
	want("empty queue", 0, 1, len(b.lease(t, 10)))
	want("again, nothing changed", 0, 1, len(b.lease(t, 10)))
	b.submit(t, ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{}`)})
	want("after a submission", 1, 2, len(b.lease(t, 10)))
	want("the queue emptied by that lease", 0, 2, len(b.lease(t, 10)))
	b.clock.add(maxIdle)
	want("a poll interval later", 0, 3, len(b.lease(t, 10)))

	b.submit(t, ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{}`), DelayS: 1})
	want("a delayed task, not due", 0, 4, len(b.lease(t, 10)))
	want("still not due", 0, 4, len(b.lease(t, 10)))
	b.clock.add(time.Second)
	want("the delayed task due", 1, 5, len(b.lease(t, 10)))
}

package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// countingStore counts lease transactions and next-due probes.
type countingStore struct {
	store.Store
	leases atomic.Int64
	probes atomic.Int64
}

func (c *countingStore) LeaseTasks(ctx context.Context, p *store.LeaseParams) ([]store.Lease, error) {
	c.leases.Add(1)
	return c.Store.LeaseTasks(ctx, p)
}

func (c *countingStore) NextRunAt(ctx context.Context, runtimes ...ward.Runtime) (time.Time, bool, error) {
	c.probes.Add(1)
	return c.Store.NextRunAt(ctx, runtimes...)
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

// TestIdleGateSets checks that the gate keeps what it saw per set of
// runtimes, and that allIdle holds only when every set seen is idle.
func TestIdleGateSets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	wasm, oci, all := runtimesKey([]string{"wasm"}), runtimesKey([]string{"oci"}), runtimesKey(nil)
	var g idleGate
	if g.allIdle(1, now) {
		t.Fatal("a gate that has seen nothing is all idle")
	}
	if _, idle := g.idle(wasm, 1, now); idle {
		t.Fatal("a set never seen is idle")
	}
	g.record(wasm, 1, now, time.Time{}, false) // nothing queued for wasm
	if until, idle := g.idle(wasm, 1, now); !idle || !until.Equal(now.Add(maxIdle)) {
		t.Fatalf("wasm after an empty probe: idle %t until %v; want idle until the poll", idle, until)
	}
	if _, idle := g.idle(oci, 1, now); idle {
		t.Fatal("oci is idle because wasm is")
	}
	if !g.allIdle(1, now) {
		t.Fatal("the one set seen is idle, but not all idle")
	}
	g.record(oci, 1, now, now.Add(-time.Second), true) // an oci task is due
	if _, idle := g.idle(oci, 1, now); idle {
		t.Fatal("oci idle with an oci task due")
	}
	if _, idle := g.idle(wasm, 1, now); !idle {
		t.Fatal("a due oci task opened the wasm gate")
	}
	if g.allIdle(1, now) {
		t.Fatal("all idle with an oci task due")
	}
	g.record(all, 1, now, now.Add(100*time.Millisecond), true) // due soon
	if until, idle := g.idle(all, 1, now); !idle || !until.Equal(now.Add(100*time.Millisecond)) {
		t.Fatalf("every runtime with a task due soon: idle %t until %v", idle, until)
	}
	if _, idle := g.idle(wasm, 2, now); idle {
		t.Fatal("idle after a broadcast")
	}
	if _, idle := g.idle(wasm, 1, now.Add(maxIdle)); idle {
		t.Fatal("idle past the poll")
	}
	// Past maxIdleSets sets the gate forgets what it saw: a forgotten set
	// is scanned again, and the gate is not all idle for want of it.
	for i := range maxIdleSets {
		g.record(runtimesKey([]string{fmt.Sprint("rt", i)}), 1, now, time.Time{}, false)
	}
	if _, idle := g.idle(wasm, 1, now); idle {
		t.Fatal("wasm still idle after the gate overflowed")
	}
	if len(g.m) > maxIdleSets {
		t.Fatalf("gate keeps %d sets, more than %d", len(g.m), maxIdleSets)
	}
}

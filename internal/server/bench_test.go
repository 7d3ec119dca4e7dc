package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/server"
	"github.com/wardhq/ward/internal/store/postgres/pgtest"
)

// BenchmarkEndToEnd measures completed tasks per second through the whole
// platform: HTTP batch submissions of 1,000 while the in-process runner works,
// until every task has succeeded. "echo" is the trivial task (a WAT module
// copying stdin to stdout); "hello" is examples/hello, a Go wasip1 module.
//
// "echo-plaintext" is "echo" with the store left unsealed: the baseline of
// the cost of encryption at rest, to be compared with "echo" in one run.
// "echo-postgres" is "echo" on PostgreSQL (WARD_TEST_POSTGRES; skipped
// without it).
func BenchmarkEndToEnd(b *testing.B) {
	for _, bc := range []struct {
		name, fn            string
		tasks               int
		plaintext, postgres bool
	}{
		{"echo", "echo", 20000, false, false},
		{"echo-plaintext", "echo", 20000, true, false},
		{"echo-postgres", "echo", 20000, false, true},
		{"hello", "hello", 2000, false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := server.Config{ShutdownGrace: time.Second, Slots: benchSlots(b)}
			if bc.plaintext {
				cfg = server.Plaintext(cfg)
			}
			if bc.postgres {
				cfg.StoreDSN = pgtest.DSN(b)
			}
			n := startNode(b, b.TempDir(), cfg)
			ctx := context.Background()
			if bc.fn == "echo" {
				deployEcho(b, n.cl, "echo")
			} else if _, err := n.srv.DeployExamples(ctx, "../../examples", b.TempDir()); err != nil {
				b.Skip(err)
			}
			var total int
			var elapsed time.Duration
			for b.Loop() {
				start := time.Now()
				submitAll(b, n.cl, bc.fn, bc.tasks, 1000)
				waitIdle(b, n, bc.fn)
				elapsed += time.Since(start)
				total += bc.tasks
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "tasks/s")
			checkSucceeded(b, n.cl, bc.fn)
		})
	}
}

// BenchmarkEnqueueToStart submits trivial tasks one at a time at a steady
// rate and reports the p50 and p99 of started_at − created_at.
func BenchmarkEnqueueToStart(b *testing.B) {
	const rate, count = 500, 1000 // tasks/s, tasks per round
	n := startNode(b, b.TempDir(), server.Config{ShutdownGrace: time.Second})
	deployEcho(b, n.cl, "echo")
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		ids := make([]string, 0, count)
		tick := time.NewTicker(time.Second / rate)
		for range count {
			<-tick.C
			tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "echo", Payload: json.RawMessage(`{}`)})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, tk.ID)
		}
		tick.Stop()
		waitIdle(b, n, "echo")
		for _, id := range ids {
			tk, err := n.cl.GetTask(ctx, ward.DefaultProject, id)
			if err != nil || tk.StartedAt == nil {
				b.Fatalf("task %s: %v", id, err)
			}
			lat = append(lat, tk.StartedAt.Sub(tk.CreatedAt))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// benchSlots reads WARD_BENCH_SLOTS (runner slots; 0 = the default).
func benchSlots(b *testing.B) int {
	v := os.Getenv("WARD_BENCH_SLOTS")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("WARD_BENCH_SLOTS: %v", err)
	}
	return n
}

// submitAll submits count tasks in batches from two concurrent clients.
func submitAll(b *testing.B, cl *client.Client, fn string, count, batch int) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	batches := make(chan int)
	for range 2 {
		wg.Go(func() {
			for first := range batches {
				reqs := make([]ward.SubmitRequest, min(batch, count-first))
				for i := range reqs {
					reqs[i] = ward.SubmitRequest{Function: fn, Payload: json.RawMessage(fmt.Sprintf(`{"name":"b%d"}`, first+i))}
				}
				if _, err := cl.SubmitBatch(ctx, ward.DefaultProject, reqs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for first := 0; first < count; first += batch {
		batches <- first
	}
	close(batches)
	wg.Wait()
}

// waitIdle returns once no task of fn is queued or running. It asks the
// store directly: cheap index lookups that barely load the node.
func waitIdle(b *testing.B, n *node, fn string) {
	b.Helper()
	ctx := context.Background()
	for {
		_, queued, err := n.srv.Store.NextRunAt(ctx)
		if err != nil {
			b.Fatal(err)
		}
		running, err := n.srv.Store.CountRunning(ctx, ward.DefaultProject, fn)
		if err != nil {
			b.Fatal(err)
		}
		if !queued && running == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// checkSucceeded fails the benchmark if any task of fn did not succeed.
func checkSucceeded(b *testing.B, cl *client.Client, fn string) {
	b.Helper()
	for _, st := range []ward.Status{ward.StatusFailed, ward.StatusCancelled} {
		l, err := cl.ListTasks(context.Background(), ward.DefaultProject, client.ListTasksOptions{Function: fn, Status: st, Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		if len(l.Tasks) > 0 {
			b.Fatalf("a task of %s ended %s: %+v", fn, st, l.Tasks[0].Error)
		}
	}
}

// BenchmarkSubmitInput is the submit path of the whole platform — client,
// HTTP, auth, the queue and the sealed store, as `ward dev` runs it — with
// the 4 KB order of internal/api/testdata: "plain" to a function without
// input rules, "rules" to one that keeps five pointers and tokenizes the
// customer id (the same customer each time), "rules-new-customer" with a
// new customer each time (a vault write per submission). The tasks are
// delayed so that only submission is measured.
func BenchmarkSubmitInput(b *testing.B) {
	raw, err := os.ReadFile("../api/testdata/order-4k.json")
	if err != nil {
		b.Fatal(err)
	}
	order := string(raw)
	rules := ward.FunctionSpec{Input: ward.Input{
		Fields:   []string{"/order/total", "/order/currency", "/order/items/*/qty", "/order/items/*/price", "/customer/id"},
		Tokenize: []string{"/customer/id"},
	}}
	for _, bc := range []struct {
		name    string
		spec    ward.FunctionSpec
		newCust bool
	}{{"plain", ward.FunctionSpec{}, false}, {"rules", rules, false}, {"rules-new-customer", rules, true}} {
		b.Run(bc.name, func(b *testing.B) {
			n := startNode(b, b.TempDir(), server.Config{ShutdownGrace: time.Second})
			ctx := context.Background()
			if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, "f", bc.spec); err != nil {
				b.Fatal(err)
			}
			if _, err := n.cl.UploadCode(ctx, ward.DefaultProject, "f", sandboxtest.Module("echo")); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				id := "cust-1"
				if bc.newCust {
					i++
					id = "cust-" + strconv.Itoa(i)
				}
				payload := json.RawMessage(strings.Replace(order, `"cust-1"`, strconv.Quote(id), 1))
				if _, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "f", Payload: payload, DelayS: 3600}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInvoke is a synchronous invoke of the trivial function over
// HTTP, one at a time: the latency of the whole path (auth, store the
// task, lease it, run it, complete it, answer).
func BenchmarkInvoke(b *testing.B) {
	n := startNode(b, b.TempDir(), server.Config{ShutdownGrace: time.Second})
	deployEcho(b, n.cl, "echo")
	ctx := context.Background()
	payload := []byte(`{"name":"ada"}`)
	for b.Loop() {
		res, err := n.cl.Invoke(ctx, ward.DefaultProject, "echo", payload)
		if err != nil {
			b.Fatal(err)
		}
		if string(res.Body) != string(payload) {
			b.Fatalf("invoke answered %q", res.Body)
		}
	}
}

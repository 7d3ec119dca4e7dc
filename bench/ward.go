package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/server"
)

// wardSystem is ward as `ward dev` runs it — API over loopback HTTP, the
// sealed store, the in-process runner, each task in the wasm sandbox — on
// embedded SQLite or on PostgreSQL. Tasks run the trivial module (echo).
func wardSystem(store string, module []byte) System {
	return System{
		Name:  "ward",
		Store: store,
		Settings: []string{
			"runner slots=default (32 per CPU)",
			"task=echo.wasm (stdin to stdout), encrypted at rest",
			"insert=POST …/tasks/batch over HTTP",
		},
		Open: func(ctx context.Context, env *Env) (Queue, error) {
			return openWard(ctx, env, store == "PostgreSQL", module)
		},
	}
}

// wardNode is one in-process ward platform with the echo function deployed.
type wardNode struct {
	srv    *server.Server
	cl     *client.Client
	stop   func() error
	dropDB func(context.Context) error
}

const wardFunction = "echo"

func openWard(ctx context.Context, env *Env, postgres bool, module []byte) (*wardNode, error) {
	cfg := server.Config{
		DataDir:       env.Dir,
		Addr:          "127.0.0.1:0",
		Logger:        env.Logger,
		ShutdownGrace: time.Second,
	}
	n := &wardNode{dropDB: func(context.Context) error { return nil }}
	if postgres {
		dsn, drop, err := env.Postgres.Fresh(ctx)
		if err != nil {
			return nil, err
		}
		cfg.StoreDSN, n.dropDB = dsn, drop
	}
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		n.dropDB(ctx)
		return nil, err
	}
	n.srv = srv
	tok, _, err := srv.AdminToken(ctx, "")
	if err == nil {
		n.cl, err = client.New(srv.URL(), tok)
	}
	if err != nil {
		srv.Close()
		n.dropDB(ctx)
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(sctx)
		srv.Close()
		done <- err
	}()
	var once sync.Once
	var serr error
	n.stop = func() error {
		once.Do(func() {
			cancel()
			serr = <-done
		})
		return serr
	}
	if err := n.deploy(ctx, wardFunction, module); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// deploy creates function fn with the given code.
func (n *wardNode) deploy(ctx context.Context, fn string, module []byte) error {
	if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, fn, ward.DefaultSpec()); err != nil {
		return err
	}
	_, err := n.cl.UploadCode(ctx, ward.DefaultProject, fn, module)
	return err
}

func (n *wardNode) Close() error {
	err := n.stop()
	return errors.Join(err, n.dropDB(context.Background()))
}

func (n *wardNode) Throughput(ctx context.Context, count, batch int) (insert, total time.Duration, err error) {
	start := time.Now()
	for first := 0; first < count; first += batch {
		reqs := make([]ward.SubmitRequest, min(batch, count-first))
		for i := range reqs {
			reqs[i] = ward.SubmitRequest{Function: wardFunction, Payload: json.RawMessage(`{"n":` + strconv.Itoa(first+i) + `}`)}
		}
		if _, err := n.cl.SubmitBatch(ctx, ward.DefaultProject, reqs); err != nil {
			return 0, 0, err
		}
	}
	insert = time.Since(start)
	if err := n.waitIdle(ctx); err != nil {
		return 0, 0, err
	}
	total = time.Since(start)
	return insert, total, n.checkSucceeded(ctx)
}

// waitIdle returns once no task is queued or running. It asks the store
// directly: index lookups that barely load the platform.
func (n *wardNode) waitIdle(ctx context.Context) error {
	for {
		_, queued, err := n.srv.Store.NextRunAt(ctx)
		if err != nil {
			return err
		}
		running, err := n.srv.Store.CountRunning(ctx, ward.DefaultProject, wardFunction)
		if err != nil {
			return err
		}
		if !queued && running == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// checkSucceeded fails if a task failed.
func (n *wardNode) checkSucceeded(ctx context.Context) error {
	l, err := n.cl.ListTasks(ctx, ward.DefaultProject, client.ListTasksOptions{Function: wardFunction, Status: ward.StatusFailed, Limit: 1})
	if err != nil {
		return err
	}
	if len(l.Tasks) > 0 {
		return fmt.Errorf("ward: task %s failed: %+v", l.Tasks[0].ID, l.Tasks[0].Error)
	}
	return nil
}

func (n *wardNode) Latency(ctx context.Context, count int, rate float64) ([]time.Duration, error) {
	type sent struct {
		id string
		at time.Time
	}
	tasks := make([]sent, 0, count)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range count {
		<-tick.C
		at := time.Now()
		tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: wardFunction, Payload: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, sent{tk.ID, at})
	}
	if err := n.waitIdle(ctx); err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, count)
	for _, s := range tasks {
		tk, err := n.cl.GetTask(ctx, ward.DefaultProject, s.id)
		if err != nil {
			return nil, err
		}
		if tk.StartedAt == nil || tk.Status != ward.StatusSucceeded {
			return nil, fmt.Errorf("ward: task %s is %s", tk.ID, tk.Status)
		}
		lat = append(lat, tk.StartedAt.Sub(s.at))
	}
	return lat, nil
}

// invokeFixed runs workload c at a fixed rate: count synchronous invokes,
// one started every 1/rate seconds whether or not earlier ones have
// answered (so a slow answer cannot slow the offered load down), each
// latency counted from the moment its request was due.
func (n *wardNode) invokeFixed(ctx context.Context, count int, rate float64) ([]time.Duration, error) {
	lat := make([]time.Duration, count)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := range count {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Go(func() {
			if err := n.invokeOnce(ctx, i); err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			lat[i] = time.Since(due)
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return lat, nil
}

// invokeSaturated runs workload c at saturation: clients invoking back to
// back for d, and returns the requests per second and each latency.
func (n *wardNode) invokeSaturated(ctx context.Context, clients int, d time.Duration) (float64, []time.Duration, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; time.Now().Before(end); i++ {
				t0 := time.Now()
				if err := n.invokeOnce(ctx, c*1_000_000+i); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, nil, firstErr
	}
	return float64(len(lat)) / time.Since(start).Seconds(), lat, nil
}

// invokeOnce invokes the echo function and checks it answered its payload.
func (n *wardNode) invokeOnce(ctx context.Context, i int) error {
	payload := []byte(`{"n":` + strconv.Itoa(i) + `}`)
	res, err := n.cl.Invoke(ctx, ward.DefaultProject, wardFunction, payload)
	if err != nil {
		return err
	}
	if !slices.Equal(res.Body, payload) {
		return fmt.Errorf("ward: invoke answered %q", res.Body)
	}
	return nil
}

// coldStart runs workload d count times: each a new function with a module
// no runner has seen (echo with a custom section that makes its digest
// new), uploaded, then invoked once. It returns, per module, the upload's
// time and the first result's time after the upload.
func (n *wardNode) coldStart(ctx context.Context, module []byte, count int) (upload, first []time.Duration, err error) {
	for i := range count {
		fn := fmt.Sprintf("cold-%d-%d", time.Now().UnixNano(), i)
		if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, fn, ward.DefaultSpec()); err != nil {
			return nil, nil, err
		}
		code := withCustomSection(module, "ward-bench", []byte(fn))
		t0 := time.Now()
		if _, err := n.cl.UploadCode(ctx, ward.DefaultProject, fn, code); err != nil {
			return nil, nil, err
		}
		t1 := time.Now()
		payload := []byte(`{"cold":true}`)
		res, err := n.cl.Invoke(ctx, ward.DefaultProject, fn, payload)
		if err != nil {
			return nil, nil, err
		}
		if !slices.Equal(res.Body, payload) {
			return nil, nil, fmt.Errorf("ward: cold invoke answered %q", res.Body)
		}
		upload = append(upload, t1.Sub(t0))
		first = append(first, time.Since(t1))
	}
	return upload, first, nil
}

// withCustomSection returns module with a custom section appended: the same
// code under a new digest.
func withCustomSection(module []byte, name string, data []byte) []byte {
	body := binary.AppendUvarint(nil, uint64(len(name)))
	body = append(body, name...)
	body = append(body, data...)
	out := slices.Clip(module)
	out = append(out, 0) // custom section id
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

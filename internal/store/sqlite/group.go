package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wardhq/ward/internal/store"
)

// insertGroup commits concurrent InsertTasks calls together (group commit).
// The store has one write connection, so concurrent submissions queue for
// it anyway; a call that finds another one writing waits, and the calls
// that gathered meanwhile then go in one transaction, each in a savepoint
// of its own, so that one call's error undoes its own writes only. A lone
// call is one transaction, as before.
type insertGroup struct {
	mu      sync.Mutex
	queue   []*insertCall
	writing bool
	groups  atomic.Int64 // transactions written, for tests
}

// insertCall is one InsertTasks call waiting for its group.
type insertCall struct {
	ctx  context.Context
	p    *store.InsertTasksParams
	out  []store.InsertResult
	err  error
	done chan struct{} // closed when out and err are set
	lead chan struct{} // closed when this call is to write the next group
}

// do runs p in the next group and returns its results.
func (g *insertGroup) do(ctx context.Context, s *Store, p *store.InsertTasksParams) ([]store.InsertResult, error) {
	c := &insertCall{ctx: ctx, p: p, done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	leader := !g.writing
	g.writing = true
	g.mu.Unlock()
	if !leader {
		select {
		case <-c.done:
			return c.out, c.err
		case <-c.lead:
		}
	}
	// This call writes the group gathered by the time the write
	// connection is free, itself included, then hands the writing over to
	// the first call that came meanwhile.
	s.insertGroup()
	g.mu.Lock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead)
	} else {
		g.writing = false
	}
	g.mu.Unlock()
	<-c.done
	return c.out, c.err
}

// insertGroup takes the calls gathered once the write connection is free,
// writes them in one transaction and completes each call.
func (s *Store) insertGroup() {
	s.inserts.groups.Add(1)
	var batch []*insertCall
	err := s.write(context.Background(), func(tx *sql.Tx) error {
		s.inserts.mu.Lock()
		batch = s.inserts.queue
		s.inserts.queue = nil
		s.inserts.mu.Unlock()
		if len(batch) == 1 {
			// Alone: the call's error undoes the transaction.
			c := batch[0]
			if c.err = c.ctx.Err(); c.err != nil {
				return c.err
			}
			c.out, c.err = s.insertBatch(context.WithoutCancel(c.ctx), tx, c.p)
			return c.err
		}
		for _, c := range batch {
			if c.err = c.ctx.Err(); c.err != nil {
				continue // its caller has gone: nothing of it is written
			}
			if _, err := tx.Exec(`SAVEPOINT insert_call`); err != nil {
				return err
			}
			c.out, c.err = s.insertBatch(context.WithoutCancel(c.ctx), tx, c.p)
			if c.err != nil {
				if _, err := tx.Exec(`ROLLBACK TO insert_call`); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(`RELEASE insert_call`); err != nil {
				return err
			}
		}
		return nil
	})
	if batch == nil {
		// The transaction never began: fail what has gathered.
		s.inserts.mu.Lock()
		batch = s.inserts.queue
		s.inserts.queue = nil
		s.inserts.mu.Unlock()
	}
	for _, c := range batch {
		if c.err == nil && err != nil {
			c.err = fmt.Errorf("sqlite: insert tasks: %w", err)
		}
		if c.err != nil {
			c.out = nil
		}
		close(c.done)
	}
}

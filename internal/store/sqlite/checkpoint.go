package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointEvery is how often the checkpointer copies the WAL into the
// database file.
const checkpointEvery = 200 * time.Millisecond

// checkpointer copies committed WAL frames into the database file from a
// connection of its own, in PASSIVE mode, which waits for no reader and
// no writer. Left to SQLite, a checkpoint runs inside the commit that
// crosses the WAL threshold and holds the one write connection while it
// copies: measured as a 20 ms stall that set the p99 of synchronous
// invokes. The write connection keeps a far larger threshold as a safety
// net, should this fall behind.
type checkpointer struct {
	db     *sql.DB
	stop   context.CancelFunc
	done   sync.WaitGroup
	frames atomic.Int64 // frames copied so far, for tests
}

// startCheckpointer runs a checkpointer on db until close, logging its
// failures to log.
func startCheckpointer(db *sql.DB, log *slog.Logger) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, stop: cancel}
	c.done.Go(func() {
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.run(ctx); err != nil && ctx.Err() == nil {
					log.Warn("sqlite: checkpoint", "err", err)
				}
			}
		}
	})
	return c
}

// run copies what it can of the WAL now.
func (c *checkpointer) run(ctx context.Context) error {
	var busy, logFrames, copied int64
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied); err != nil {
		return fmt.Errorf("wal_checkpoint: %w", err)
	}
	if copied > 0 {
		c.frames.Add(copied)
	}
	return nil
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	c.stop()
	c.done.Wait()
	return c.db.Close()
}

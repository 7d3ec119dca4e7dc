package postgres

import (
	"context"
	"time"
)

// workChannel is the LISTEN/NOTIFY channel that says work may be available.
const workChannel = "ward_work"

// Notify implements store.Notifier: NOTIFY on the work channel.
func (s *Store) Notify(ctx context.Context) {
	if _, err := s.pool.Exec(context.WithoutCancel(ctx), `SELECT pg_notify('`+workChannel+`', '')`); err != nil {
		s.log.Warn("postgres: notify", "err", err)
	}
}

// Listen implements store.Notifier with LISTEN on a connection of its own.
func (s *Store) Listen(ctx context.Context, wake func()) error {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listen(ctx, wake)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("postgres: listen for work; reconnecting", "err", err, "in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
		wake() // notifications may have been missed while disconnected
	}
	return nil
}

// listen holds one connection in LISTEN until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, wake func()) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection will be in LISTEN state: it never goes back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+workChannel); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}

package postgres

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wardhq/ward/internal/store"
)

// The store's LISTEN/NOTIFY channels (named per schema, see Open): one
// says work may be available, the other carries Broadcaster messages,
// base64-encoded, since a notification's payload is text of under 8000
// bytes.

// Notify implements store.Notifier: NOTIFY on the work channel.
func (s *Store) Notify(ctx context.Context) {
	if _, err := s.pool.Exec(context.WithoutCancel(ctx), `SELECT pg_notify($1, '')`, s.workChannel); err != nil {
		s.log.Warn("postgres: notify", "err", err)
	}
}

// Listen implements store.Notifier with LISTEN on a connection of its own.
func (s *Store) Listen(ctx context.Context, wake func()) error {
	return s.listen(ctx, s.workChannel, func(*pgconn.Notification) { wake() }, wake)
}

// Broadcast implements store.Broadcaster with NOTIFY on the bus channel.
func (s *Store) Broadcast(ctx context.Context, msg []byte) error {
	if len(msg) > store.MaxBroadcast {
		return fmt.Errorf("postgres: broadcast of %d bytes exceeds %d", len(msg), store.MaxBroadcast)
	}
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.busChannel, base64.StdEncoding.EncodeToString(msg))
	return err
}

// Subscribe implements store.Broadcaster with LISTEN on a connection of
// its own. A payload that is not base64 (not sent by Broadcast) is dropped.
func (s *Store) Subscribe(ctx context.Context, fn func(msg []byte)) error {
	var buf []byte
	return s.listen(ctx, s.busChannel, func(n *pgconn.Notification) {
		var err error
		if buf, err = base64.StdEncoding.AppendDecode(buf[:0], []byte(n.Payload)); err == nil {
			fn(buf)
		}
	}, nil)
}

// listen holds a connection in LISTEN on channel and calls fn with each
// notification until ctx ends. A lost connection is re-established after
// a backoff, and reconnected called then, since notifications may have
// been missed meanwhile.
func (s *Store) listen(ctx context.Context, channel string, fn func(*pgconn.Notification), reconnected func()) error {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, channel, fn)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("postgres: listen; reconnecting", "channel", channel, "err", err, "in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
		if reconnected != nil {
			reconnected()
		}
	}
	return nil
}

// listenOnce holds one connection in LISTEN until it fails or ctx ends.
func (s *Store) listenOnce(ctx context.Context, channel string, fn func(*pgconn.Notification)) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection will be in LISTEN state: it never goes back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n)
	}
}

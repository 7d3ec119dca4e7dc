package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/server"
	"github.com/wardhq/ward/internal/store/postgres/pgtest"
)

// TestOnPostgres runs the platform on a PostgreSQL store, with the keystore
// in a database of its own (here: a schema of its own): tasks run, and a
// restart keeps them.
func TestOnPostgres(t *testing.T) {
	dsn, keys := pgtest.DSN(t), pgtest.DSN(t)
	dir := t.TempDir()
	ctx := context.Background()
	cfg := server.Config{ShutdownGrace: time.Second, StoreDSN: dsn, KeystoreDSN: keys}
	n := startNode(t, dir, cfg)
	deployEcho(t, n.cl, "echo")
	reqs := make([]ward.SubmitRequest, 200)
	for i := range reqs {
		reqs[i] = ward.SubmitRequest{Function: "echo", Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	tasks, err := n.cl.SubmitBatch(ctx, ward.DefaultProject, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, tk := range tasks {
		tk, err := n.cl.AwaitTask(ctx, ward.DefaultProject, tk.ID)
		if err != nil || tk.Status != ward.StatusSucceeded {
			t.Fatalf("task %d: %v %+v", i, err, tk)
		}
		res, err := n.cl.Result(ctx, ward.DefaultProject, tk.ID)
		if err != nil || string(res) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("task %d result %q, %v", i, res, err)
		}
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "keystore.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a keystore file was made beside a keystore database: %v", err)
	}
	n = startNode(t, dir, cfg)
	if tk, err := n.cl.GetTask(ctx, ward.DefaultProject, tasks[0].ID); err != nil || tk.Status != ward.StatusSucceeded {
		t.Fatalf("task after restart: %v %+v", err, tk)
	}
}

// TestPostgresUnreachable: a server that cannot reach PostgreSQL retries,
// saying so, and gives up with a clear error only when its context ends.
func TestPostgresUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	_, err = server.Open(ctx, server.Config{
		DataDir: t.TempDir(), Addr: "127.0.0.1:0",
		StoreDSN: "postgres://ward:s3cretpw@" + addr + "/ward?sslmode=disable&connect_timeout=1",
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err == nil || !strings.Contains(err.Error(), "never became reachable") {
		t.Fatalf("Open = %v, want an unreachable error after retrying", err)
	}
	if n := bytes.Count(logs.Bytes(), []byte("PostgreSQL is unreachable; retrying")); n < 2 {
		t.Errorf("retried %d times, want at least 2:\n%s", n, logs.Bytes())
	}
	if bytes.Contains(logs.Bytes(), []byte("s3cretpw")) || strings.Contains(err.Error(), "s3cretpw") {
		t.Error("the password reached the log or the error")
	}
	// A connection string that does not parse fails at once.
	_, err = server.Open(context.Background(), server.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", StoreDSN: "postgres://%zz"})
	if err == nil || strings.Contains(err.Error(), "never became reachable") {
		t.Fatalf("bad DSN: %v", err)
	}
}

package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// Postgres is the PostgreSQL server the command uses: one given by URL, or
// one it starts (and later stops) in its own directory, installing the
// server with apt-get where none is found (by the repository's
// .ci/postgres.sh).
type Postgres struct {
	url      *url.URL // to an existing database, for administration
	Version  string
	Settings []string // the durability settings that matter, as the server reports them
	stop     func() error
}

// freshDatabases numbers the databases Fresh makes in this process, across
// every Postgres (tests run several at once against one server).
var freshDatabases atomic.Int64

// startPostgres connects to dsn, or when dsn is empty starts a server with
// the script under dir, with durable settings: fsync on, full page writes,
// synchronous_commit off (a commit survives a crash of the server process,
// and at most the last fraction of a second is lost if the machine fails:
// the durability of Redis's appendfsync everysec and SQLite's
// synchronous=NORMAL).
func startPostgres(ctx context.Context, dsn, script, dir string) (*Postgres, error) {
	p := &Postgres{stop: func() error { return nil }}
	if dsn == "" {
		// The server may run as another user (postgres refuses root), who
		// must reach its directory under dir.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		env := append(os.Environ(), "WARD_PG_DIR="+filepath.Join(dir, "postgres"), fmt.Sprintf("WARD_PG_PORT=%d", port), "WARD_PG_DURABLE=1")
		run := func(ctx context.Context, args ...string) (string, error) {
			cmd := exec.CommandContext(ctx, script, args...)
			cmd.Env = env
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				return "", fmt.Errorf("%s %s: %w\n%s", script, strings.Join(args, " "), err, stderr.String())
			}
			return strings.TrimSpace(string(out)), nil
		}
		if dsn, err = run(ctx); err != nil {
			return nil, err
		}
		p.stop = func() error {
			// Stopped even when ctx has ended: the server must not outlive us.
			_, err := run(context.WithoutCancel(ctx), "stop")
			return err
		}
	}
	u, err := url.Parse(dsn)
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("postgres URL: %w", err)
	}
	p.url = u
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&p.Version); err != nil {
		p.stop()
		return nil, err
	}
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes", "shared_buffers"} {
		var v string
		if err := conn.QueryRow(ctx, `SELECT current_setting($1)`, name).Scan(&v); err != nil {
			p.stop()
			return nil, err
		}
		p.Settings = append(p.Settings, name+"="+v)
	}
	return p, nil
}

// Fresh creates an empty database and returns its URL and a function that
// drops it.
func (p *Postgres) Fresh(ctx context.Context) (string, func(context.Context) error, error) {
	name := fmt.Sprintf("bench_%d_%d", os.Getpid(), freshDatabases.Add(1))
	conn, err := pgx.Connect(ctx, p.url.String())
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	u := *p.url
	u.Path = "/" + name
	drop := func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, p.url.String())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	return u.String(), drop, nil
}

// Close stops the server if the command started it.
func (p *Postgres) Close() error { return p.stop() }

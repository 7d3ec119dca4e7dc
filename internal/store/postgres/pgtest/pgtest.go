// Package pgtest gives tests a PostgreSQL of their own: the server named by
// WARD_TEST_POSTGRES (a connection URL; .ci/postgres.sh starts one and
// prints it) and a fresh schema per test. Without the variable, tests skip
// and say why.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the test server's URL.
const EnvURL = "WARD_TEST_POSTGRES"

// URL returns the test server's URL, or skips the test.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL tests (run .ci/postgres.sh to start a server and print the URL)", EnvURL)
	}
	return u
}

// DSN creates an empty schema ward_test_<random> and drops it when
// the test ends; it returns the DSN whose search_path is that schema.
func DSN(t testing.TB) string {
	t.Helper()
	base := URL(t)
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "ward_test_" + hex.EncodeToString(b)
	ctx := context.WithoutCancel(t.Context())
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connect to drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return WithParams(t, base, map[string]string{"search_path": schema, "pool_max_conns": "4"})
}

// WithParams adds query parameters to a postgres:// URL.
func WithParams(t testing.TB, base string, params map[string]string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", EnvURL)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

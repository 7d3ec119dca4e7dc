package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store/postgres/pgtest"
)

// benchDatabase creates a database of its own on the PostgreSQL server of
// WARD_TEST_POSTGRES (dropped at the end) and returns its URL.
func benchDatabase(b *testing.B) string {
	b.Helper()
	base := os.Getenv(pgtest.EnvURL)
	if base == "" {
		b.Skip("set " + pgtest.EnvURL + " to a PostgreSQL URL")
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "ward_bench_" + hex.EncodeToString(r[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// BenchmarkClusterThroughput measures end-to-end throughput of the trivial
// echo task on PostgreSQL: one `ward server` process, and one or two
// remote `ward runner` processes (16 slots each) on the same machine.
// Each op is one task: b.N tasks are submitted in batches of 500 and the
// clock stops when the last has succeeded.
//
//	go test -run '^$' -bench BenchmarkClusterThroughput -benchtime 5000x ./internal/server/
func BenchmarkClusterThroughput(b *testing.B) {
	for _, runners := range []int{1, 2} {
		b.Run("runners="+strconv.Itoa(runners), func(b *testing.B) {
			benchCluster(b, runners)
		})
	}
}

func benchCluster(b *testing.B, runners int) {
	bin, err := buildWard()
	if err != nil {
		b.Fatal(err)
	}
	storeDSN, keystoreDSN := benchDatabase(b), benchDatabase(b)
	c := newCluster(b, bin, storeDSN, keystoreDSN, 1)
	c.deploy("echo", "echo", ward.FunctionSpec{})
	for i := range runners {
		c.runner("runner-"+strconv.Itoa(i+1), c.internal, "--slots", "16", "--log-level", "warn")
	}
	// Warm up: every runner has registered and compiled the module.
	submitMany(b, c.admin, "echo", 200)
	waitSucceeded(b, storeDSN, 200)

	b.ResetTimer()
	start := time.Now()
	submitMany(b, c.admin, "echo", b.N)
	waitSucceeded(b, storeDSN, 200+b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
}

// waitSucceeded polls until n tasks have succeeded.
func waitSucceeded(b *testing.B, dsn string, n int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		got, _ := counts(b, dsn)
		if got[ward.StatusSucceeded] >= n {
			return
		}
		if got[ward.StatusFailed] > 0 || time.Now().After(deadline) {
			b.Fatalf("tasks: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

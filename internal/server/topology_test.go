package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/server"
)

// TestTopology reads GET /v1/topology of an embedded server: its
// listener, the store and keystore files, the key files, the module cache,
// the in-process runner and the log sinks, and no secret of any kind.
func TestTopology(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir, server.Config{MetricsAddr: "127.0.0.1:0"})
	ctx := context.Background()
	awaitRunners(t, n.cl)
	topo, err := n.cl.Topology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := topo.Server
	if s.Version != ward.Version() || !s.InProcessRunner || !strings.HasPrefix(s.API, "127.0.0.1:") ||
		strings.HasSuffix(s.API, ":0") || !strings.HasPrefix(s.Metrics, "127.0.0.1:") || s.Internal != "" {
		t.Errorf("server = %+v", s)
	}
	want := map[string]ward.Place{
		"store":        {Kind: "sqlite", Where: filepath.Join(dir, "ward.db"), Encrypted: true},
		"keystore":     {Kind: "sqlite", Where: filepath.Join(dir, "keys", "keystore.db"), Encrypted: true},
		"root_key":     {Kind: "file", Where: filepath.Join(dir, "keys", "root.key")},
		"signing_key":  {Kind: "file", Where: filepath.Join(dir, "keys", "signing.key")},
		"module_cache": {Kind: "directory", Where: filepath.Join(dir, "cache", "wasm")},
		"task_logs":    {Kind: "sqlite", Where: filepath.Join(dir, "ward.db"), Encrypted: true},
		"live_logs":    {Kind: "memory"},
		"audit_log":    {Kind: "file", Where: filepath.Join(dir, "audit.log")},
		"server_log":   {Kind: "stderr"},
	}
	seen := map[string]bool{}
	for _, p := range append(topo.Places, topo.LogSinks...) {
		seen[p.Name] = true
		w, ok := want[p.Name]
		if !ok {
			continue
		}
		if p.Kind != w.Kind || (w.Where != "" && p.Where != w.Where) || p.Encrypted != w.Encrypted || p.Holds == "" {
			t.Errorf("%s = %+v, want %+v", p.Name, p, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no %s in the topology", name)
		}
	}
	if seen["live_log_bus"] || seen["cluster_ca"] {
		t.Error("an embedded server lists a cluster's places")
	}
	if r := topo.Runners[0]; r.Remote || len(r.Drivers) == 0 {
		t.Errorf("runner = %+v, want the in-process one", r)
	}
	b, _ := json.Marshal(topo)
	for _, f := range []string{"root.key", "signing.key"} {
		key, err := os.ReadFile(filepath.Join(dir, "keys", f))
		if err != nil || len(key) < 16 {
			t.Fatalf("read %s: %v", f, err)
		}
		if strings.Contains(string(b), strings.TrimSpace(string(key))[:16]) {
			t.Errorf("the topology holds %s's content", f)
		}
	}
}

// awaitRunners returns the runners once one has registered: the
// in-process runner registers when it starts, after the node is open.
func awaitRunners(t *testing.T, cl *client.Client) []ward.Runner {
	t.Helper()
	for try := 0; ; try++ {
		rs, err := cl.ListRunners(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			return rs
		}
		if try == 600 {
			t.Fatal("no runner registered")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// describeDSN names host, port and database, and nothing else of the URL.
func TestDescribeDSN(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]string{
		"postgres://ward:s3cret-pw@db.example.com:5433/wardstore?sslmode=require&application_name=x": "db.example.com:5433/wardstore",
		"host=10.0.0.5 port=5432 user=ward password=s3cret-pw dbname=keys":                           "10.0.0.5:5432/keys",
		"postgres://ward:s3cret-pw@[::1]:5432/ward":                                                  "[::1]:5432/ward",
		"postgres:// bad url %": "postgres (unparsable URL)",
	} {
		if got := server.DescribeDSN(dsn); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("DescribeDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
}

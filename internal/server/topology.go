package server

import (
	"cmp"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wardhq/ward"
)

// topology describes this server and where it keeps and sends data, for
// GET /v1/topology (the API adds the runners). It names paths, hosts and
// databases, never credentials.
func (s *Server) topology() ward.Topology {
	cfg := s.cfg
	keys := cfg.KeysDir
	host, _ := os.Hostname()
	t := ward.Topology{Server: ward.TopologyServer{
		Version: ward.Version(), Host: host, API: addrOf(s.ln, cfg.Addr),
		Internal: cfg.InternalAddr, Metrics: addrOf(s.mln, cfg.MetricsAddr), InProcessRunner: s.Runner != nil,
	}}
	const bodies = "projects, functions, tasks with their payloads, results and logs, code, config, secrets, runners, alert rules"
	if cfg.StoreDSN != "" {
		t.Places = append(t.Places, ward.Place{Name: "store", Kind: "postgres", Where: describeDSN(cfg.StoreDSN), Holds: bodies, Encrypted: !cfg.plaintext})
	} else {
		t.Places = append(t.Places, ward.Place{Name: "store", Kind: "sqlite", Where: filepath.Join(cfg.DataDir, "ward.db"), Holds: bodies, Encrypted: !cfg.plaintext})
	}
	const epochs = "each project's epoch keys, wrapped by the root key"
	if cfg.KeystoreDSN != "" {
		t.Places = append(t.Places, ward.Place{Name: "keystore", Kind: "postgres", Where: describeDSN(cfg.KeystoreDSN), Holds: epochs, Encrypted: true})
	} else {
		t.Places = append(t.Places, ward.Place{Name: "keystore", Kind: "sqlite", Where: filepath.Join(keys, "keystore.db"), Holds: epochs, Encrypted: true})
	}
	if cfg.RootKey != "" {
		t.Places = append(t.Places, ward.Place{Name: "root_key", Kind: "environment", Where: "WARD_ROOT_KEY", Holds: "the root key"})
	} else {
		t.Places = append(t.Places, ward.Place{Name: "root_key", Kind: "file", Where: filepath.Join(keys, "root.key"), Holds: "the root key"})
	}
	t.Places = append(t.Places, ward.Place{Name: "signing_key", Kind: "file", Where: filepath.Join(keys, "signing.key"), Holds: "the key that signs API tokens"})
	if cfg.InternalAddr != "" {
		t.Places = append(t.Places, ward.Place{Name: "cluster_ca", Kind: "directory", Where: keys, Holds: "the cluster CA that issues runner certificates"})
	}
	if s.Runner != nil {
		t.Places = append(t.Places, ward.Place{Name: "module_cache", Kind: "directory", Where: filepath.Join(cfg.DataDir, "cache", "wasm"), Holds: "machine code compiled from wasm functions' code"})
	}
	if s.Containers != nil {
		dir := cmp.Or(cfg.Containers.StateDir, filepath.Join(cfg.DataDir, "oci"))
		t.Places = append(t.Places, ward.Place{Name: "image_cache", Kind: "directory", Where: dir, Holds: "root filesystems unpacked from container functions' images, and running tasks' files"})
	}
	t.LogSinks = append(t.LogSinks,
		ward.Place{Name: "task_logs", Kind: t.Places[0].Kind, Where: t.Places[0].Where, Holds: "each task's log (stderr, secret values redacted)", Encrypted: !cfg.plaintext},
		ward.Place{Name: "live_logs", Kind: "memory", Where: "the server that leased the run", Holds: "the last 256 KiB of each running task's log, while it runs"},
	)
	if cfg.StoreDSN != "" {
		t.LogSinks = append(t.LogSinks, ward.Place{Name: "live_log_bus", Kind: "notify", Where: describeDSN(cfg.StoreDSN),
			Holds: "pieces of live logs passed between servers", Encrypted: true})
	}
	t.LogSinks = append(t.LogSinks,
		ward.Place{Name: "audit_log", Kind: "file", Where: filepath.Join(cfg.DataDir, "audit.log"), Holds: "who did what to which resource, hash-chained; no bodies or secret values"},
		ward.Place{Name: "server_log", Kind: "stderr", Where: "the server process", Holds: "operations and errors; no bodies or secret values"},
	)
	return t
}

// addrOf is a listener's address, or configured before it listens.
func addrOf(ln net.Listener, configured string) string {
	if ln != nil {
		return ln.Addr().String()
	}
	return configured
}

// describeDSN names a PostgreSQL database as host:port/database, leaving
// out the user, the password and every other setting.
func describeDSN(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "postgres (unparsable URL)"
	}
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		host = "unix:" + host
	}
	return net.JoinHostPort(host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
}

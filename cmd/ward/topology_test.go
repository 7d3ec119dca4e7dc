package main

import (
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

// writeTopology prints the server, the places, the log sinks and the
// runners, with control characters from the server made harmless.
func TestWriteTopology(t *testing.T) {
	t.Parallel()
	topo := ward.Topology{
		Server: ward.TopologyServer{Version: "v1.2.3", Host: "node-1", API: "10.0.0.1:7070", Internal: "10.0.0.1:7443", InProcessRunner: true},
		Places: []ward.Place{
			{Name: "store", Kind: "postgres", Where: "db:5432/ward", Holds: "tasks", Encrypted: true},
			{Name: "root_key", Kind: "environment", Where: "WARD_ROOT_KEY", Holds: "the root key"},
		},
		LogSinks: []ward.Place{{Name: "audit_log", Kind: "file", Where: "/var/lib/ward/audit.log\x1b[2J", Holds: "who did what"}},
		Runners:  []ward.Runner{{ID: "r_1", Name: "host-a", State: ward.RunnerActive, Drivers: []string{"wasm", "oci"}, Remote: true, Slots: 4, MemoryMB: 2048}},
	}
	var out strings.Builder
	if err := writeTopology(&out, topo); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"server node-1 (ward v1.2.3): api 10.0.0.1:7070, runners 10.0.0.1:7443; in-process runner: yes",
		"store", "db:5432/ward", "root_key", "WARD_ROOT_KEY",
		"/var/lib/ward/audit.log?[2J",
		"r_1", "wasm,oci", "2048",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\x1b") {
		t.Error("an escape character reached the terminal")
	}
	lines := strings.Split(got, "\n")
	if !strings.HasPrefix(lines[2], "PLACE") || !strings.Contains(lines[3], "yes") || !strings.Contains(lines[4], "no") {
		t.Errorf("places table:\n%s", got)
	}
}

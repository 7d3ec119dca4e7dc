// Command gosuid reports the ids and effective capabilities it runs with;
// the container probe runs it as a setuid-root file.
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	fmt.Printf("suid_uid=%d\nsuid_euid=%d\nsuid_capeff=%s\n", os.Getuid(), os.Geteuid(), capEff())
}

func capEff() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "error: " + err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "missing"
}

package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/wardhq/ward/internal/server"
)

// defaultOCIState is the container sandbox's directory: containers need
// root, and their unprivileged users must pass through its parents, which a
// data directory in a home directory does not allow.
const defaultOCIState = "/var/lib/ward/oci"

// containerFlags are the container sandbox's flags of 'ward dev' and
// 'ward runner run'.
type containerFlags struct {
	off        bool
	runtime    string
	stateDir   string
	overcommit float64
}

// register adds the flags.
func (c *containerFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&c.off, "no-containers", false, "run no container (oci) tasks, even where the host can")
	f.StringVar(&c.runtime, "oci-runtime", "runc", "the OCI runtime that runs container tasks (runc, or crun)")
	f.StringVar(&c.stateDir, "oci-state", defaultOCIState, "the container sandbox's directory: unpacked images, and running tasks' files on a tmpfs")
	f.Float64Var(&c.overcommit, "overcommit", 1, "admit tasks whose memory limits add up to this many times --memory-budget, with all containers capped together at the budget; above 1, a task the node's shortage kills fails with node_pressure")
}

// config returns the sandbox's settings, checked.
func (c *containerFlags) config() (server.Containers, error) {
	if c.overcommit < 1 {
		return server.Containers{}, usagef("--overcommit must be at least 1, not %v", c.overcommit)
	}
	if c.stateDir == "" {
		return server.Containers{}, usagef("--oci-state must name a directory")
	}
	if c.runtime == "" {
		return server.Containers{}, usageError{fmt.Errorf("--oci-runtime must name a program")}
	}
	return server.Containers{On: !c.off, Runtime: c.runtime, StateDir: c.stateDir, Overcommit: c.overcommit}, nil
}

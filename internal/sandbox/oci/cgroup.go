package oci

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the kernel's cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// v1Controllers are the cgroup v1 hierarchies the sandbox writes limits to
// or reads usage from.
var v1Controllers = []string{"memory", "pids", "cpu", "cpuacct"}

// cgroups manages the cgroups of a sandbox's tasks. Every task gets a
// cgroup of its own under the sandbox's parent, holding its limits; runc
// puts the container in a child of it ("ctr") and removes that child when
// the container ends, so the task cgroup keeps the usage figures until the
// sandbox has read them. On a v1 host each controller has a hierarchy of
// its own; on a v2 host there is one.
type cgroups struct {
	v2     bool
	parent string            // path below each hierarchy's root, e.g. "/ward"
	mounts map[string]string // v1: controller → mount point
	all    []string          // v1: every hierarchy's mount point, for cleanup
}

// taskLimits are a task cgroup's limits.
type taskLimits struct {
	memoryBytes int64
	pids        int64
	cpuQuotaUs  int64 // per 100 ms period; 0: no CPU cap
}

// cpuPeriodUs is the CPU bandwidth period.
const cpuPeriodUs = 100000

// openCgroups finds the host's cgroup hierarchies and creates the parent.
func openCgroups(parent string) (*cgroups, error) {
	if !strings.HasPrefix(parent, "/") || filepath.Clean(parent) != parent || parent == "/" {
		return nil, fmt.Errorf("cgroup parent %q must be a clean absolute path below the root", parent)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		return nil, fmt.Errorf("no cgroup file system at %s: %w", cgroupRoot, err)
	}
	c := &cgroups{parent: parent}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		c.v2 = true
		return c, c.setupV2()
	}
	mounts, all, err := v1Mounts("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, ctl := range v1Controllers {
		if mounts[ctl] == "" {
			return nil, fmt.Errorf("cgroup v1 controller %s is not mounted", ctl)
		}
	}
	c.mounts, c.all = mounts, all
	for _, ctl := range v1Controllers {
		if err := os.MkdirAll(filepath.Join(mounts[ctl], parent), 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", parent, err)
		}
	}
	return c, nil
}

// v1Mounts reads the cgroup v1 mount points from a mountinfo file.
func v1Mounts(mountinfo string) (map[string]string, []string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	mounts := map[string]string{}
	var all []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "id parent major:minor root mountpoint options … - fstype source superoptions"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 || tail[0] != "cgroup" {
			continue
		}
		point := fields[4]
		all = append(all, point)
		for opt := range strings.SplitSeq(tail[2], ",") {
			if slices.Contains(v1Controllers, opt) && mounts[opt] == "" {
				mounts[opt] = point
			}
		}
	}
	return mounts, all, sc.Err()
}

// setupV2 creates the parent and enables the controllers tasks need in
// every cgroup from the root down to it.
func (c *cgroups) setupV2() error {
	dir := cgroupRoot
	for part := range strings.SplitSeq(strings.TrimPrefix(c.parent, "/"), "/") {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0); err != nil {
			return fmt.Errorf("enable cgroup controllers in %s: %w", dir, err)
		}
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0); err != nil {
		return fmt.Errorf("enable cgroup controllers in %s: %w", dir, err)
	}
	return nil
}

// path returns the directory of the cgroup name (below the parent; "" for
// the parent itself) in the hierarchy of controller (ignored on v2).
func (c *cgroups) path(controller, name string) string {
	root := cgroupRoot
	if !c.v2 {
		root = c.mounts[controller]
	}
	return filepath.Join(root, c.parent, name)
}

// setParentMemory caps the memory of all tasks together (overcommit mode);
// 0 removes the cap.
func (c *cgroups) setParentMemory(bytes int64) error {
	if c.v2 {
		v := "max"
		if bytes > 0 {
			v = strconv.FormatInt(bytes, 10)
		}
		if err := write(c.path("", ""), "memory.max", v); err != nil {
			return err
		}
		return write(c.path("", ""), "memory.swap.max", "0")
	}
	v := "-1"
	if bytes > 0 {
		v = strconv.FormatInt(bytes, 10)
	}
	dir := c.path("memory", "")
	if bytes <= 0 {
		// memsw must stay at or above the plain limit: lift it first.
		_ = write(dir, "memory.memsw.limit_in_bytes", v)
		return write(dir, "memory.limit_in_bytes", v)
	}
	if err := write(dir, "memory.limit_in_bytes", v); err != nil {
		return err
	}
	_ = write(dir, "memory.memsw.limit_in_bytes", v) // absent without swap accounting
	return nil
}

// create makes the task cgroup name with its limits.
func (c *cgroups) create(name string, lim taskLimits) error {
	if c.v2 {
		dir := c.path("", name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		for _, kv := range [][2]string{
			{"memory.max", strconv.FormatInt(lim.memoryBytes, 10)},
			{"memory.swap.max", "0"},
			{"pids.max", strconv.FormatInt(lim.pids, 10)},
			{"cpu.max", cpuMax(lim.cpuQuotaUs)},
			{"cgroup.subtree_control", "+memory +pids +cpu"},
		} {
			if err := write(dir, kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, ctl := range v1Controllers {
		if err := os.Mkdir(c.path(ctl, name), 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	mem := c.path("memory", name)
	limit := strconv.FormatInt(lim.memoryBytes, 10)
	if err := write(mem, "memory.limit_in_bytes", limit); err != nil {
		return err
	}
	_ = write(mem, "memory.memsw.limit_in_bytes", limit) // absent without swap accounting
	_ = write(mem, "memory.swappiness", "0")             // absent on some kernels
	if err := write(c.path("pids", name), "pids.max", strconv.FormatInt(lim.pids, 10)); err != nil {
		return err
	}
	if lim.cpuQuotaUs > 0 {
		if err := write(c.path("cpu", name), "cpu.cfs_period_us", strconv.Itoa(cpuPeriodUs)); err != nil {
			return err
		}
		if err := write(c.path("cpu", name), "cpu.cfs_quota_us", strconv.FormatInt(lim.cpuQuotaUs, 10)); err != nil {
			return err
		}
	}
	return nil
}

func cpuMax(quotaUs int64) string {
	if quotaUs <= 0 {
		return "max " + strconv.Itoa(cpuPeriodUs)
	}
	return strconv.FormatInt(quotaUs, 10) + " " + strconv.Itoa(cpuPeriodUs)
}

// usage is what a task cgroup tells about a finished run.
type usage struct {
	peakBytes int64
	cpu       time.Duration
	// limitHit: the task reached its own memory limit (and an OOM kill
	// there is the task's doing).
	limitHit bool
	// oomKills counts processes of the task killed by an OOM killer of any
	// cgroup (v2 only; v1 keeps that count in the removed child).
	oomKills int64
}

// usage reads a task cgroup's figures.
func (c *cgroups) usage(name string) (usage, error) {
	var u usage
	if c.v2 {
		dir := c.path("", name)
		peak, err := readInt(dir, "memory.peak")
		if err != nil {
			return u, err
		}
		u.peakBytes = peak
		stat, err := readKeyed(dir, "cpu.stat")
		if err != nil {
			return u, err
		}
		u.cpu = time.Duration(stat["usage_usec"]) * time.Microsecond
		events, err := readKeyed(dir, "memory.events")
		if err != nil {
			return u, err
		}
		u.limitHit = events["oom"] > 0
		u.oomKills = events["oom_kill"]
		return u, nil
	}
	mem := c.path("memory", name)
	peak, err := readInt(mem, "memory.max_usage_in_bytes")
	if err != nil {
		return u, err
	}
	u.peakBytes = peak
	fails, err := readInt(mem, "memory.failcnt")
	if err != nil {
		return u, err
	}
	// With a memory+swap limit the kernel may count no failure at all
	// (seen on 6.x kernels); a peak at the limit tells the same.
	swapFails, _ := readInt(mem, "memory.memsw.failcnt")
	limit, err := readInt(mem, "memory.limit_in_bytes")
	if err != nil {
		return u, err
	}
	u.limitHit = fails > 0 || swapFails > 0 || peak >= limit
	cpu, err := readInt(c.path("cpuacct", name), "cpuacct.usage")
	if err != nil {
		return u, err
	}
	u.cpu = time.Duration(cpu)
	return u, nil
}

// parentPressure returns a counter of the parent's own memory limit being
// reached; it rises when tasks together outgrow an overcommitted node.
func (c *cgroups) parentPressure() int64 {
	if c.v2 {
		events, err := readKeyed(c.path("", ""), "memory.events.local")
		if err != nil {
			return 0
		}
		return events["oom"] + events["max"]
	}
	n, _ := readInt(c.path("memory", ""), "memory.failcnt")
	return n
}

// remove kills whatever is left in the task cgroup and deletes it, with
// its child, in every hierarchy.
func (c *cgroups) remove(name string) error {
	var dirs []string
	if c.v2 {
		dirs = []string{c.path("", name)}
	} else {
		for _, m := range c.all {
			dirs = append(dirs, filepath.Join(m, c.parent, name))
		}
	}
	var errs []error
	for _, dir := range dirs {
		if err := removeTree(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeParent deletes the parent where it is empty, and its own parents
// up to the root where they are empty too.
func (c *cgroups) removeParent() {
	roots := []string{cgroupRoot}
	if !c.v2 {
		roots = c.all
	}
	for _, root := range roots {
		for p := c.parent; p != "/"; p = filepath.Dir(p) {
			if unix.Rmdir(filepath.Join(root, p)) != nil {
				break
			}
		}
	}
}

// removeTree deletes a cgroup directory and its children, killing the
// processes still in them.
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for try := 0; ; try++ {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || try == 50 {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		killProcs(dir)
		time.Sleep(10 * time.Millisecond)
	}
}

// killProcs sends SIGKILL to every process in a cgroup.
func killProcs(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// tasks lists the task cgroups under the parent.
func (c *cgroups) tasks() []string {
	dir := c.path("memory", "")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func write(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("cgroup: write %s: %w", file, err)
	}
	return nil
}

func readInt(dir, file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", file, err)
	}
	return n, nil
}

// readKeyed reads a "key value" per line cgroup file.
func readKeyed(dir, file string) (map[string]int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	out := map[string]int64{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

package oci

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
)

// waitDelay bounds how long runc may take to end after its container was
// killed before runc itself is killed.
const waitDelay = 5 * time.Second

// Run implements sandbox.Sandbox: one fresh container from the prepared
// root filesystem, under the spec's limits. An image in the cache on disk
// counts as prepared, whichever process unpacked it.
func (s *Sandbox) Run(ctx context.Context, spec *sandbox.Spec) (sandbox.Outcome, error) {
	s.runs.Add(1)
	defer s.runs.Done()
	if s.closed.Load() {
		return sandbox.Outcome{}, errClosed
	}
	lim, err := spec.Limits(s.opts.MaxMemMB)
	if err != nil {
		return sandbox.Outcome{}, err
	}
	p := s.cached(spec.Digest)
	if p == nil {
		return sandbox.Outcome{}, ward.Errorf(ward.CodeNotFound, "oci: image %s is not prepared", short(spec.Digest))
	}
	if ctx.Err() != nil {
		return sandbox.ContextOutcome(ctx, lim.Timeout), nil
	}
	c := &container{s: s, id: newID(), p: p, spec: spec, lim: lim}
	if err := c.setup(); err != nil {
		c.cleanup(ctx)
		return sandbox.Outcome{}, err
	}
	out, err := c.run(ctx)
	c.cleanup(ctx)
	return out, err
}

// container is one task's container while it exists.
type container struct {
	s      *Sandbox
	id     string
	p      *prepared
	spec   *sandbox.Spec
	lim    sandbox.Limits
	dir    string // run/tasks/<id>: the bundle and the /ward files
	cgroup bool   // the task cgroup was made
}

// setup writes the bundle and the /ward files and makes the task cgroup.
func (c *container) setup() error {
	s := c.s
	c.dir = filepath.Join(s.run, "tasks", c.id)
	if err := os.Mkdir(c.dir, 0o711); err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	wardDir := filepath.Join(c.dir, "ward")
	uid, gid := int(c.p.uid), int(c.p.gid)
	if s.userNS != nil {
		uid, gid = uid+int(s.userNS.base), gid+int(s.userNS.base)
	}
	if err := writeFiles(wardDir, c.spec.Files, uid, gid); err != nil {
		return fmt.Errorf("oci: task files: %w", err)
	}
	env := append([]string(nil), c.p.env...)
	home := false
	for _, kv := range env {
		home = home || strings.HasPrefix(kv, "HOME=")
	}
	for k, v := range c.spec.Env {
		env = append(env, k+"="+v)
		home = home || k == "HOME"
	}
	if !home {
		// The runtime would set HOME to a directory the task cannot
		// write; /tmp is the one it can.
		env = append(env, "HOME=/tmp")
	}
	cs := &containerSpec{
		rootfs: c.p.rootfs, wardDir: wardDir, args: c.p.args, env: env, cwd: c.p.cwd,
		uid: c.p.uid, gid: c.p.gid, userNS: s.userNS, tmpBytes: c.lim.Tmp,
		cgroup: s.opts.CgroupParent + "/" + c.id + "/ctr",
	}
	b, err := json.Marshal(runtimeSpec(cs))
	if err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	quota := int64(s.opts.CPUs * cpuPeriodUs)
	if err := s.cg.create(c.id, taskLimits{memoryBytes: c.lim.Memory, pids: int64(s.opts.PidsLimit), cpuQuotaUs: quota}); err != nil {
		c.cgroup = true // partly made: remove what there is
		return fmt.Errorf("oci: %w", err)
	}
	c.cgroup = true
	return nil
}

// writeFiles writes the task's /ward files, readable only by the host
// user the task runs as, which cannot change them.
func writeFiles(dir string, files map[string][]byte, uid, gid int) error {
	dirs := []string{dir}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	for name, data := range files {
		clean := filepath.Clean(name)
		if filepath.IsAbs(clean) || clean == "." || strings.HasPrefix(clean, "..") {
			return fmt.Errorf("file name %q leaves /ward", name)
		}
		path := filepath.Join(dir, clean)
		var parents []string // below dir, deepest first
		for d := filepath.Dir(path); d != dir; d = filepath.Dir(d) {
			parents = append(parents, d)
		}
		for _, d := range slices.Backward(parents) {
			if err := os.Mkdir(d, 0o700); err == nil {
				dirs = append(dirs, d)
			} else if !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		if err := os.WriteFile(path, data, 0o400); err != nil {
			return err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o500); err != nil {
			return err
		}
	}
	return nil
}

// run runs the container to its end and tells how it ended.
func (c *container) run(ctx context.Context) (sandbox.Outcome, error) {
	s := c.s
	runCtx, cancel := context.WithTimeout(ctx, c.lim.Timeout)
	defer cancel()
	var killed atomic.Bool
	kill := func() {
		killed.Store(true)
		c.kill()
	}
	stdout := &sandbox.ResultWriter{Limit: c.lim.Stdout, OnOverflow: kill}
	stderr := &sandbox.LogWriter{Limit: c.lim.Stderr, Sink: c.spec.LogSink, Secrets: c.spec.Redact}
	logFile := filepath.Join(c.dir, "runc.log")
	cmd := exec.Command(s.runtime, "--root", s.runcDir, "--log", logFile, "--log-format", "json",
		"run", "--bundle", c.dir, c.id)
	cmd.Stdin = bytes.NewReader(c.spec.Stdin)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = []string{}
	cmd.WaitDelay = waitDelay
	pressure := s.cg.parentPressure()
	hostOOM := hostOOMKills()
	start := s.now()
	if err := cmd.Start(); err != nil {
		return sandbox.Outcome{}, fmt.Errorf("oci: start %s: %w", s.runtime, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-runCtx.Done():
		kill()
		err = <-waited
	}
	elapsed := s.now().Sub(start)

	out := sandbox.Outcome{Stdout: stdout.Bytes(), Stderr: stderr.Finish()}
	out.Usage.DurationMs = elapsed.Milliseconds()
	if u, uerr := s.cg.usage(c.id); uerr == nil {
		out.Usage.PeakMemoryBytes = min(u.peakBytes, c.lim.Memory)
		out.Usage.CPUMs = u.cpu.Milliseconds()
	} else {
		s.log.Warn("oci: read task usage", "container", c.id, "err", uerr)
	}
	if stdout.Overflowed() { // read after Wait, which waits for the copying to end
		o := sandbox.OutputLimitOutcome(stdout.Limit)
		out.Code, out.Message = o.Code, o.Message
		return out, nil
	}
	status := -1
	var exit *exec.ExitError
	switch {
	case err == nil:
		status = 0
	case errors.As(err, &exit):
		status = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal()) // runc itself was killed
		}
	default:
		return out, fmt.Errorf("oci: wait for %s: %w", s.runtime, err)
	}

	switch {
	case killed.Load() && runCtx.Err() != nil:
		o := sandbox.ContextOutcome(ctx, c.lim.Timeout)
		out.Code, out.Message = o.Code, o.Message
		return out, nil
	case status == 0:
		out.ExitCode = new(0)
		return out, nil
	}
	if msg := runtimeError(logFile); msg != "" {
		// runc failed before or while starting the task: the platform's
		// fault, not the task's.
		s.log.Error("oci: the runtime could not run the container", "container", c.id, "digest", c.spec.Digest, "err", msg)
		return out, ward.Errorf(ward.CodeInternal, "oci: the container could not be started")
	}
	out.ExitCode = new(status)
	if status == 128+int(syscall.SIGKILL) {
		u, _ := s.cg.usage(c.id)
		switch {
		case u.limitHit:
			out.Code = ward.CodeMemoryLimit
			out.Message = fmt.Sprintf("the memory limit of %d MiB was reached", c.lim.Memory>>20)
			out.ExitCode = nil
			return out, nil
		case u.oomKills > 0 || s.cg.parentPressure() > pressure || hostOOMKills() > hostOOM:
			out.Code = ward.CodeNodePressure
			out.Message = "killed because the node ran out of memory, not the task's own limit"
			out.ExitCode = nil
			return out, nil
		}
	}
	out.Code = ward.CodeExitStatus
	out.Message = fmt.Sprintf("exited with status %d", status)
	return out, nil
}

// kill kills every process of the container: through the runtime, and
// through the task cgroup in case the runtime has not yet recorded it.
func (c *container) kill() {
	ctx, cancel := context.WithTimeout(context.Background(), waitDelay)
	defer cancel()
	_ = exec.CommandContext(ctx, c.s.runtime, "--root", c.s.runcDir, "kill", "--all", c.id, "KILL").Run()
	if c.s.cg.v2 {
		_ = write(c.s.cg.path("", c.id+"/ctr"), "cgroup.kill", "1")
		return
	}
	killProcs(c.s.cg.path("pids", c.id+"/ctr"))
}

// cleanup removes the container (if the runtime left it), the task
// cgroup and the task directory.
func (c *container) cleanup(ctx context.Context) {
	s := c.s
	if _, err := os.Stat(filepath.Join(s.runcDir, c.id)); err == nil {
		s.deleteContainer(ctx, c.id)
	}
	if c.cgroup {
		if err := s.cg.remove(c.id); err != nil {
			s.log.Warn("oci: remove task cgroup", "container", c.id, "err", err)
		}
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			s.log.Warn("oci: remove task directory", "container", c.id, "err", err)
		}
	}
}

// runtimeError returns the first error runc logged, or "".
func runtimeError(logFile string) string {
	f, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			return entry.Msg
		}
	}
	return ""
}

// hostOOMKills returns the host's count of OOM kills (/proc/vmstat).
func hostOOMKills() int64 {
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// short shortens a digest for messages.
func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

// Package oci runs tasks as containers on an OCI runtime (runc, or crun).
// Prepare verifies an image archive against its digest and unpacks its root
// filesystem once into a runner-local cache; Run starts a fresh container
// from it for every task, with its own pid, mount, ipc, uts, network and
// cgroup namespaces (and a user namespace where the host allows), a
// read-only root, a size-capped tmpfs /tmp, the task files read-only at
// /ward, no capabilities, no_new_privs, a seccomp allowlist, and a cgroup
// of its own capping memory (no swap), processes and CPU.
//
// The sandbox keeps its files under Options.StateDir:
//
//	images/<hex>/rootfs   unpacked root filesystems, one per image digest
//	images/<hex>/image.json  the image's command, environment and user
//	run/                  a tmpfs: runc's state and each running task's
//	                      bundle and /ward files (payloads never touch disk)
//
// Images in the cache outlive the process: a runner restarted on the same
// state directory runs them without preparing them again. New sweeps what
// a crashed runner left behind: containers, cgroups, task directories and
// half-unpacked images.
package oci

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/image"
	"github.com/wardhq/ward/internal/sandbox"
)

// Options configure a Sandbox. Only StateDir is required.
type Options struct {
	// Runtime is the OCI runtime binary, a path or a name looked up in PATH
	// (default "runc").
	Runtime string
	// StateDir holds the image cache and the tmpfs for running tasks.
	StateDir string
	// CgroupParent is the cgroup (below each hierarchy's root) that holds
	// the task cgroups (default "/ward/<12 hex of the state directory's
	// SHA-256>", so runners with their own state directories never meet).
	CgroupParent string
	// IDBase is the first host uid and gid of the 65536 that container ids
	// map to in the user namespace (default 1000000000).
	IDBase uint32
	// NoUserNS runs containers without a user namespace even where the
	// host has them; the task then runs as a non-root uid.
	NoUserNS bool
	// NodeMemoryMB, when positive, caps the memory of all tasks together
	// in the parent cgroup: the runner's budget in overcommit mode. A task
	// killed because the parent ran out ends with node_pressure.
	NodeMemoryMB int
	// PidsLimit caps the processes and threads of one task (default 256).
	PidsLimit int
	// CPUs caps the CPU time of one task, in CPUs (default 1).
	CPUs float64
	// MaxMemMB is the largest memory_mb a task may ask (default ward.MaxMemoryMB).
	MaxMemMB int
	// Intake bounds the images Prepare accepts.
	Intake image.IntakeOptions
	Logger *slog.Logger
	Now    func() time.Time
}

// Defaults.
const (
	DefaultIDBase    = 1000000000
	DefaultPidsLimit = 256
	idMapSize        = 65536
	nobody           = 65534
)

// Sandbox runs container tasks. Create with New.
type Sandbox struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	runtime string // resolved path of runc
	cg      *cgroups
	userNS  *idMap
	images  string // StateDir/images
	run     string // StateDir/run (a tmpfs)
	runcDir string // run/runc: runc's --root
	mounted bool   // run was mounted by New
	lock    *os.File

	mu       sync.Mutex
	prepared map[string]*prepared
	closed   atomic.Bool
	runs     sync.WaitGroup
}

// prepared is an unpacked image ready to run.
type prepared struct {
	rootfs   string
	args     []string
	env      []string
	cwd      string
	uid, gid uint32
}

// imageFile is images/<hex>/image.json: what Run needs of the image.
type imageFile struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Cwd  string   `json:"cwd"`
	UID  uint32   `json:"uid"`
	GID  uint32   `json:"gid"`
}

// New checks that containers can run on this host — an OCI runtime, root,
// usable cgroups — sets up the state directory and sweeps leftovers of an
// earlier run. Where they cannot, the error has code unavailable and says
// why; the wasm runtime is unaffected.
func New(ctx context.Context, opts Options) (*Sandbox, error) {
	if opts.Runtime == "" {
		opts.Runtime = "runc"
	}
	if opts.StateDir == "" {
		return nil, errors.New("oci: no state directory")
	}
	abs, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	opts.StateDir = abs
	if opts.CgroupParent == "" {
		sum := sha256.Sum256([]byte(abs))
		opts.CgroupParent = "/ward/" + hex.EncodeToString(sum[:6])
	}
	if opts.IDBase == 0 {
		opts.IDBase = DefaultIDBase
	}
	if opts.PidsLimit <= 0 {
		opts.PidsLimit = DefaultPidsLimit
	}
	if opts.CPUs <= 0 {
		opts.CPUs = 1
	}
	if opts.MaxMemMB <= 0 {
		opts.MaxMemMB = ward.MaxMemoryMB
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	path, err := exec.LookPath(opts.Runtime)
	if err != nil {
		return nil, ward.Errorf(ward.CodeUnavailable, "oci: no OCI runtime %q on this host: install runc", opts.Runtime)
	}
	if os.Geteuid() != 0 {
		return nil, ward.Errorf(ward.CodeUnavailable, "oci: container tasks need a runner running as root")
	}
	cg, err := openCgroups(opts.CgroupParent)
	if err != nil {
		return nil, ward.Errorf(ward.CodeUnavailable, "oci: %v", err)
	}
	s := &Sandbox{
		opts: opts, log: opts.Logger, now: opts.Now, runtime: path, cg: cg,
		images:   filepath.Join(opts.StateDir, "images"),
		run:      filepath.Join(opts.StateDir, "run"),
		prepared: map[string]*prepared{},
	}
	s.runcDir = filepath.Join(s.run, "runc")
	if err := os.MkdirAll(opts.StateDir, 0o711); err != nil {
		return nil, ward.Errorf(ward.CodeUnavailable, "oci: %v", err)
	}
	if s.lock, err = lockDir(opts.StateDir); err != nil {
		return nil, ward.Errorf(ward.CodeUnavailable, "oci: %v", err)
	}
	if err := s.setupDirs(); err != nil {
		s.lock.Close()
		return nil, ward.Errorf(ward.CodeUnavailable, "oci: %v", err)
	}
	if err := cg.setParentMemory(int64(opts.NodeMemoryMB) << 20); err != nil {
		s.lock.Close()
		return nil, ward.Errorf(ward.CodeUnavailable, "oci: %v", err)
	}
	if !opts.NoUserNS {
		if err := probeUserNS(path, opts.IDBase); err != nil {
			s.log.Warn("oci: no user namespaces on this host; tasks run as a non-root uid instead", "err", err)
		} else {
			s.userNS = &idMap{base: opts.IDBase, size: idMapSize}
		}
	}
	s.sweep(ctx)
	return s, nil
}

// setupDirs creates the state directory and mounts the tmpfs for running
// tasks, unless it is one already.
func (s *Sandbox) setupDirs() error {
	for _, dir := range []string{s.opts.StateDir, s.images, s.run} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o711); err != nil {
			return err
		}
	}
	// A container's root user may be an unprivileged host user, which
	// must pass through every directory above the images and the tasks.
	abs, err := filepath.Abs(s.opts.StateDir)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("state directory %s: its parent %s is not searchable by other users (chmod o+x)", s.opts.StateDir, dir)
		}
		if dir == "/" {
			break
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.run, &st); err != nil {
		return err
	}
	if st.Type != unix.TMPFS_MAGIC {
		if err := unix.Mount("ward-oci", s.run, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0711,size=1g"); err != nil {
			return fmt.Errorf("mount a tmpfs at %s: %w", s.run, err)
		}
		s.mounted = true
	}
	for _, dir := range []string{s.runcDir, filepath.Join(s.run, "tasks")} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return err
		}
	}
	return nil
}

// lockDir takes the state directory for this process: a second sandbox on
// it would sweep the first one's containers.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("state directory %s is in use by another process", dir)
	}
	return f, nil
}

// probeUserNS checks that the runtime can be started in a user namespace
// mapping container root to base.
func probeUserNS(runtimePath string, base uint32) error {
	cmd := exec.Command(runtimePath, "--version")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(base), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(base), Size: 1}},
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// sweep removes what an earlier process left: containers in runc's state,
// task directories, task cgroups and half-unpacked images.
func (s *Sandbox) sweep(ctx context.Context) {
	entries, _ := os.ReadDir(s.runcDir)
	for _, e := range entries {
		s.deleteContainer(ctx, e.Name())
	}
	tasks, _ := os.ReadDir(filepath.Join(s.run, "tasks"))
	for _, e := range tasks {
		_ = os.RemoveAll(filepath.Join(s.run, "tasks", e.Name()))
	}
	for _, name := range s.cg.tasks() {
		if err := s.cg.remove(name); err != nil {
			s.log.Warn("oci: sweep cgroup", "cgroup", name, "err", err)
		}
	}
	imgs, _ := os.ReadDir(s.images)
	for _, e := range imgs {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			_ = os.RemoveAll(filepath.Join(s.images, e.Name()))
		}
	}
	if n := len(entries) + len(tasks); n > 0 {
		s.log.Info("oci: swept leftovers of an earlier run", "containers", len(entries), "tasks", len(tasks))
	}
}

// deleteContainer kills and deletes a container, whatever its state.
func (s *Sandbox) deleteContainer(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, s.runtime, "--root", s.runcDir, "kill", "--all", id, "KILL").Run()
	if out, err := exec.CommandContext(ctx, s.runtime, "--root", s.runcDir, "delete", "--force", id).CombinedOutput(); err != nil {
		s.log.Warn("oci: delete container", "container", id, "err", err, "out", string(bytes.TrimSpace(out)))
	}
}

// Capabilities implements sandbox.Sandbox.
func (s *Sandbox) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Runtime: ward.RuntimeOCI, Network: false, MaxMemMB: s.opts.MaxMemMB}
}

// UserNamespaces reports whether containers get a user namespace.
func (s *Sandbox) UserNamespaces() bool { return s.userNS != nil }

// Prepare implements sandbox.Sandbox: it verifies the image archive
// against its digest (every blob and layer, and every layer entry) and
// unpacks its root filesystem into the cache, unless it is there already.
func (s *Sandbox) Prepare(ctx context.Context, a sandbox.Artifact) error {
	if s.closed.Load() {
		return errClosed
	}
	hexDigest, ok := ward.DigestHex(a.Digest)
	if !ok {
		return ward.Errorf(ward.CodeInvalidArgument, "oci: digest %q is not sha256:<64 hex>", a.Digest)
	}
	if s.cached(a.Digest) != nil {
		return nil
	}
	img, err := image.Open(a.Code, a.Digest, s.opts.Intake)
	if err != nil {
		return ward.Errorf(ward.CodeInvalidModule, "oci: %s: %v", ward.CodeOf(err), err)
	}
	p, err := s.unpack(ctx, img, filepath.Join(s.images, hexDigest))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.prepared[a.Digest] = p
	s.mu.Unlock()
	return nil
}

// cached returns the prepared image of digest, or nil: one this sandbox
// prepared, or one in the cache on disk, which may be an earlier
// process's. The state directory is the runner's own, and an image is
// renamed into the cache only once verified and unpacked in full (New
// sweeps the half-unpacked ones), so what the cache holds is trusted as
// it is.
func (s *Sandbox) cached(digest string) *prepared {
	s.mu.Lock()
	p := s.prepared[digest]
	s.mu.Unlock()
	if p != nil {
		return p
	}
	hexDigest, ok := ward.DigestHex(digest)
	if !ok {
		return nil
	}
	p, err := s.loadCached(filepath.Join(s.images, hexDigest))
	if err != nil {
		return nil
	}
	s.mu.Lock()
	s.prepared[digest] = p
	s.mu.Unlock()
	return p
}

// loadCached reads an image unpacked earlier.
func (s *Sandbox) loadCached(dir string) (*prepared, error) {
	b, err := os.ReadFile(filepath.Join(dir, "image.json"))
	if err != nil {
		return nil, err
	}
	var f imageFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return &prepared{rootfs: filepath.Join(dir, "rootfs"), args: f.Args, env: f.Env, cwd: f.Cwd, uid: f.UID, gid: f.GID}, nil
}

// unpack writes the image's root filesystem into a temporary directory and
// renames it to dir once complete, so the cache never holds half an image.
func (s *Sandbox) unpack(ctx context.Context, img *image.Image, dir string) (*prepared, error) {
	start := s.now()
	tmp, err := os.MkdirTemp(s.images, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o711); err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	var shift uint32
	if s.userNS != nil {
		shift = s.userNS.base
	}
	if err := img.Unpack(ctx, rootfs, image.UnpackOptions{IDShift: shift, Chown: true}); err != nil {
		return nil, ward.Errorf(ward.CodeInvalidModule, "oci: unpack: %v", err)
	}
	if err := mountPoints(rootfs, shift); err != nil {
		return nil, ward.Errorf(ward.CodeInvalidModule, "oci: %v", err)
	}
	uid, gid, err := image.ResolveUser(rootfs, img.Config.User)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidModule, "oci: %v", err)
	}
	if s.userNS == nil && uid == 0 {
		// Without a user namespace, container root would be host root.
		uid, gid = nobody, nobody
	}
	f := imageFile{Args: img.Config.Args(), Env: img.Config.Env, Cwd: img.Config.WorkingDir, UID: uid, GID: gid}
	if f.Cwd == "" {
		f.Cwd = "/"
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "image.json"), b, 0o644); err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return nil, fmt.Errorf("oci: %w", err)
	}
	s.log.DebugContext(ctx, "oci: image unpacked", "digest", img.Digest, "took", s.now().Sub(start))
	return s.loadCached(dir)
}

// mountPoints makes the directories the container's mounts go on, owned by
// container root, where the image lacks them. /tmp is made world-writable
// and sticky whatever the image says: the runtime gives the tmpfs mounted
// there the mode of the directory below it.
func mountPoints(rootfs string, shift uint32) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, dir := range []string{"proc", "dev", "tmp", "ward"} {
		info, err := root.Lstat(dir)
		switch {
		case err == nil && !info.IsDir():
			return fmt.Errorf("the image's /%s is not a directory", dir)
		case err != nil:
			if err := root.Mkdir(dir, 0o755); err != nil {
				return err
			}
			if err := root.Lchown(dir, int(shift), int(shift)); err != nil {
				return err
			}
		}
	}
	return root.Chmod("tmp", 0o777|fs.ModeSticky)
}

// Close implements sandbox.Sandbox: it waits for running tasks to end
// (their contexts are the caller's to cancel) and unmounts the tmpfs.
func (s *Sandbox) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	done := make(chan struct{})
	go func() { s.runs.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.cg.removeParent()
	defer s.lock.Close()
	if s.mounted {
		if err := unix.Unmount(s.run, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("oci: unmount %s: %w", s.run, err)
		}
	}
	return nil
}

var errClosed = ward.Errorf(ward.CodeUnavailable, "oci: the sandbox is closed")

// newID returns a fresh container ID.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail
	return "w" + hex.EncodeToString(b[:])
}

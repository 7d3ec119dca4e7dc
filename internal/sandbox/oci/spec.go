package oci

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociVersion is the runtime-spec version the configs claim: the one runc
// 1.1, the oldest runtime ward supports, implements.
const ociVersion = "1.0.2"

// containerSpec is what varies between containers.
type containerSpec struct {
	rootfs   string   // the cached root filesystem, mounted read-only
	wardDir  string   // host directory mounted read-only at /ward
	args     []string // the command
	env      []string
	cwd      string
	uid, gid uint32
	userNS   *idMap // nil: no user namespace
	tmpBytes int64  // size of the /tmp tmpfs
	cgroup   string // cgroupsPath for runc
}

// idMap maps container ids 0…size-1 to host ids base…base+size-1.
type idMap struct{ base, size uint32 }

// runtimeSpec returns the container's runtime-spec config: new pid, mount,
// ipc, uts, network (loopback only) and cgroup namespaces and, where the
// host allows, a user namespace; no capabilities; no_new_privs; the default
// seccomp allowlist; a read-only root with a size-capped tmpfs /tmp; the
// task files read-only at /ward; /proc with its host-revealing paths masked
// or read-only; no /sys. Limits live on the task cgroup, which the caller
// made; runc only places the container below it.
func runtimeSpec(c *containerSpec) *specs.Spec {
	noCaps := &specs.LinuxCapabilities{Bounding: []string{}, Effective: []string{}, Inheritable: []string{}, Permitted: []string{}, Ambient: []string{}}
	oomAdj := 1000 // under host memory pressure, tasks go before the runner
	umask := uint32(0o022)
	tmp := strconv.FormatInt(max(c.tmpBytes, 4096), 10)
	s := &specs.Spec{
		Version:  ociVersion,
		Hostname: "ward",
		Root:     &specs.Root{Path: c.rootfs, Readonly: true},
		Process: &specs.Process{
			User:            specs.User{UID: c.uid, GID: c.gid, Umask: &umask},
			Args:            c.args,
			Env:             c.env,
			Cwd:             c.cwd,
			Capabilities:    noCaps,
			NoNewPrivileges: true,
			OOMScoreAdj:     &oomAdj,
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
				{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
			},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "strictatime", "mode=755", "size=64k"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + tmp}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=" + tmp}},
			{Destination: "/ward", Type: "bind", Source: c.wardDir, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: c.cgroup,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.CgroupNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Seccomp: seccompProfile(),
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
				"/proc/timer_stats",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	if m := c.userNS; m != nil {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.base, Size: m.size}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.base, Size: m.size}}
	}
	return s
}

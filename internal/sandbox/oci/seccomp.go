package oci

import (
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// allowedSyscalls are the system calls a task may make: what ordinary
// programs need to compute, use files, pipes, sockets, threads, signals and
// timers. Everything else — mounting, module loading, tracing other
// processes, keyrings, BPF, io_uring, clock and host changes, reboot — fails
// with EPERM. Names unknown to the host's kernel or libseccomp are ignored
// by runc.
var allowedSyscalls = []string{
	// files and directories
	"access", "chdir", "chmod", "chown", "close", "close_range", "copy_file_range", "creat",
	"dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir",
	"fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "flock", "fstat",
	"fstatfs", "fsync", "ftruncate", "futimesat", "getcwd", "getdents", "getdents64", "getxattr",
	"fgetxattr", "lgetxattr", "listxattr", "flistxattr", "llistxattr", "lchown", "link", "linkat",
	"lseek", "lstat", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat", "open", "openat",
	"openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
	"readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir",
	"sendfile", "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync",
	"sync_file_range", "syncfs", "tee", "truncate", "umask", "unlink", "unlinkat", "utime",
	"utimensat", "utimes", "vmsplice", "write", "writev", "setxattr", "fsetxattr", "lsetxattr",
	"removexattr", "fremovexattr", "lremovexattr", "memfd_create",
	// memory
	"brk", "madvise", "membarrier", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mprotect",
	"mremap", "msync", "munlock", "munlockall", "munmap",
	// processes and threads
	"arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork",
	"get_robust_list", "getcpu", "getegid", "geteuid", "getgid", "getgroups", "getpgid",
	"getpgrp", "getpid", "getppid", "getpriority", "getresgid", "getresuid", "getrlimit",
	"getrusage", "getsid", "gettid", "getuid", "kill", "pidfd_open", "pidfd_send_signal",
	"prctl", "prlimit64", "rseq", "sched_get_priority_max", "sched_get_priority_min",
	"sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
	"sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
	"sched_setscheduler", "sched_yield", "set_robust_list", "set_tid_address", "setfsgid",
	"setfsuid", "setgid", "setgroups", "setpgid", "setpriority", "setregid", "setresgid",
	"setresuid", "setreuid", "setrlimit", "setsid", "setuid", "tgkill", "tkill", "uname",
	"vfork", "wait4", "waitid", "futex", "futex_waitv", "restart_syscall", "sysinfo", "times",
	"getrandom",
	// signals
	"pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
	"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sigaltstack",
	"signalfd", "signalfd4",
	// time
	"alarm", "clock_getres", "clock_gettime", "clock_nanosleep", "getitimer", "gettimeofday",
	"nanosleep", "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun",
	"timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime",
	// waiting on descriptors
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
	"eventfd", "eventfd2", "inotify_add_watch", "inotify_init", "inotify_init1",
	"inotify_rm_watch", "poll", "ppoll", "pselect6", "select", "pipe", "pipe2",
	"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
	// sockets (the network namespace holds only loopback)
	"accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
	"listen", "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto",
	"setsockopt", "shutdown", "socket", "socketpair",
	// System V and POSIX IPC (the IPC namespace is the task's own)
	"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
	"msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
	"shmat", "shmctl", "shmdt", "shmget",
	// ioctl on the task's own descriptors (terminals are not given to tasks)
	"ioctl",
}

// namespaceFlags are the clone flags that create namespaces; a task may not
// create any (a user namespace would hand it capabilities inside).
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP |
	unix.CLONE_NEWTIME

// seccompProfile returns the default profile: the allowlist, clone without
// namespace flags, personality with its common harmless values, and clone3
// answered with ENOSYS so C libraries fall back to clone, whose flags can be
// checked.
func seccompProfile() *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	enosys := uint(unix.ENOSYS)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   seccompArches(),
		Syscalls: []specs.LinuxSyscall{
			{Names: allowedSyscalls, Action: specs.ActAllow},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
	// clone's flags are its first argument on every architecture ward
	// builds for (amd64, arm64).
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
		Names:  []string{"clone"},
		Action: specs.ActAllow,
		Args:   []specs.LinuxSeccompArg{{Index: 0, Value: namespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
	})
	for _, v := range []uint64{0, 0x0008, 0x20000, 0x20008, 0xffffffff} {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names:  []string{"personality"},
			Action: specs.ActAllow,
			Args:   []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}},
		})
	}
	return p
}

// seccompArches returns the one architecture the profile allows: the
// host's own. System calls through a compatibility ABI (32-bit x86 or x32
// on amd64, 32-bit ARM on arm64) match no architecture of the filter and
// are refused; leaving them out also keeps the filter small, which makes
// the runtime build it in a few milliseconds less for every task.
func seccompArches() []specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64}
	}
	return nil
}

// Command gocontainer reports what a container task can do to its host,
// one "key=value" line per probe on stdout; "ok" means the operation
// succeeded, anything else is the error. It runs /suid (gosuid, a
// setuid-root file) and copies its report.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

func main() {
	report("uid", fmt.Sprint(os.Getuid()))
	report("euid", fmt.Sprint(os.Geteuid()))
	report("capeff", capEff())
	report("nonewprivs", status("NoNewPrivs:"))
	report("seccomp", status("Seccomp:"))
	report("rootwrite", result(os.WriteFile("/written", []byte("x"), 0o644)))
	report("procwrite", result(os.WriteFile("/proc/sys/kernel/hostname", []byte("x"), 0o644)))
	report("kcore", readable("/proc/kcore"))
	report("pid1", pid1())
	report("hostname", hostname())
	report("mount", result(syscall.Mount("tmpfs", "/tmp", "tmpfs", 0, "")))
	report("unshare", result(syscall.Unshare(syscall.CLONE_NEWUSER)))
	report("chroot", result(syscall.Chroot("/tmp")))
	report("mknod", result(syscall.Mknod("/tmp/null", syscall.S_IFCHR|0o666, 1<<8|3)))
	report("sethostname", result(syscall.Sethostname([]byte("evil"))))
	out, err := exec.Command("/suid").Output()
	if err != nil {
		report("suid", "error: "+err.Error())
	}
	fmt.Print(string(out))
}

func report(key, value string) { fmt.Printf("%s=%s\n", key, value) }

func result(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func readable(name string) string {
	f, err := os.Open(name)
	if err != nil {
		return "error: " + err.Error()
	}
	defer f.Close()
	b := make([]byte, 16)
	n, err := f.Read(b)
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("read %d bytes", n)
}

func capEff() string { return status("CapEff:") }

func status(key string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "error: " + err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(v)
		}
	}
	return "missing"
}

func pid1() string {
	b, err := os.ReadFile("/proc/1/cmdline")
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "error: " + err.Error()
	}
	return h
}

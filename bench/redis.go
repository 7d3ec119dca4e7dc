package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the Redis server the command uses for the peers that keep their
// queue in Redis: one given by address, used as it is, or one it starts
// (and later stops) in its own directory, installing redis-server with
// apt-get where none is found.
type Redis struct {
	Addr    string // host:port
	Version string // as the server reports it (INFO server)
	// Settings are the durability settings that matter, as the server
	// reports them (CONFIG GET): appendonly, appendfsync, save.
	Settings []string

	cmd       *exec.Cmd     // the server when the command started it
	exited    chan struct{} // closed once cmd has been waited for
	waitErr   error         // cmd.Wait's result, read after exited
	closeOnce sync.Once
	closeErr  error
}

// errRedisUnavailable is wrapped by startRedis's error when no
// redis-server could be found or installed.
var errRedisUnavailable = errors.New("redis-server not available")

// redisStartTimeout bounds how long a started server may take to answer
// PING, and redisStopTimeout how long it may take to exit after SIGTERM.
const (
	redisStartTimeout = 30 * time.Second
	redisStopTimeout  = 15 * time.Second
)

// startRedis uses the server at addr, or when addr is empty starts
// redis-server on 127.0.0.1 and a free port with its data under dir, with
// the durability that matches the other stores: the append-only file on,
// fsynced every second (a write survives a crash of the server process,
// and at most the last second is lost if the machine fails), and no RDB
// snapshots.
func startRedis(ctx context.Context, addr, dir string) (*Redis, error) {
	if addr != "" {
		r := &Redis{Addr: addr}
		if err := r.describe(ctx); err != nil {
			return nil, err
		}
		return r, nil
	}
	bin, err := redisServerPath(ctx)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("redis: find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	data := filepath.Join(dir, "redis")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	logPath := filepath.Join(data, "redis.log")
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--dir", data,
		"--logfile", logPath,
		"--appendonly", "yes",
		"--appendfsync", "everysec",
		"--save", "",
	)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis: start %s: %w", bin, err)
	}
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, exited: make(chan struct{})}
	go func() {
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()
	if err := r.waitReady(ctx, logPath); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.describe(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// redisServerPath finds redis-server on the PATH, installing Debian's
// package when it is missing.
func redisServerPath(ctx context.Context) (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	var sudo []string
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			return "", fmt.Errorf("%w: not on the PATH, and not root nor sudo to install it", errRedisUnavailable)
		}
		sudo = []string{"sudo", "-n"}
	}
	aptGet := func(args ...string) error {
		argv := append(append(append([]string(nil), sudo...), "apt-get"), args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, redisTail(out.Bytes()))
		}
		return nil
	}
	if err := aptGet("install", "-y", "-qq", "redis-server"); err != nil {
		// The package lists may be missing or stale: refresh them once.
		if err := aptGet("update", "-qq"); err != nil {
			return "", fmt.Errorf("%w: %v", errRedisUnavailable, err)
		}
		if err := aptGet("install", "-y", "-qq", "redis-server"); err != nil {
			return "", fmt.Errorf("%w: %v", errRedisUnavailable, err)
		}
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("%w: installed, but not on the PATH", errRedisUnavailable)
	}
	return p, nil
}

// waitReady waits until the started server answers PING, fails if it
// exits first.
func (r *Redis) waitReady(ctx context.Context, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, redisStartTimeout)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		err := c.Ping(pctx).Err()
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-r.exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis: server exited before answering PING (%v)\n%s", r.waitErr, redisTail(log))
		case <-ctx.Done():
			return fmt.Errorf("redis: server did not answer PING: %w", err)
		case <-tick.C:
		}
	}
}

// describe reads the server's version and durability settings.
func (r *Redis) describe(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("redis %s: INFO: %w", r.Addr, err)
	}
	v, ok := redisInfoField(info, "redis_version")
	if !ok {
		return fmt.Errorf("redis %s: INFO server reports no redis_version", r.Addr)
	}
	r.Version = v
	r.Settings = r.Settings[:0]
	for _, name := range []string{"appendonly", "appendfsync", "save"} {
		m, err := c.ConfigGet(ctx, name).Result()
		if err != nil {
			return fmt.Errorf("redis %s: CONFIG GET %s: %w", r.Addr, name, err)
		}
		val, ok := m[name]
		if !ok {
			return fmt.Errorf("redis %s: CONFIG GET %s: no such setting", r.Addr, name)
		}
		r.Settings = append(r.Settings, name+"="+val)
	}
	return nil
}

// redisInfoField returns the value of field in the text of an INFO reply
// ("field:value" lines ended by CRLF, sections headed by "# Name").
func redisInfoField(info, field string) (string, bool) {
	lines := strings.FieldsFunc(info, func(r rune) bool { return r == '\r' || r == '\n' })
	for _, line := range lines {
		name, val, ok := strings.Cut(line, ":")
		if ok && name == field {
			return strings.TrimSpace(val), true
		}
	}
	return "", false
}

// redisTail returns the last lines of a log or command output, for error
// messages.
func redisTail(b []byte) string {
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimSpace(string(b))
}

// Close stops the server if the command started it (SIGTERM, so it
// flushes its append-only file, then SIGKILL if it has not exited in
// time) and waits for it to exit. A server given by address is left
// running. Close is safe to call more than once.
func (r *Redis) Close() error {
	if r == nil || r.cmd == nil {
		return nil
	}
	r.closeOnce.Do(func() { r.closeErr = r.stop() })
	return r.closeErr
}

func (r *Redis) stop() error {
	select {
	case <-r.exited:
		return fmt.Errorf("redis: server had exited: %v", r.waitErr)
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		// It exited in between; the waiter reaps it.
		<-r.exited
		return nil
	}
	select {
	case <-r.exited:
	case <-time.After(redisStopTimeout):
		r.cmd.Process.Kill()
		<-r.exited
		return fmt.Errorf("redis: server did not exit within %s of SIGTERM; killed", redisStopTimeout)
	}
	var exit *exec.ExitError
	if r.waitErr != nil && !errors.As(r.waitErr, &exit) {
		return fmt.Errorf("redis: %w", r.waitErr)
	}
	if exit != nil && !exit.Success() {
		return fmt.Errorf("redis: server stopped with %v", exit)
	}
	return nil
}

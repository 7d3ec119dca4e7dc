// Command ward is the one binary of the ward task platform: `ward dev` runs
// a whole single-node platform, `ward server` and `ward runner run` the
// parts of a distributed one (docs/operations.md), and every other verb is
// a client of the HTTP API (docs/api.md).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	g := &globals{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		stderrTTY: isTerminal(os.Stderr),
		getenv:    os.Getenv,
		now:       time.Now,
		cacheDir:  os.UserCacheDir,
	}
	code := run(ctx, g, os.Args[1:])
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

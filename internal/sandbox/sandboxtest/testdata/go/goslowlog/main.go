// Command goslowlog writes a log line and the value of every file in
// /ward/secrets to stderr, sleeps for the milliseconds its stdin names
// (1000 when stdin is not a number), writes a second line and exits 0.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	ms, err := strconv.Atoi(strings.TrimSpace(string(in)))
	if err != nil {
		ms = 1000
	}
	fmt.Fprintln(os.Stderr, "first line")
	entries, _ := os.ReadDir("/ward/secrets")
	for _, e := range entries {
		v, err := os.ReadFile(filepath.Join("/ward/secrets", e.Name()))
		if err == nil {
			fmt.Fprintf(os.Stderr, "secret %s=%s\n", e.Name(), v)
		}
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	fmt.Fprintln(os.Stderr, "second line")
}

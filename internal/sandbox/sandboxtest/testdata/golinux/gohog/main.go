// Command gohog reads a number of MiB from stdin, allocates and touches
// that much memory, writes "held", holds it for HOG_HOLD_MS milliseconds
// (default 2000) and exits 0.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

var held [][]byte

func main() {
	in, _ := io.ReadAll(os.Stdin)
	mib, err := strconv.Atoi(strings.TrimSpace(string(in)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "stdin must be a number of MiB")
		os.Exit(1)
	}
	for range mib {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		held = append(held, b)
	}
	fmt.Println("held")
	hold := 2000
	if v, err := strconv.Atoi(os.Getenv("HOG_HOLD_MS")); err == nil {
		hold = v
	}
	time.Sleep(time.Duration(hold) * time.Millisecond)
}

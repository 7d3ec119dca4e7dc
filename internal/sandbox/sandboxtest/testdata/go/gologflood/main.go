// Command gologflood writes stdin to stderr 1024 times, each copy split
// across two writes.
package main

import (
	"io"
	"os"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		os.Exit(1)
	}
	half := len(in) / 2
	for range 1024 {
		_, _ = os.Stderr.Write(in[:half])
		_, _ = os.Stderr.Write(in[half:])
	}
}

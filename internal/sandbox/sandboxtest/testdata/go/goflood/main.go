// Command goflood writes to stdout forever, ignoring write errors.
package main

import "os"

func main() {
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = 'f'
	}
	for {
		_, _ = os.Stdout.Write(buf)
	}
}

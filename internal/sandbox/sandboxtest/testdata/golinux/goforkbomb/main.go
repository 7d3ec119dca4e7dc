// Command goforkbomb starts copies of itself that sleep, until starting
// one fails, then reports how many it started ("started=N") and the error,
// and exits 0.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		time.Sleep(time.Hour)
		return
	}
	started := 0
	for ; started < 100000; started++ {
		cmd := exec.Command("/proc/self/exe", "child")
		if err := cmd.Start(); err != nil {
			fmt.Printf("started=%d\nerror=%v\n", started, err)
			return
		}
	}
	fmt.Printf("started=%d\nerror=none\n", started)
}

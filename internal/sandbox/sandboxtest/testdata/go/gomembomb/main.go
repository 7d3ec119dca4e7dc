// Command gomembomb allocates memory in 1 MiB slices and holds on to it
// until the runtime gives up.
package main

import "fmt"

func main() {
	var held [][]byte
	for i := 0; ; i++ {
		b := make([]byte, 1<<20)
		b[len(b)-1] = byte(i)
		held = append(held, b)
		if i%64 == 0 {
			fmt.Println("held MiB:", len(held))
		}
	}
}

// Command goenv writes its environment to stdout, one NAME=value per line.
package main

import (
	"fmt"
	"os"
)

func main() {
	for _, kv := range os.Environ() {
		fmt.Println(kv)
	}
}

// Command gohello reads {"name": ...} from stdin and writes
// {"greeting": "hello, <name>"} to stdout.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var in struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "gohello: bad input:", err)
		os.Exit(1)
	}
	out := struct {
		Greeting string `json:"greeting"`
	}{"hello, " + in.Name}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

// Command goexit3 exits with status 3.
package main

import "os"

func main() { os.Exit(3) }

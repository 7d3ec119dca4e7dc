// Command gopanic panics; a Go program that panics exits with status 2.
package main

func main() {
	panic("gopanic: failing on purpose")
}

// Command hello is a tiny main package that handlerbuild's tests build.
package main

import "fmt"

// version is what a hostile -ldflags=-X would overwrite.
var version = "v1"

func main() { fmt.Println("hello", version, tagged) }

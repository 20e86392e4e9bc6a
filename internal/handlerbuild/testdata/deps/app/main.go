// Command app depends on a nested package of its own module and on a
// directory replacement, so the tests can edit both.
package main

import (
	"example.com/app/internal/a/b"
	"example.com/lib"
)

func main() { println(b.B, lib.L, lib.Count()) }

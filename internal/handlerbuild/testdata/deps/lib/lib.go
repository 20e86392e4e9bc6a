// Package lib is a directory replacement with embedded files.
package lib

import "embed"

const L = "lib"

//go:embed data
var data embed.FS

// Count is the number of embedded entries, so a new file changes the binary.
func Count() int {
	entries, _ := data.ReadDir("data")
	return len(entries)
}

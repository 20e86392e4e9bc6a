//go:build !hostile

package main

const tagged = "untagged"

//go:build hostile

package main

// tagged differs when a user's -tags=hostile leaks into the build.
const tagged = "tagged-hostile"

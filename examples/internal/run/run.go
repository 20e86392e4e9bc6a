// Package run is the examples' main: it builds a CDK app, synthesizes it and
// turns a construct's panic into a one-line error.
package run

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// Synth creates an app, lets build add its stacks and synthesizes it. A
// construct rejects a bad prop or context value with a panic; Synth prints
// its message to stderr without a Go stack trace and exits 1 (no cloud
// assembly has been written).
func Synth(build func(app awscdk.App)) {
	defer jsii.Close()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(os.Stderr, "synth failed:", r)
			// os.Exit skips the deferred Close: stop the jsii runtime here.
			jsii.Close()
			os.Exit(1)
		}
	}()
	app := awscdk.NewApp(nil)
	build(app)
	app.Synth(nil)
}

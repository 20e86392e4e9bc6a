//go:build crossaccountami_handlerdeps

// This file is never compiled: no build sets the crossaccountami_handlerdeps
// tag. It exists for `go mod tidy`, which considers every build tag: in a
// module that imports a construct of this library (and so this package),
// tidy follows these imports and records the handlers' dependencies
// (aws-lambda-go, aws-sdk-go-v2, ...) in that module's go.mod and go.sum.
// Without them, Build of a handler by import path in the consumer's
// directory fails with "missing go.sum entry". Normal builds of a CDK app
// do not compile the SDK because of it.
//
// A handler's main package cannot be imported, so each line names the
// package its bootstrap/main.go calls.

package handlerbuild

import (
	_ "github.com/crossaccountami/crossaccountami/internal/destinationhandler"
	_ "github.com/crossaccountami/crossaccountami/internal/sourcehandler"
)

// Package constructtest holds what the constructs' tests share: catching
// the panic a construct raises on a bad prop, and stack environments.
package constructtest

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// Catch runs f and returns the message of the panic it raised, or "" if
// none: constructs reject bad props by panicking with an error.
func Catch(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// Env is a concrete stack environment.
func Env(account, region string) *awscdk.Environment {
	return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
}

// NewStack is a stack "Dest" in account 222222222222, us-east-1, in a new app.
func NewStack() awscdk.Stack {
	return awscdk.NewStack(awscdk.NewApp(nil), jsii.String("Dest"), &awscdk.StackProps{Env: Env("222222222222", "us-east-1")})
}

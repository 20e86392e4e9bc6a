// Package jsiivalue reads the values jsii props carry: it turns their
// pointers (*[]*string, *map[string]*string) into plain Go values for the
// handlers' property contracts (internal/...spec), which know nothing of
// jsii, and tells a CDK token (a value that resolves only at synth or deploy
// time, such as another stack's key ARN) from a value known now.
package jsiivalue

import (
	"strconv"
	"strings"
)

// IsUnresolved reports whether s contains a CDK string token. It answers what
// awscdk.Token_IsUnresolved answers for strings, without a round trip to the
// jsii runtime: CDK encodes every string token as "${Token[...]}".
func IsUnresolved(s *string) bool {
	return s != nil && strings.Contains(*s, "${Token[")
}

// DeployTime is what a message says instead of a token's text: a user
// never wrote "${Token[TOKEN.16]}" and cannot look it up.
const DeployTime = "a value known only at deploy time"

// Show is s quoted for a message, or DeployTime when s holds a token.
func Show(s string) string {
	if IsUnresolved(&s) {
		return DeployTime
	}
	return strconv.Quote(s)
}

// String is *s, or "" for nil (jsii's "no value").
func String(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Strings is the strings of in, without its nil items (jsii has no other
// way to say "no value"); nil for a nil list.
func Strings(in *[]*string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, 0, len(*in))
	for _, s := range *in {
		if s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// StringMap is the entries of in, without those whose value is nil; nil for
// a nil map.
func StringMap(in *map[string]*string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(*in))
	for k, v := range *in {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

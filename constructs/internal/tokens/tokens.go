// Package tokens tells whether a string holds a CDK token (a value that
// resolves only at synth or deploy time, such as another stack's key ARN).
package tokens

import "strings"

// IsUnresolved reports whether s contains a CDK string token. It answers what
// awscdk.Token_IsUnresolved answers for strings, without a round trip to the
// jsii runtime: CDK encodes every string token as "${Token[...]}".
func IsUnresolved(s *string) bool {
	return s != nil && strings.Contains(*s, "${Token[")
}

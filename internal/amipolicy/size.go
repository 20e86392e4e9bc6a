package amipolicy

import (
	"bytes"
	"encoding/json"
	"regexp"
)

// MaxRoleInlinePolicyChars is IAM's quota on a role's inline policies:
// "Role policy size cannot exceed 10,240 characters", the aggregate of all
// its inline policies, and "IAM does not count white space when
// calculating the size of a policy against these quotas" (IAM and AWS STS
// quotas, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
// A deploy that would exceed it fails at the AWS::IAM::Policy that tips
// it over.
const MaxRoleInlinePolicyChars = 10240

// PolicyChars is the size of a policy document as IAM counts it: the
// characters of its JSON without the white space between elements (the
// compact encoding; white space inside a string value is counted, which
// can only overcount). A document may hold placeholders for values known
// only at deploy time (CDK tokens): every match of placeholder counts as
// allowance(match) characters instead of its own, an upper bound of what
// it resolves to, so that the total is one too.
func PolicyChars(document interface{}, placeholder *regexp.Regexp, allowance func(match string) int) int {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// IAM counts "<" as one character, not as \u003c.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(document); err != nil {
		// The documents are maps of strings this library wrote.
		panic(err)
	}
	body := bytes.TrimRight(buf.Bytes(), "\n")
	n := len([]rune(string(body)))
	if placeholder != nil {
		for _, m := range placeholder.FindAll(body, -1) {
			n += allowance(string(m)) - len([]rune(string(m)))
		}
	}
	return n
}

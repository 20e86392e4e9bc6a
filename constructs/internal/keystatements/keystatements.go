// Package keystatements places key policy statements: on a key of this app
// it adds them to the key's policy; for a key imported by ARN, whose policy
// this app cannot edit, it warns with the statements to apply by hand. It
// is shared by encryptedami's constructs and kmsgrant.NewGrant, so that
// every construct of the library says the same thing the same way.
package keystatements

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
)

// NotManagedWarning is the id of the synth warning for an imported key.
const NotManagedWarning = "crossaccountami:key-policy-not-managed"

// AddToKeyPolicy adds statements to key's policy. The policy of a key
// imported by ARN cannot be edited from this app: then a warning on scope
// says which statements to apply to which key (howToManage: what would let
// this app keep them), and it returns false.
// Statements are added in one call to the policy document: every jsii call
// counts when an app has hundreds of destinations.
func AddToKeyPolicy(scope constructs.Construct, key awskms.IKey, keyArn string, statements []amipolicy.Statement, howToManage string) bool {
	owned, ok := key.(awskms.Key)
	if ok && len(statements) > 0 {
		if policy := owned.Policy(); policy != nil {
			cdk := ToCDK(statements)
			policy.AddStatements(cdk...)
			return true
		}
	}
	if ok {
		return true
	}
	if len(statements) > 0 {
		what := DescribeKey(key, keyArn)
		awscdk.Annotations_Of(scope).AddWarningV2(jsii.String(NotManagedWarning), jsii.String(fmt.Sprintf(
			"%s%s is imported, so this app does not edit its policy. %s, or add them by hand before deploying this stack (KeyPolicyStatements() returns them): %s",
			strings.ToUpper(what[:1]), what[1:], howToManage, CompactJSON(statements))), nil)
	}
	return false
}

// DescribeKey names key in a message: its ARN when known, else its path
// (and stack, for a key of this app), never token text.
func DescribeKey(key awskms.IKey, keyArn string) string {
	if !jsiivalue.IsUnresolved(&keyArn) {
		return "the key " + keyArn
	}
	if _, own := key.(awskms.Key); own {
		return fmt.Sprintf("the key %s of stack %s", registry.Path(key), provider.EnvOf(key).Name)
	}
	return fmt.Sprintf("the key %s (its ARN is %s)", registry.Path(key), jsiivalue.DeployTime)
}

// ToCDK turns statements into CDK's, for a policy document or a method
// that returns them.
func ToCDK(statements []amipolicy.Statement) []awsiam.PolicyStatement {
	out := make([]awsiam.PolicyStatement, 0, len(statements))
	for _, s := range statements {
		out = append(out, awsiam.PolicyStatement_FromJson(s.JSON()))
	}
	return out
}

// CompactJSON is statements as one JSON array, for a warning or a custom
// resource's property.
func CompactJSON(statements []amipolicy.Statement) string {
	body, err := json.Marshal(statements)
	if err != nil {
		panic(err)
	}
	return string(body)
}

// DependOnKeyPolicy makes the stack that creates grants depend on the
// stack that writes the key policy, when both are in one stage. Across CDK
// Stages (a pipeline) no stack dependency can be drawn: the pipeline's
// order (the key's stage first) gives it instead.
func DependOnKeyPolicy(grants, keyPolicy awscdk.Stack, reason string) {
	if keyPolicy != grants && awscdk.Stage_Of(keyPolicy) == awscdk.Stage_Of(grants) {
		grants.AddStackDependency(keyPolicy, jsii.String(reason))
	}
}

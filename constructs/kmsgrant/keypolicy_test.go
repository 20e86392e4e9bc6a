package kmsgrant_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
)

// karpenterController is a grantee of the grant handler's account.
const karpenterController = "arn:aws:iam::222222222222:role/karpenter/KarpenterController"

// TestImportedKeyOfAnotherAccountWarns: a key imported by ARN from account
// 111111111111 cannot be edited from this app: NewGrant warns with the
// statement its handler needs, literally, and returns it; KeyPolicyCovered
// silences the warning. HandlerRoleArn is the role of the template.
func TestImportedKeyOfAnotherAccountWarns(t *testing.T) {
	// GIVEN a stack of account 222222222222 and a key of 111111111111
	stack := constructtest.NewStack()
	key := awskms.Key_FromKeyArn(stack, jsii.String("K"), jsii.String(keyArn))

	// WHEN a grant is made on it, and another with KeyPolicyCovered
	g := kmsgrant.NewGrant(stack, jsii.String("Karpenter"), &kmsgrant.GrantProps{
		Key: key, Grantee: awsiam.NewArnPrincipal(jsii.String(karpenterController)), Operations: jsii.Strings("Decrypt", "DescribeKey"),
	})
	covered := kmsgrant.NewGrant(stack, jsii.String("Covered"), &kmsgrant.GrantProps{
		Key: key, Grantee: awsiam.NewArnPrincipal(jsii.String(slrArn)), Operations: jsii.Strings("Decrypt"),
		KeyPolicyCovered: jsii.Bool(true),
	})

	// THEN the first warns with its statement, and only it
	want := `[{"Sid":"Allow ` + handlerRoleArn + ` to create a grant for ` + karpenterController + ` (6036f27a)","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":["kms:CreateGrant"],"Resource":"*",` +
		`"Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","DescribeKey"]},"StringEquals":{"aws:PrincipalArn":"` + handlerRoleArn + `","kms:GranteePrincipal":"` + karpenterController + `","kms:RetiringPrincipal":"` + handlerRoleArn + `"}}}]`
	warnings := assertions.Annotations_FromStack(stack).FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("is imported")))
	if len(*warnings) != 1 {
		t.Fatalf("%d not-managed warnings, want 1 (none for the grant with KeyPolicyCovered)", len(*warnings))
	}
	w := (*warnings)[0]
	//lint:ignore SA1019 aws-cdk-go 2.276 has no other type that returns an annotation's text
	msg, _ := w.Entry.Data.(string)
	if *w.Id != "/Dest/Karpenter" || !strings.Contains(msg, "The key "+keyArn+" is imported") || !strings.Contains(msg, ": "+want+" [ack: crossaccountami:key-policy-not-managed]") || strings.Contains(msg, "${Token") {
		t.Errorf("warning on %s:\n%s\nwant one on /Dest/Karpenter naming the key and ending with\n%s", *w.Id, msg, want)
	}
	if g.KeyPolicyManaged() || len(*g.KeyPolicyStatements()) != 1 {
		t.Errorf("KeyPolicyManaged %v with %d statements, want false with 1", g.KeyPolicyManaged(), len(*g.KeyPolicyStatements()))
	}
	if !covered.KeyPolicyManaged() || len(*covered.KeyPolicyStatements()) != 0 {
		t.Errorf("with KeyPolicyCovered: KeyPolicyManaged %v with %d statements, want true with none", covered.KeyPolicyManaged(), len(*covered.KeyPolicyStatements()))
	}
	// AND HandlerRoleArn is the role the template creates and the grant names
	if got := *g.HandlerRoleArn(); got != handlerRoleArn {
		t.Errorf("HandlerRoleArn = %s, want %s", got, handlerRoleArn)
	}
	tmpl := assertions.Template_FromStack(stack, nil)
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), &map[string]interface{}{
		"RoleName": handlerRoleArn[strings.LastIndex(handlerRoleArn, "/")+1:], "Path": "/crossaccountami/",
	})
	tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{"RetiringPrincipal": *g.HandlerRoleArn()})
}

// TestKeyOfTheSameAccountNeedsNoStatement: a key of this stack's account,
// imported or of another stack, gets no statement: the handler's IAM
// policy is enough there. A grantee known only at deploy time is refused
// for a key of another account, whose policy must name it.
func TestKeyOfTheSameAccountNeedsNoStatement(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "eu-west-1")})
	own := awskms.NewKey(source, jsii.String("Key"), nil)
	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "eu-west-1")})
	sameAccount := awskms.Key_FromKeyArn(dest, jsii.String("Imported"), jsii.String("arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"))
	for id, key := range map[string]awskms.IKey{"OwnKey": own, "ImportedKey": sameAccount} {
		g := kmsgrant.NewGrant(dest, jsii.String(id), &kmsgrant.GrantProps{
			Key: key, Grantee: awsiam.NewArnPrincipal(jsii.String(karpenterController)), Operations: jsii.Strings("Decrypt"),
		})
		if !g.KeyPolicyManaged() || len(*g.KeyPolicyStatements()) != 0 {
			t.Errorf("%s: KeyPolicyManaged %v with %d statements, want true with none", id, g.KeyPolicyManaged(), len(*g.KeyPolicyStatements()))
		}
	}
	body, _ := json.Marshal(assertions.Template_FromStack(source, nil).ToJSON())
	if strings.Contains(string(body), "create a grant") {
		t.Errorf("the key of the same account got a statement: %s", body)
	}
	if w := assertions.Annotations_FromStack(dest).FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("ack: crossaccountami:"))); len(*w) != 0 {
		//lint:ignore SA1019 aws-cdk-go 2.276 has no other type that returns an annotation's text
		t.Errorf("%d warnings of this library, want none: %v", len(*w), (*w)[0].Entry.Data)
	}

	other := awscdk.NewStack(app, jsii.String("Other"), &awscdk.StackProps{Env: constructtest.Env("333333333333", "eu-west-1")})
	role := awsiam.NewRole(other, jsii.String("Role"), &awsiam.RoleProps{AssumedBy: awsiam.NewAccountRootPrincipal()})
	msg := constructtest.Catch(func() {
		kmsgrant.NewGrant(other, jsii.String("Grant"), &kmsgrant.GrantProps{Key: own, Grantee: role, Operations: jsii.Strings("Decrypt")})
	})
	if !strings.Contains(msg, "kmsgrant.NewGrant Other/Grant: Grantee: the policy of the key Source/Key of stack Source, in account 222222222222, must name it") || !strings.Contains(msg, "got a deploy-time value") {
		t.Errorf("a token grantee on a key of another account: %q", msg)
	}
}

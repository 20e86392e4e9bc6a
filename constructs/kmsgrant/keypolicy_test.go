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
	annotations := assertions.Annotations_FromStack(stack)
	isImported := assertions.Match_StringLikeRegexp(jsii.String("is imported"))
	if all, own := annotations.FindWarning(jsii.String("*"), isImported), annotations.FindWarning(jsii.String("/Dest/Karpenter"), isImported); len(*all) != 1 || len(*own) != 1 {
		t.Fatalf("%d not-managed warnings, %d of them on /Dest/Karpenter; want that one only (none for the grant with KeyPolicyCovered)", len(*all), len(*own))
	}
	//lint:ignore SA1019 aws-cdk-go 2.276 has no other type that returns an annotation's text
	msg, _ := (*annotations.FindWarning(jsii.String("/Dest/Karpenter"), isImported))[0].Entry.Data.(string)
	if !strings.Contains(msg, "The key "+keyArn+" is imported") || !strings.Contains(msg, ": "+want+" [ack: crossaccountami:key-policy-not-managed]") || strings.Contains(msg, "${Token") {
		t.Errorf("warning:\n%s\nwant one naming the key and ending with\n%s", msg, want)
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

// TestWarningsForWhatSynthCannotKnow: without the stack's account NewGrant
// cannot tell whether the key is of another account, and says so (not
// with KeyPolicyCovered); an imported key's statement that names a
// deploy-time grantee is described in words. Neither warning shows token
// text.
func TestWarningsForWhatSynthCannotKnow(t *testing.T) {
	app := awscdk.NewApp(nil)
	agnostic := awscdk.NewStack(app, jsii.String("Agnostic"), nil)
	key := awskms.Key_FromKeyArn(agnostic, jsii.String("K"), jsii.String(keyArn))
	grantee := awsiam.NewArnPrincipal(jsii.String(karpenterController))
	unknown := kmsgrant.NewGrant(agnostic, jsii.String("Unknown"), &kmsgrant.GrantProps{Key: key, Grantee: grantee, Operations: jsii.Strings("Decrypt")})
	kmsgrant.NewGrant(agnostic, jsii.String("Covered"), &kmsgrant.GrantProps{Key: key, Grantee: grantee, Operations: jsii.Strings("Decrypt"), KeyPolicyCovered: jsii.Bool(true)})

	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	role := awsiam.NewRole(dest, jsii.String("Role"), &awsiam.RoleProps{AssumedBy: awsiam.NewAccountRootPrincipal()})
	tokenGrantee := kmsgrant.NewGrant(dest, jsii.String("TokenGrantee"), &kmsgrant.GrantProps{
		Key: awskms.Key_FromKeyArn(dest, jsii.String("K"), jsii.String(keyArn)), Grantee: role, Operations: jsii.Strings("Decrypt"),
	})

	for _, tc := range []struct {
		stack      awscdk.Stack
		path, want string
	}{
		{agnostic, "/Agnostic/Unknown", "Key: NewGrant cannot tell whether the key " + keyArn + " is in this stack's account (this stack's account is a deploy-time value)"},
		{dest, "/Dest/TokenGrantee", "The key " + keyArn + " is imported, so this app does not edit its policy, and its statement for this grant names Grantee, a deploy-time value"},
	} {
		annotations := assertions.Annotations_FromStack(tc.stack)
		ours := assertions.Match_StringLikeRegexp(jsii.String("ack: crossaccountami:"))
		all, w := annotations.FindWarning(jsii.String("*"), ours), annotations.FindWarning(jsii.String(tc.path), ours)
		if len(*all) != 1 || len(*w) != 1 {
			t.Errorf("%s: %d warnings of this library, %d of them there; want that one only", tc.path, len(*all), len(*w))
			continue
		}
		//lint:ignore SA1019 aws-cdk-go 2.276 has no other type that returns an annotation's text
		msg, _ := (*w)[0].Entry.Data.(string)
		if !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "${Token") {
			t.Errorf("warning on %s:\n%s\nwant one starting %q, without token text", tc.path, msg, tc.want)
		}
	}
	if unknown.KeyPolicyManaged() || tokenGrantee.KeyPolicyManaged() {
		t.Error("KeyPolicyManaged is true for a grant whose key policy this app does not keep")
	}
}

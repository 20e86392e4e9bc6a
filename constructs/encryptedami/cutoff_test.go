package encryptedami_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
)

// cutOffDeny is the statement NewKeyAccessCutOff "Offboarded" writes for
// accounts 222222222222 and 444444444444, as the template has it.
var cutOffDeny = map[string]interface{}{
	"Sid":       "Deny all use of the key and new grants to the accounts cut off by Offboarded",
	"Effect":    "Deny",
	"Principal": map[string]interface{}{"AWS": "*"},
	"Action":    []interface{}{"kms:CreateGrant", "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"},
	"Resource":  "*",
	"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{"aws:PrincipalAccount": []interface{}{"222222222222", "444444444444"}}},
}

// TestKeyAccessCutOffOnAKeyOfTheApp: the Deny joins the key's policy next
// to the statements that allow the destinations, SCOPED and ORGANIZATION
// alike, and an explicit Deny beats them (and any grant) at KMS.
func TestKeyAccessCutOffOnAKeyOfTheApp(t *testing.T) {
	// GIVEN a key of the app that a SCOPED destination and an organization use
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	encryptedami.NewOrganizationKeyAccess(source, jsii.String("Org"), &encryptedami.OrganizationKeyAccessProps{Key: key, Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String("o-abcdefghij")}})
	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String("ami-0123456789abcdef0")})

	// WHEN the key's owner cuts off two accounts (given in any order)
	cut := encryptedami.NewKeyAccessCutOff(source, jsii.String("Offboarded"), &encryptedami.KeyAccessCutOffProps{
		Key: key, Accounts: jsii.Strings("444444444444", "222222222222"),
	})

	// THEN the key policy holds the Deny and the statements it overrides (in
	// the order they were added)
	if !cut.KeyPolicyManaged() || len(*cut.KeyPolicyStatements()) != 1 {
		t.Errorf("KeyPolicyManaged %v, %d statements; want true, 1", cut.KeyPolicyManaged(), len(*cut.KeyPolicyStatements()))
	}
	assertions.Template_FromStack(source, nil).HasResourceProperties(jsii.String("AWS::KMS::Key"), &map[string]interface{}{
		"KeyPolicy": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
			assertions.Match_ObjectLike(&map[string]interface{}{"Sid": "Allow use of the key by Auto Scaling service-linked roles of the organization", "Effect": "Allow"}),
			assertions.Match_ObjectLike(&map[string]interface{}{"Sid": "Allow use of the key by AWSServiceRoleForAutoScaling of 222222222222", "Effect": "Allow"}),
			cutOffDeny,
		})},
	})
}

// TestKeyAccessCutOffOnAnImportedKey: in a stack of the key's account and
// region a custom resource keeps the Deny in the imported key's policy;
// anywhere else a warning prints it.
func TestKeyAccessCutOffOnAnImportedKey(t *testing.T) {
	app := awscdk.NewApp(nil)
	keyStack := awscdk.NewStack(app, jsii.String("KeyAccount"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	other := awscdk.NewStack(app, jsii.String("Elsewhere"), &awscdk.StackProps{Env: constructtest.Env("333333333333", "us-east-1")})
	props := func(s awscdk.Stack) *encryptedami.KeyAccessCutOffProps {
		return &encryptedami.KeyAccessCutOffProps{
			Key: awskms.Key_FromKeyArn(s, jsii.String("Key"), jsii.String(importedKeyArn)), Accounts: jsii.Strings("222222222222", "444444444444"),
		}
	}

	managed := encryptedami.NewKeyAccessCutOff(keyStack, jsii.String("Offboarded"), props(keyStack))
	warned := encryptedami.NewKeyAccessCutOff(other, jsii.String("Offboarded"), props(other))

	if !managed.KeyPolicyManaged() || warned.KeyPolicyManaged() {
		t.Errorf("KeyPolicyManaged: in the key's account %v, elsewhere %v; want true, false", managed.KeyPolicyManaged(), warned.KeyPolicyManaged())
	}
	assertions.Template_FromStack(keyStack, nil).HasResourceProperties(jsii.String("Custom::KmsKeyPolicyStatements"), &map[string]interface{}{
		"KeyArn": importedKeyArn,
		// The Sid carries the mark of the stack that owns the statement
		// (keypolicyspec.SidSuffix of 111111111111, us-east-1, KeyAccount).
		"SidSuffix": " [crossaccountami 7ef15a20]",
		"Statements": `[{"Sid":"Deny all use of the key and new grants to the accounts cut off by Offboarded [crossaccountami 7ef15a20]","Effect":"Deny","Principal":{"AWS":"*"},` +
			`"Action":["kms:CreateGrant","kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*",` +
			`"Condition":{"StringEquals":{"aws:PrincipalAccount":["222222222222","444444444444"]}}}]`,
	})
	assertions.Template_FromStack(other, nil).ResourceCountIs(jsii.String("Custom::KmsKeyPolicyStatements"), jsii.Number(0))
	assertions.Annotations_FromStack(other).HasWarning(jsii.String("/Elsewhere/Offboarded"), assertions.Match_StringLikeRegexp(jsii.String(
		`is imported.*Place the KeyAccessCutOff in a stack of the key's account and region.*"Effect":"Deny".*"aws:PrincipalAccount":\["222222222222","444444444444"\]`)))
}

// TestKeyAccessCutOffBadProps: each bad value fails at synth, naming the
// construct's path, the prop and the value; nothing is added.
func TestKeyAccessCutOffBadProps(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	ownKey := awskms.NewKey(source, jsii.String("Key"), nil)
	imported := awskms.Key_FromKeyArn(source, jsii.String("Imported"), jsii.String(importedKeyArn))
	for _, tc := range []struct {
		name  string
		props *encryptedami.KeyAccessCutOffProps
		want  []string
	}{
		{"nil props", nil, []string{"props: required, got nil"}},
		{"no key", &encryptedami.KeyAccessCutOffProps{Accounts: jsii.Strings("222222222222")}, []string{"Key: required, got nil"}},
		{"no accounts", &encryptedami.KeyAccessCutOffProps{Key: ownKey}, []string{"Accounts: required, got nil"}},
		{"empty accounts", &encryptedami.KeyAccessCutOffProps{Key: ownKey, Accounts: &[]*string{}}, []string{"Accounts: at least one account to cut off, got none"}},
		{"not an account id", &encryptedami.KeyAccessCutOffProps{Key: ownKey, Accounts: jsii.Strings("2222-2222-2222")},
			[]string{"Accounts: ", `"2222-2222-2222" is not an AWS account id (expected 12 digits)`}},
		{"listed twice", &encryptedami.KeyAccessCutOffProps{Key: ownKey, Accounts: jsii.Strings("222222222222", "333333333333", "222222222222")},
			[]string{"Accounts: ", `"222222222222" is listed twice`, `got ["222222222222" "333333333333" "222222222222"]`}},
		{"the key's own account (a key of the app)", &encryptedami.KeyAccessCutOffProps{Key: ownKey, Accounts: jsii.Strings("111111111111")},
			[]string{"Accounts: ", `"111111111111" is the key's own account`}},
		{"the key's own account (an imported key)", &encryptedami.KeyAccessCutOffProps{Key: imported, Accounts: jsii.Strings("222222222222", "111111111111")},
			[]string{"Accounts: ", `"111111111111" is the key's own account`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := constructtest.Catch(func() { encryptedami.NewKeyAccessCutOff(source, jsii.String("Cut"), tc.props) })
			for _, w := range append([]string{"encryptedami.NewKeyAccessCutOff Source/Cut: "}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if source.Node().TryFindChild(jsii.String("Cut")) != nil {
				t.Error("a rejected cut-off added a construct")
			}
		})
	}
}

// TestKeyAccessCutOffCountsAgainstTheKeyPolicyBudget: a cut-off of more
// accounts than a key policy holds fails when the app validates, as too many
// destinations do.
func TestKeyAccessCutOffCountsAgainstTheKeyPolicyBudget(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	var accounts []string
	for i := 0; i < 2200; i++ { // 15 bytes each in the policy: about 33 KB
		accounts = append(accounts, fmt.Sprintf("%012d", 222222222222+i))
	}
	encryptedami.NewKeyAccessCutOff(source, jsii.String("Offboarded"), &encryptedami.KeyAccessCutOffProps{Key: key, Accounts: jsii.Strings(accounts...)})

	msg := constructtest.Catch(func() { app.Synth(nil) })

	if !strings.Contains(msg, "Source/Key/CrossAccountAmiKeyPolicyBudget") || !strings.Contains(msg, "the key policy would grow to about") || !strings.Contains(msg, "32768") {
		t.Errorf("synth: %q, want the key policy budget's error", msg)
	}
}

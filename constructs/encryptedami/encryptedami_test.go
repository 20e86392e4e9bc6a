package encryptedami_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
)

const importedKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestImportedKeyWarnsAndReturnsStatements(t *testing.T) {
	// GIVEN a destination stack and a key imported by ARN
	app := awscdk.NewApp(nil)
	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	key := awskms.Key_FromKeyArn(dest, jsii.String("Key"), jsii.String(importedKeyArn))

	// WHEN the construct uses it
	ami := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: key, ImageId: jsii.String("ami-0123456789abcdef0"),
	})

	// THEN it cannot manage the key policy, says so at synth, and returns the statements
	if ami.KeyPolicyManaged() {
		t.Error("KeyPolicyManaged() = true for an imported key")
	}
	if n := len(*ami.KeyPolicyStatements()); n != 2 {
		t.Errorf("KeyPolicyStatements() has %d statements, want 2 (use of the key, CreateGrant)", n)
	}
	if js := statementsJSON(t, ami); !strings.Contains(js, "kms:CreateGrant") || !strings.Contains(js, "AWSServiceRoleForAutoScaling") {
		t.Errorf("KeyPolicyStatements() as JSON = %s", js)
	}
	annotations := assertions.Annotations_FromStack(dest)
	annotations.HasWarning(jsii.String("/Dest/SharedAmi"), assertions.Match_StringLikeRegexp(jsii.String(
		"The key "+strings.ReplaceAll(importedKeyArn, "/", ".")+" is imported.*account 111111111111.*kms:CreateGrant.*AWSServiceRoleForAutoScaling")))

	// AND the grant still targets the imported key
	tmpl := assertions.Template_FromStack(dest, nil)
	tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{
		"KeyArn": importedKeyArn,
	})
}

func TestBadProps(t *testing.T) {
	validKey := func(stack awscdk.Stack) awskms.IKey {
		return awskms.Key_FromKeyArn(stack, jsii.String("K"), jsii.String(importedKeyArn))
	}
	cases := []struct {
		name    string
		destEnv *awscdk.Environment
		props   func(stack awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps
		want    []string // substrings of the error
	}{
		{"nil props", constructtest.Env("222222222222", "us-east-1"),
			func(awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps { return nil },
			[]string{"props: required, got nil"}},
		{"nil key", constructtest.Env("222222222222", "us-east-1"),
			func(awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{ImageId: jsii.String("ami-0123456789abcdef0")}
			}, []string{"Key: required, got nil"}},
		{"nil image", constructtest.Env("222222222222", "us-east-1"),
			func(s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: validKey(s)}
			}, []string{"ImageId: required, got nil"}},
		{"image id shape", constructtest.Env("222222222222", "us-east-1"),
			func(s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: validKey(s), ImageId: jsii.String("ami-XYZ")}
			}, []string{"ImageId", `"ami-XYZ"`, "8 or 17"}},
		{"empty image id", constructtest.Env("222222222222", "us-east-1"),
			func(s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: validKey(s), ImageId: jsii.String("")}
			}, []string{"ImageId", `""`}},
		{"alias arn", constructtest.Env("222222222222", "us-east-1"),
			func(s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{
					Key:     awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String("arn:aws:kms:us-east-1:111111111111:alias/ami")),
					ImageId: jsii.String("ami-0123456789abcdef0")}
			}, []string{"Key:", "alias ARN", "arn:aws:kms:us-east-1:111111111111:alias/ami"}},
		{"region mismatch", constructtest.Env("222222222222", "eu-west-1"),
			func(s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: validKey(s), ImageId: jsii.String("ami-0123456789abcdef0")}
			}, []string{"Key:", `"us-east-1"`, `"eu-west-1"`}},
		{"bad slr suffix", constructtest.Env("222222222222", "us-east-1"),
			func(s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: validKey(s), ImageId: jsii.String("ami-0123456789abcdef0"),
					ServiceLinkedRoleSuffix: jsii.String("bad suffix!")}
			}, []string{"ServiceLinkedRoleSuffix", `"bad suffix!"`}},
		{"unknown policy style", constructtest.Env("222222222222", "us-east-1"),
			func(s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: validKey(s), ImageId: jsii.String("ami-0123456789abcdef0"),
					KeyPolicyStyle: "LOOSE"}
			}, []string{"KeyPolicyStyle", `"LOOSE"`}},
		{"environment-agnostic destination", nil,
			func(s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: validKey(s), ImageId: jsii.String("ami-0123456789abcdef0")}
			}, []string{"concrete account and region", "got account a value known only at deploy time"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			stack := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: tc.destEnv})
			msg := constructtest.Catch(func() {
				encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), tc.props(stack))
			})
			if msg == "" {
				t.Fatal("no error")
			}
			for _, w := range append(tc.want, " D/Ami: ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "${Token[") {
				t.Errorf("error %q shows token text", msg)
			}
			// Nothing half-written: the construct was not added to the tree.
			if stack.Node().TryFindChild(jsii.String("Ami")) != nil {
				t.Error("the construct was added despite the error")
			}
		})
	}
}

// statementsJSON is ami's key policy statements as JSON, the way a user
// pastes them into a key policy (PolicyStatement.ToJSON, encoding/json).
func statementsJSON(t *testing.T, ami encryptedami.CrossAccountEncryptedAmi) string {
	t.Helper()
	var out []interface{}
	for _, s := range *ami.KeyPolicyStatements() {
		out = append(out, s.ToJSON())
	}
	body, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestOrganizationKeyAccessOnAnImportedKey: placed in a stack of the key's
// account and region, it keeps the organization's statements in the
// imported key's policy through a custom resource; placed anywhere else,
// it can only warn.
func TestOrganizationKeyAccessOnAnImportedKey(t *testing.T) {
	app := awscdk.NewApp(nil)
	keyStack := awscdk.NewStack(app, jsii.String("KeyAccount"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	other := awscdk.NewStack(app, jsii.String("Elsewhere"), &awscdk.StackProps{Env: constructtest.Env("333333333333", "us-east-1")})
	props := func(s awscdk.Stack) *encryptedami.OrganizationKeyAccessProps {
		return &encryptedami.OrganizationKeyAccessProps{
			Key: awskms.Key_FromKeyArn(s, jsii.String("Key"), jsii.String(importedKeyArn)), Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String("o-abcdefghij")},
		}
	}
	managed := encryptedami.NewOrganizationKeyAccess(keyStack, jsii.String("Access"), props(keyStack))
	warned := encryptedami.NewOrganizationKeyAccess(other, jsii.String("Access"), props(other))
	if !managed.KeyPolicyManaged() || warned.KeyPolicyManaged() {
		t.Errorf("KeyPolicyManaged: in the key's account %v, elsewhere %v; want true, false", managed.KeyPolicyManaged(), warned.KeyPolicyManaged())
	}
	assertions.Template_FromStack(keyStack, nil).HasResourceProperties(jsii.String("Custom::KmsKeyPolicyStatements"), &map[string]interface{}{
		"KeyArn":     importedKeyArn,
		"Statements": assertions.Match_StringLikeRegexp(jsii.String(`Allow use of the key by Auto Scaling service-linked roles of the organization.*aws:PrincipalOrgID.*o-abcdefghij`)),
	})
	assertions.Template_FromStack(other, nil).ResourceCountIs(jsii.String("Custom::KmsKeyPolicyStatements"), jsii.Number(0))
	assertions.Annotations_FromStack(other).HasWarning(jsii.String("/Elsewhere/Access"), assertions.Match_StringLikeRegexp(jsii.String("is imported.*Place the OrganizationKeyAccess in a stack of the key's account and region")))
}

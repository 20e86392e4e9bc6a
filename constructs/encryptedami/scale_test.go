package encryptedami_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
)

// addDestinations adds n destination stacks (accounts 222222222222, +1, ...)
// that share key, then synthesizes the app, and returns the message of the
// first construct or validation error, if any. The key policy's size is
// checked when the app validates, once every destination is known.
func addDestinations(app awscdk.App, key awskms.IKey, n int, org encryptedami.OrganizationKeyAccess) (errMsg string) {
	for i := 0; i < n; i++ {
		account := fmt.Sprintf("%012d", 222222222222+i)
		stack := awscdk.NewStack(app, jsii.String("Dest-"+account), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
		if msg := constructtest.Catch(func() {
			encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{
				Key: key, ImageId: jsii.String("ami-0123456789abcdef0"), OrganizationKeyAccess: org,
			})
		}); msg != "" {
			return msg
		}
	}
	return constructtest.Catch(func() { app.Synth(nil) })
}

// destinationsOnOneKey synthesizes an app of n destinations that share one
// key of a source stack, and returns the error message, if any.
func destinationsOnOneKey(n int) string {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	return addDestinations(app, key, n, nil)
}

var fitRe = regexp.MustCompile(`about (\d+) destinations fit`)

func TestKeyPolicySizeLimit(t *testing.T) {
	// GIVEN one source key, WHEN n destinations use it
	for _, n := range []int{1, 10} {
		// THEN up to the limit they fit
		if msg := destinationsOnOneKey(n); msg != "" {
			t.Fatalf("N=%d failed: %s", n, msg)
		}
	}
	// THEN past it, the app's validation says how many fit and points to the
	// ACCOUNTS and ORGANIZATION styles
	msg := destinationsOnOneKey(60)
	if msg == "" {
		t.Fatal("60 destinations fit into one key policy: the 32 KB check did not fire")
	}
	m := fitRe.FindStringSubmatch(msg)
	if m == nil || !strings.Contains(msg, "32768") || !strings.Contains(msg, "KeyPolicyStyle_ORGANIZATION") || !strings.Contains(msg, "KeyPolicyStyle_ACCOUNTS with NewAccountsKeyAccess") || !strings.Contains(msg, "Source/Key/CrossAccountAmiKeyPolicyBudget") {
		t.Fatalf("error does not name the key, say how many fit, the limit and the way out: %s", msg)
	}
	fit, _ := strconv.Atoi(m[1])
	t.Logf("N=60: about %d destinations fit", fit)
	// AND the number it gives is right: that many synthesize, one more does not
	if msg := destinationsOnOneKey(fit); msg != "" {
		t.Errorf("the error says %d destinations fit, but %d fail: %s", fit, fit, msg)
	}
	if msg := destinationsOnOneKey(fit + 1); !strings.Contains(msg, "about "+m[1]+" destinations fit") {
		t.Errorf("the error says %d destinations fit, but %d give %q", fit, fit+1, msg)
	}
}

func TestOrganizationModeConstantSize(t *testing.T) {
	// GIVEN a source key with organization access for two OUs
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	org := encryptedami.NewOrganizationKeyAccess(source, jsii.String("Org"), &encryptedami.OrganizationKeyAccessProps{
		Key: key,
		Target: &encryptedami.OrganizationTarget{
			OrganizationId:        jsii.String("o-abcdefghij"),
			OrganizationalUnitIds: jsii.Strings("ou-ab12-11111111"),
		},
	})
	if !org.KeyPolicyManaged() {
		t.Error("KeyPolicyManaged() = false for a key of this app")
	}
	// WHEN 70 destinations (more than fit one by one) use organization mode
	if msg := addDestinations(app, key, 70, org); msg != "" {
		t.Fatal(msg)
	}
	// THEN the key policy holds CDK's default statement plus the organization's two, no more
	tmpl := assertions.Template_FromStack(source, nil)
	policy := tmpl.FindResources(jsii.String("AWS::KMS::Key"), nil)
	for _, r := range *policy {
		stmts := (*r)["Properties"].(map[string]interface{})["KeyPolicy"].(map[string]interface{})["Statement"].([]interface{})
		if len(stmts) != 3 {
			t.Errorf("key policy has %d statements, want 3", len(stmts))
		}
	}
	tmpl.HasResourceProperties(jsii.String("AWS::KMS::Key"), &map[string]interface{}{
		"KeyPolicy": map[string]interface{}{
			"Statement": assertions.Match_ArrayWith(&[]interface{}{
				assertions.Match_ObjectLike(&map[string]interface{}{
					"Sid":    "Allow attachment of persistent resources by grant creators of the organization",
					"Action": "kms:CreateGrant",
					"Condition": map[string]interface{}{
						"ForAnyValue:StringLike": map[string]interface{}{"aws:PrincipalOrgPaths": []interface{}{"o-abcdefghij/*/ou-ab12-11111111/*"}},
						"ArnLike":                map[string]interface{}{"aws:PrincipalArn": "arn:aws:iam::*:role/crossaccountami/*"},
						"StringEquals": assertions.Match_ObjectEquals(&map[string]interface{}{
							"kms:GranteePrincipal": []interface{}{
								"arn:aws:iam::${aws:PrincipalAccount}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"},
							"kms:RetiringPrincipal": "${aws:PrincipalArn}",
						}),
					},
				}),
			}),
		},
	})
}

func target(orgID string, units ...string) *encryptedami.OrganizationTarget {
	t := &encryptedami.OrganizationTarget{OrganizationId: jsii.String(orgID)}
	if len(units) > 0 {
		t.OrganizationalUnitIds = jsii.Strings(units...)
	}
	return t
}

func TestOrganizationBadProps(t *testing.T) {
	cases := map[string]struct {
		props encryptedami.OrganizationKeyAccessProps
		want  string
	}{
		"no target":  {encryptedami.OrganizationKeyAccessProps{}, `Key and Target: required`},
		"bad org id": {encryptedami.OrganizationKeyAccessProps{Target: target("org-1")}, `Target.OrganizationId: expected o- followed by 10 to 32 lowercase letters or digits, got "org-1"`},
		"a path, not an OU id": {encryptedami.OrganizationKeyAccessProps{Target: target("o-abcdefghij", "o-zzzzzzzzzz/r-ab12/ou-ab12-11111111/")},
			`Target.OrganizationalUnitIds: expected OU ids (ou-xxxx-xxxxxxxx) or the root id (r-xxxx) of o-abcdefghij, got "o-zzzzzzzzzz/r-ab12/ou-ab12-11111111/"`},
		"OUs of two roots": {encryptedami.OrganizationKeyAccessProps{Target: target("o-abcdefghij", "ou-ab12-11111111", "ou-cd34-22222222")},
			`Target.OrganizationalUnitIds: "ou-ab12-11111111" and "ou-cd34-22222222" are under two roots`},
		"bad suffix": {encryptedami.OrganizationKeyAccessProps{Target: target("o-abcdefghij"), ServiceLinkedRoleSuffixes: jsii.Strings("a b")}, `"a b"`},
		"suffix that repeats the role name": {encryptedami.OrganizationKeyAccessProps{Target: target("o-abcdefghij"), ServiceLinkedRoleSuffixes: jsii.Strings("myapp", "AWSServiceRoleForAutoScaling_other")},
			`ServiceLinkedRoleSuffixes[1]: "AWSServiceRoleForAutoScaling_other" repeats the role name's prefix`},
		"suffix that starts with _": {encryptedami.OrganizationKeyAccessProps{Target: target("o-abcdefghij"), ServiceLinkedRoleSuffixes: jsii.Strings("_myapp")},
			`ServiceLinkedRoleSuffixes[0]: "_myapp" starts with the "_"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
			tc.props.Key = awskms.NewKey(source, jsii.String("Key"), nil)
			msg := constructtest.Catch(func() { encryptedami.NewOrganizationKeyAccess(source, jsii.String("Org"), &tc.props) })
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "Source/Org") {
				t.Errorf("error %q does not name the path and the value %s", msg, tc.want)
			}
		})
	}
}

// TestKeyPolicySizeLimitForAKeyImportedInEachStack: each destination stack
// imports the key by ARN (a Go value of its own), as an app of one
// destination per stack does; the 32 KB check counts one policy per ARN.
func TestKeyPolicySizeLimitForAKeyImportedInEachStack(t *testing.T) {
	// GIVEN 60 destination stacks, each importing the same key ARN
	app := awscdk.NewApp(nil)
	for i := 0; i < 60; i++ {
		account := fmt.Sprintf("%012d", 222222222222+i)
		stack := awscdk.NewStack(app, jsii.String("Dest-"+account), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
		key := awskms.Key_FromKeyArn(stack, jsii.String("Key"), jsii.String(importedKeyArn))
		encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String("ami-0123456789abcdef0")})
	}
	// WHEN the app validates, THEN the check fires for the one policy, with the 60 destinations counted
	msg := constructtest.Catch(func() { app.Synth(nil) })
	if m := fitRe.FindStringSubmatch(msg); m == nil || !strings.Contains(msg, "with 60 destinations") {
		t.Fatalf("60 destinations of one imported key were accepted, or the error is unclear: %q", msg)
	}
	t.Logf("%s", msg)
}

// With KeyPolicyScope on an imported key, the statements land in the key
// policy with the source stack's mark at the end of each Sid (27 bytes
// each): the key's budget counts them as written, so fewer destinations fit
// than on a key of the app (TestKeyPolicySizeLimit), and the check still
// fires at synth rather than at deploy.
func TestManagedKeyPolicySizeLimit(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.Key_FromKeyArn(source, jsii.String("Key"), jsii.String("arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"))
	var msg string
	for i := 0; i < 25 && msg == ""; i++ {
		account := fmt.Sprintf("%012d", 222222222222+i)
		stack := awscdk.NewStack(app, jsii.String("Dest-"+account), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
		msg = constructtest.Catch(func() {
			encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{
				Key: key, ImageId: jsii.String("ami-0123456789abcdef0"), KeyPolicyScope: source,
			})
		})
	}
	if msg == "" {
		msg = constructtest.Catch(func() { app.Synth(nil) })
	}
	m := fitRe.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("25 managed destinations on one key: %q", msg)
	}
	t.Logf("about %s destinations fit", m[1])
	if m[1] != "23" {
		t.Errorf("about %s destinations fit a managed key policy, want 23 (24 before the marks): %s", m[1], msg)
	}
}

package encryptedami_test

import (
	"encoding/json"
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

// accountIDs are n consecutive account ids from 222222222222.
func accountIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%012d", 222222222222+i)
	}
	return out
}

// newAccountsSource is a source stack with a key and an AccountsKeyAccess
// "Destinations" of accounts on it, in a new app; msg is the construct's
// error, if any.
func newAccountsSource(accounts []string) (app awscdk.App, source awscdk.Stack, key awskms.Key, access encryptedami.AccountsKeyAccess, msg string) {
	app = awscdk.NewApp(nil)
	source = awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key = awskms.NewKey(source, jsii.String("AmiKey"), nil)
	msg = constructtest.Catch(func() {
		access = encryptedami.NewAccountsKeyAccess(source, jsii.String("Destinations"), &encryptedami.AccountsKeyAccessProps{
			Key: key, Accounts: jsii.Strings(accounts...),
		})
	})
	return
}

var accountsFitRe = regexp.MustCompile(`holds about (\d+) accounts`)

// TestAccountsFitOneKeyPolicy: 500 destination accounts fit one key policy
// with the ACCOUNTS style, as synthesized (the key policy's JSON in the
// template is under KMS's 32,768 bytes), and the construct's own check says
// how many fit: that many are accepted, one more is refused.
func TestAccountsFitOneKeyPolicy(t *testing.T) {
	// GIVEN a key whose AccountsKeyAccess lists 500 accounts, and three of
	// them as destination stacks of the app
	accounts := accountIDs(500)
	app, source, key, access, msg := newAccountsSource(accounts)
	if msg != "" {
		t.Fatalf("500 accounts refused: %s", msg)
	}
	for _, account := range accounts[:3] {
		stack := awscdk.NewStack(app, jsii.String("AmiDestination-"+account), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
		encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key: key, ImageId: jsii.String("ami-0123456789abcdef0"), AccountsKeyAccess: access,
		})
	}
	// WHEN the app synthesizes
	if msg := constructtest.Catch(func() { app.Synth(nil) }); msg != "" {
		t.Fatalf("synth: %s", msg)
	}
	// THEN the key policy holds CDK's default statement and the two
	// statements, each naming the 500 accounts as principals, and its JSON
	// is within KMS's limit
	tmpl := assertions.Template_FromStack(source, nil)
	for _, r := range *tmpl.FindResources(jsii.String("AWS::KMS::Key"), nil) {
		policy := (*r)["Properties"].(map[string]interface{})["KeyPolicy"]
		stmts := policy.(map[string]interface{})["Statement"].([]interface{})
		if len(stmts) != 3 {
			t.Fatalf("key policy has %d statements, want 3 (CDK's default, use, CreateGrant)", len(stmts))
		}
		for _, s := range stmts[1:] {
			s := s.(map[string]interface{})
			principals, _ := s["Principal"].(map[string]interface{})["AWS"].([]interface{})
			if len(principals) != 500 || principals[0] != "222222222222" || principals[499] != "222222222721" {
				t.Errorf("%s: %d principals (%v ... ), want the 500 account ids", s["Sid"], len(principals), principals[:1])
			}
		}
		body, _ := json.Marshal(policy)
		t.Logf("key policy with 500 accounts: %d bytes of %d", len(body), encryptedami.MaxKeyPolicyBytes)
		if len(body) > encryptedami.MaxKeyPolicyBytes-2048 {
			t.Errorf("key policy with 500 accounts is %d bytes: over the limit less the room kept for the key's own statements", len(body))
		}
	}

	// AND the construct says how many accounts fit, and means it
	_, _, _, _, msg = newAccountsSource(accountIDs(2000))
	m := accountsFitRe.FindStringSubmatch(msg)
	if m == nil || !strings.Contains(msg, "Accounts: 2000 accounts") || !strings.Contains(msg, "AmiSource/Destinations") {
		t.Fatalf("2000 accounts: the error does not name the prop, the count and how many fit: %q", msg)
	}
	fit, _ := strconv.Atoi(m[1])
	t.Logf("accounts per key policy (ACCOUNTS style, examples' names): %d; %s", fit, msg)
	if fit < 500 {
		t.Errorf("about %d accounts fit one key policy, want at least 500", fit)
	}
	if _, _, _, _, msg := newAccountsSource(accountIDs(fit)); msg != "" {
		t.Errorf("the error says %d accounts fit, but %d are refused: %s", fit, fit, msg)
	}
	if _, _, _, _, msg := newAccountsSource(accountIDs(fit + 1)); !strings.Contains(msg, "holds about "+m[1]+" accounts") {
		t.Errorf("the error says %d accounts fit, but %d give %q", fit, fit+1, msg)
	}
}

// TestAccountsBudgetWithOtherStatements: an account list that fits alone
// but not next to SCOPED destinations on the same key fails the app's
// validation, saying how many of its accounts fit.
func TestAccountsBudgetWithOtherStatements(t *testing.T) {
	app, _, key, _, msg := newAccountsSource(accountIDs(960))
	if msg != "" {
		t.Fatal(msg)
	}
	// 5 SCOPED destinations, about 1.2 KB each
	msg = addDestinations(app, key, 5, nil)
	if !strings.Contains(msg, "The AccountsKeyAccess AmiSource/Destinations lists 960 accounts at 30 bytes each: about ") {
		t.Fatalf("the budget error does not speak of the account list: %q", msg)
	}
	t.Logf("%s", msg)
}

func TestAccountsBadProps(t *testing.T) {
	many := accountIDs(2000)
	for name, tc := range map[string]struct {
		accounts *[]*string
		suffixes *[]*string
		want     string
	}{
		"no accounts":         {nil, nil, "Key and Accounts: required"},
		"empty":               {jsii.Strings(), nil, "Accounts: at least one destination account id, got none"},
		"not 12 digits":       {jsii.Strings("222222222222", "33333333333"), nil, `Accounts[1]: "33333333333" is not an AWS account id (expected 12 digits)`},
		"letters":             {jsii.Strings("22222222222x"), nil, `Accounts[0]: "22222222222x" is not an AWS account id`},
		"twice":               {jsii.Strings("222222222222", "333333333333", "222222222222"), nil, `Accounts[2]: "222222222222" is listed twice (Accounts[0] too)`},
		"a token":             {&[]*string{awscdk.Aws_ACCOUNT_ID()}, nil, "Accounts[0]: must be known at synth time (each destination is checked against the list), got a value known only at deploy time"},
		"over the key policy": {jsii.Strings(many...), nil, "Accounts: 2000 accounts make statements of about"},
		"bad suffix":          {jsii.Strings("222222222222"), jsii.Strings("ok", "a b"), `ServiceLinkedRoleSuffixes[1]: `},
		"suffix that repeats the role name": {jsii.Strings("222222222222"), jsii.Strings("AWSServiceRoleForAutoScaling_x"),
			`ServiceLinkedRoleSuffixes[0]: "AWSServiceRoleForAutoScaling_x" repeats the role name's prefix`},
	} {
		t.Run(name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
			key := awskms.NewKey(source, jsii.String("Key"), nil)
			msg := constructtest.Catch(func() {
				encryptedami.NewAccountsKeyAccess(source, jsii.String("Destinations"), &encryptedami.AccountsKeyAccessProps{
					Key: key, Accounts: tc.accounts, ServiceLinkedRoleSuffixes: tc.suffixes,
				})
			})
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "encryptedami.NewAccountsKeyAccess Source/Destinations: ") || strings.Contains(msg, "${Token[") {
				t.Errorf("error %q, want the path and %q", msg, tc.want)
			}
		})
	}
}

// TestAccountsLink: a destination linked to an AccountsKeyAccess adds no
// statement of its own, and a link that cannot be right is a synth error
// naming it.
func TestAccountsLink(t *testing.T) {
	dest := func(app awscdk.App, account string, props *encryptedami.CrossAccountEncryptedAmiProps) string {
		stack := awscdk.NewStack(app, jsii.String("AmiDestination-"+account), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
		props.ImageId = jsii.String("ami-0123456789abcdef0")
		return constructtest.Catch(func() { encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("SharedAmi"), props) })
	}
	t.Run("listed", func(t *testing.T) {
		app, source, key, access, _ := newAccountsSource(accountIDs(3))
		if msg := dest(app, "222222222223", &encryptedami.CrossAccountEncryptedAmiProps{Key: key, AccountsKeyAccess: access}); msg != "" {
			t.Fatal(msg)
		}
		app.Synth(nil)
		stmts := (*assertions.Template_FromStack(source, nil).FindResources(jsii.String("AWS::KMS::Key"), nil))
		for _, r := range stmts {
			if n := len((*r)["Properties"].(map[string]interface{})["KeyPolicy"].(map[string]interface{})["Statement"].([]interface{})); n != 3 {
				t.Errorf("key policy has %d statements, want 3: the destination adds none", n)
			}
		}
	})
	for name, tc := range map[string]struct {
		account string
		props   func(key awskms.Key, access encryptedami.AccountsKeyAccess, other awskms.Key) *encryptedami.CrossAccountEncryptedAmiProps
		want    string
	}{
		"unlisted account": {"999988887777", func(key awskms.Key, access encryptedami.AccountsKeyAccess, _ awskms.Key) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key, AccountsKeyAccess: access}
		}, `AccountsKeyAccess: this destination's account 999988887777 is not in the Accounts of AmiSource/Destinations (3 accounts); add "999988887777" there`},
		"another key": {"222222222222", func(_ awskms.Key, access encryptedami.AccountsKeyAccess, other awskms.Key) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: other, AccountsKeyAccess: access}
		}, "AccountsKeyAccess: it is on the key a key of this app"},
		"another style": {"222222222222", func(key awskms.Key, access encryptedami.AccountsKeyAccess, _ awskms.Key) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key, AccountsKeyAccess: access, KeyPolicyStyle: encryptedami.KeyPolicyStyle_SCOPED}
		}, "AccountsKeyAccess: it covers this destination with the listed accounts' statements, which is KeyPolicyStyle_ACCOUNTS; got KeyPolicyStyle SCOPED"},
		"the style without the link, on a key of the app": {"222222222222", func(key awskms.Key, _ encryptedami.AccountsKeyAccess, _ awskms.Key) *encryptedami.CrossAccountEncryptedAmiProps {
			return &encryptedami.CrossAccountEncryptedAmiProps{Key: key, KeyPolicyStyle: encryptedami.KeyPolicyStyle_ACCOUNTS}
		}, "AccountsKeyAccess: required with KeyPolicyStyle_ACCOUNTS for a key of this app (AmiSource/AmiKey)"},
	} {
		t.Run(name, func(t *testing.T) {
			app, source, key, access, _ := newAccountsSource(accountIDs(3))
			other := awskms.NewKey(source, jsii.String("OtherKey"), nil)
			msg := dest(app, tc.account, tc.props(key, access, other))
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "AmiDestination-"+tc.account+"/SharedAmi") {
				t.Errorf("error %q, want the path and %q", msg, tc.want)
			}
		})
	}
}

// TestAccountsKeyAccessOnAnImportedKey: placed like NewOrganizationKeyAccess
// (a custom resource keeps the statements in the key's account and region, a
// warning prints them elsewhere), and a destination of another app may name
// KeyPolicyStyle_ACCOUNTS alone on an imported key, adding no statement.
func TestAccountsKeyAccessOnAnImportedKey(t *testing.T) {
	app := awscdk.NewApp(nil)
	keyStack := awscdk.NewStack(app, jsii.String("KeyAccount"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	other := awscdk.NewStack(app, jsii.String("Elsewhere"), &awscdk.StackProps{Env: constructtest.Env("333333333333", "us-east-1")})
	props := func(s awscdk.Stack) *encryptedami.AccountsKeyAccessProps {
		return &encryptedami.AccountsKeyAccessProps{
			Key: awskms.Key_FromKeyArn(s, jsii.String("Key"), jsii.String(importedKeyArn)), Accounts: jsii.Strings("222222222222", "444444444444"),
		}
	}
	managed := encryptedami.NewAccountsKeyAccess(keyStack, jsii.String("Access"), props(keyStack))
	warned := encryptedami.NewAccountsKeyAccess(other, jsii.String("Access"), props(other))
	if !managed.KeyPolicyManaged() || warned.KeyPolicyManaged() {
		t.Errorf("KeyPolicyManaged: in the key's account %v, elsewhere %v; want true, false", managed.KeyPolicyManaged(), warned.KeyPolicyManaged())
	}
	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	ami := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: awskms.Key_FromKeyArn(dest, jsii.String("Key"), jsii.String(importedKeyArn)), ImageId: jsii.String("ami-0123456789abcdef0"), KeyPolicyStyle: encryptedami.KeyPolicyStyle_ACCOUNTS,
	})
	if n := len(*ami.KeyPolicyStatements()); n != 0 || !ami.KeyPolicyManaged() {
		t.Errorf("a KeyPolicyStyle_ACCOUNTS destination has %d statements (managed %v), want none", n, ami.KeyPolicyManaged())
	}
	assertions.Template_FromStack(keyStack, nil).HasResourceProperties(jsii.String("Custom::KmsKeyPolicyStatements"), &map[string]interface{}{
		"KeyArn":     importedKeyArn,
		"Statements": assertions.Match_StringLikeRegexp(jsii.String(`of the accounts of Access.*"Principal":\{"AWS":\["222222222222","444444444444"\]\}`)),
	})
	assertions.Template_FromStack(other, nil).ResourceCountIs(jsii.String("Custom::KmsKeyPolicyStatements"), jsii.Number(0))
	assertions.Annotations_FromStack(other).HasWarning(jsii.String("/Elsewhere/Access"), assertions.Match_StringLikeRegexp(jsii.String("is imported.*Place the AccountsKeyAccess in a stack of the key's account and region")))
	assertions.Annotations_FromStack(dest).HasNoWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("is imported")))
}

// TestAccountsLaunchers: an AccountsKeyAccess lets in the launchers it
// names, and a destination linked to it whose launchers it does not cover
// fails at synth naming the prop and the role its grant would be denied
// for (its statements are the only ones that name them).
func TestAccountsLaunchers(t *testing.T) {
	for name, tc := range map[string]struct {
		access, dest []encryptedami.LauncherKind
		want         string
	}{
		"covered":     {[]encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EC2_FLEET}, []encryptedami.LauncherKind{encryptedami.LauncherKind_EC2_FLEET}, ""},
		"not covered": {nil, []encryptedami.LauncherKind{encryptedami.LauncherKind_SPOT}, "AccountsKeyAccess: AmiSource/Destinations does not let SPOT (arn:aws:iam::222222222222:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot) use the key"},
	} {
		t.Run(name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
			key := awskms.NewKey(source, jsii.String("AmiKey"), nil)
			var access encryptedami.AccountsKeyAccess
			props := &encryptedami.AccountsKeyAccessProps{Key: key, Accounts: jsii.Strings("222222222222")}
			if tc.access != nil {
				props.Launchers = &tc.access
			}
			if msg := constructtest.Catch(func() { access = encryptedami.NewAccountsKeyAccess(source, jsii.String("Destinations"), props) }); msg != "" {
				t.Fatal(msg)
			}
			stack := awscdk.NewStack(app, jsii.String("AmiDestination"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
			msg := constructtest.Catch(func() {
				encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
					Key: key, ImageId: jsii.String("ami-0123456789abcdef0"), AccountsKeyAccess: access, Launchers: &tc.dest,
				})
			})
			if tc.want == "" {
				if msg != "" {
					t.Fatal(msg)
				}
				stmts := access.KeyPolicyStatements()
				body, _ := json.Marshal((*stmts)[1].ToJSON())
				if !strings.Contains(string(body), "role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet") {
					t.Errorf("the CreateGrant statement does not name the EC2 Fleet role: %s", body)
				}
				return
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want %q", msg, tc.want)
			}
		})
	}
}

package encryptedami_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
)

const imageID = "ami-0123456789abcdef0"

// TestMoreBadProps extends TestBadProps: every case fails at construction,
// naming the construct path, the prop and the value received, and adds
// nothing to the tree.
func TestMoreBadProps(t *testing.T) {
	imported := func(s awscdk.Stack, arn string) awskms.IKey {
		return awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String(arn))
	}
	cases := []struct {
		name    string
		destEnv *awscdk.Environment
		props   func(app awscdk.App, stack awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps
		want    []string
	}{
		{"destination account not 12 digits", constructtest.Env("22222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID)}
			}, []string{`"22222"`, "12 digits"}},
		{"malformed key ARN", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, "arn:aws:kms:us-east-1:111111111111:key/xyz"), ImageId: jsii.String(imageID)}
			}, []string{"Key:", `"arn:aws:kms:us-east-1:111111111111:key/xyz"`, "key/<key-id>"}},
		{"key ARN without a region", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, "arn:aws:kms::111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"), ImageId: jsii.String(imageID)}
			}, []string{"Key:", `"arn:aws:kms::111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"`, "not an AWS region"}},
		{"key of this app in another region", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, _ awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "eu-west-1")})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: awskms.NewKey(src, jsii.String("Key"), nil), ImageId: jsii.String(imageID)}
			}, []string{"Key:", `"eu-west-1"`, `"us-east-1"`, "re-encrypt"}},
		{"image id in upper case", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String("ami-0123456789ABCDEF0")}
			}, []string{"ImageId", `"ami-0123456789ABCDEF0"`, "lowercase hex"}},
		{"instance id instead of an image id", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String("i-0123456789abcdef0")}
			}, []string{"ImageId", `"i-0123456789abcdef0"`, "ami- followed by"}},
		{"image id of 9 hex digits", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String("ami-012345678")}
			}, []string{"ImageId", `"ami-012345678"`, "8 or 17"}},
		{"empty service-linked role suffix", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID),
					ServiceLinkedRoleSuffix: jsii.String("")}
			}, []string{"ServiceLinkedRoleSuffix", `""`, "1 to 35"}},
		{"service-linked role suffix IAM rejects", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID),
					ServiceLinkedRoleSuffix: jsii.String("team/a")}
			}, []string{"ServiceLinkedRoleSuffix", `"team/a"`, "1 to 35"}},
		{"service-linked role suffix as a token", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				p := awscdk.NewCfnParameter(s, jsii.String("Suffix"), nil)
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID),
					ServiceLinkedRoleSuffix: p.ValueAsString()}
			}, []string{"ServiceLinkedRoleSuffix", "must be known at synth time", "got a value known only at deploy time"}},
		{"service-linked role suffix that repeats the role's name", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID),
					ServiceLinkedRoleSuffix: jsii.String("AWSServiceRoleForAutoScaling_myapp")}
			}, []string{"ServiceLinkedRoleSuffix: ", `"AWSServiceRoleForAutoScaling_myapp"`, "AWSServiceRoleForAutoScaling_AWSServiceRoleForAutoScaling_myapp", `"myapp"`}},
		{"service-linked role suffix that starts with _", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID),
					ServiceLinkedRoleSuffix: jsii.String("_myapp")}
			}, []string{"ServiceLinkedRoleSuffix: ", `"_myapp"`, "AWSServiceRoleForAutoScaling__myapp", `"myapp"`}},
		{"alias construct as Key", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, _ awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
				key := awskms.NewKey(src, jsii.String("Key"), nil)
				alias := awskms.NewAlias(src, jsii.String("Alias"), &awskms.AliasProps{AliasName: jsii.String("alias/ami"), TargetKey: key})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: alias, ImageId: jsii.String(imageID)}
			}, []string{"Key: ", `the alias "alias/ami"`, "Src/Alias", "the key itself", "TargetKey"}},
		{"alias by name as Key", constructtest.Env("222222222222", "us-east-1"),
			func(_ awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: awskms.Alias_FromAliasName(s, jsii.String("A"), jsii.String("alias/ami")), ImageId: jsii.String(imageID)}
			}, []string{"Key: ", `the alias "alias/ami"`, "D/A", "the key itself", "awskms.Key_FromKeyArn"}},
		{"KeyPolicyScope in another account than the key", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				other := awscdk.NewStack(app, jsii.String("Other"), &awscdk.StackProps{Env: constructtest.Env("333333333333", "us-east-1")})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID), KeyPolicyScope: other}
			}, []string{"KeyPolicyScope: ", "Other", `account "333333333333"`, `account "111111111111"`, importedKeyArn}},
		{"KeyPolicyScope in another region than the key", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				other := awscdk.NewStack(app, jsii.String("Other"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "eu-west-1")})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID), KeyPolicyScope: other}
			}, []string{"KeyPolicyScope: ", "Other", `region "eu-west-1"`, `region "us-east-1"`}},
		{"KeyPolicyScope in a stack without env", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				other := awscdk.NewStack(app, jsii.String("Other"), nil)
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID), KeyPolicyScope: other}
			}, []string{"KeyPolicyScope: ", "Other", "known only at deploy time", `account "111111111111"`}},
		{"KeyPolicyScope for a key whose ARN is a token", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
				arn := awscdk.NewCfnParameter(s, jsii.String("KeyArn"), nil)
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, *arn.ValueAsString()), ImageId: jsii.String(imageID), KeyPolicyScope: src}
			}, []string{"KeyPolicyScope: ", "D/K", "known only at deploy time", "literal ARN"}},
		{"organization style on a key of this app without its OrganizationKeyAccess", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, _ awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: awskms.NewKey(src, jsii.String("Key"), nil), ImageId: jsii.String(imageID),
					KeyPolicyStyle: encryptedami.KeyPolicyStyle_ORGANIZATION}
			}, []string{"OrganizationKeyAccess: required with KeyPolicyStyle_ORGANIZATION", "Src/Key", "got nil"}},
		{"OrganizationKeyAccess of another key", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, _ awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
				access := encryptedami.NewOrganizationKeyAccess(src, jsii.String("Access"), &encryptedami.OrganizationKeyAccessProps{
					Key: awskms.NewKey(src, jsii.String("Other"), nil), Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String("o-abcdefghij")}})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: awskms.NewKey(src, jsii.String("Key"), nil), ImageId: jsii.String(imageID),
					OrganizationKeyAccess: access}
			}, []string{"OrganizationKeyAccess: it is on the key", "Src/Access", "must be the same key"}},
		{"OrganizationKeyAccess with the scoped style", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, _ awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
				key := awskms.NewKey(src, jsii.String("Key"), nil)
				access := encryptedami.NewOrganizationKeyAccess(src, jsii.String("Access"), &encryptedami.OrganizationKeyAccessProps{
					Key: key, Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String("o-abcdefghij")}})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID),
					OrganizationKeyAccess: access, KeyPolicyStyle: encryptedami.KeyPolicyStyle_SCOPED}
			}, []string{"OrganizationKeyAccess:", "got KeyPolicyStyle SCOPED"}},
		{"KeyPolicyScope for a key of this app", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, _ awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: awskms.NewKey(src, jsii.String("Key"), nil), ImageId: jsii.String(imageID),
					KeyPolicyScope: src}
			}, []string{"KeyPolicyScope: only for an imported key", "Src/Key", "got Src"}},
		{"KeyPolicyScope with the organization style", constructtest.Env("222222222222", "us-east-1"),
			func(app awscdk.App, s awscdk.Stack) *encryptedami.CrossAccountEncryptedAmiProps {
				src := awscdk.NewStack(app, jsii.String("Src"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
				return &encryptedami.CrossAccountEncryptedAmiProps{Key: imported(s, importedKeyArn), ImageId: jsii.String(imageID),
					KeyPolicyStyle: encryptedami.KeyPolicyStyle_ORGANIZATION, KeyPolicyScope: src}
			}, []string{"KeyPolicyScope: KeyPolicyStyle_ORGANIZATION adds no statements", "got Src"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			stack := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: tc.destEnv})
			msg := constructtest.Catch(func() {
				encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("Ami"), tc.props(app, stack))
			})
			t.Log(msg)
			if msg == "" {
				t.Fatal("no error")
			}
			for _, w := range append(tc.want, " D/Ami: ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			// The error speaks of the props the user set, in words: never
			// token text, never a construct this library made.
			for _, w := range []string{"${Token[", "KeyPolicy-D-Ami"} {
				if strings.Contains(msg, w) {
					t.Errorf("error %q contains %q", msg, w)
				}
			}
			if stack.Node().TryFindChild(jsii.String("Ami")) != nil || stack.Node().TryFindChild(jsii.String("CrossAccountAmiGrantHandler")) != nil {
				t.Error("constructs were added despite the error")
			}
		})
	}
}

// TestConflictingStylesForOneDestination: two constructs that would place
// different statements under one Sid on one key fail clearly.
func TestConflictingStylesForOneDestination(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]interface{}{encryptedami.SeedArticleContextKey: "true"}})
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	dest := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("A"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
	msg := constructtest.Catch(func() {
		// Another AMI of the same key (the same one twice is refused before,
		// TestSameAmiTwiceOnOneKey).
		encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("B"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key: key, ImageId: jsii.String("ami-0123456789abcdef1"), KeyPolicyStyle: encryptedami.KeyPolicyStyle_SEED_ARTICLE,
		})
	})
	for _, w := range []string{" D/B: ", "Key:", "different statement", "Allow use of the key by AWSServiceRoleForAutoScaling of 222222222222"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

// TestSeedArticleNeedsTheRolesToExist: the article's statements name roles
// that a fresh destination does not have yet, so KMS would reject the key
// policy: synth fails and says what works, unless the app says the roles exist.
func TestSeedArticleNeedsTheRolesToExist(t *testing.T) {
	newApp := func(ctx map[string]interface{}) (awscdk.Stack, awskms.Key) {
		app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
		source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
		dest := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
		return dest, awskms.NewKey(source, jsii.String("Key"), nil)
	}
	props := func(key awskms.IKey) *encryptedami.CrossAccountEncryptedAmiProps {
		return &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID), KeyPolicyStyle: encryptedami.KeyPolicyStyle_SEED_ARTICLE}
	}

	// GIVEN fresh accounts: WHEN the style is the article's THEN synth fails, adding nothing
	dest, key := newApp(map[string]interface{}{})
	msg := constructtest.Catch(func() { encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("Ami"), props(key)) })
	for _, w := range []string{"D/Ami", "KeyPolicyStyle:", "MalformedPolicyDocumentException", "no deploy order works on fresh accounts",
		"arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-", "KeyPolicyStyle_SCOPED",
		"cdk deploy --all -c crossaccountami:seedArticleRolesExist=true", `got "SEED_ARTICLE"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	if dest.Node().TryFindChild(jsii.String("Ami")) != nil {
		t.Error("constructs were added despite the error")
	}

	// GIVEN roles that exist (a first deploy with SCOPED): THEN the article's statements are placed
	dest, key = newApp(map[string]interface{}{encryptedami.SeedArticleContextKey: "true"})
	ami := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("Ami"), props(key))
	if js := statementsJSON(t, ami); !strings.Contains(js, `"kms:ListGrants"`) || strings.Contains(js, "aws:PrincipalArn") {
		t.Errorf("statements %s, want the article's", js)
	}
}

// TestMethodBadInput: the construct's methods reject what they cannot honour.
func TestMethodBadInput(t *testing.T) {
	newAmi := func() (awscdk.App, awscdk.Stack, encryptedami.CrossAccountEncryptedAmi) {
		app := awscdk.NewApp(nil)
		dest := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
		key := awskms.Key_FromKeyArn(dest, jsii.String("K"), jsii.String(importedKeyArn))
		return app, dest, encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
	}
	t.Run("launch template with its own machine image", func(t *testing.T) {
		_, dest, ami := newAmi()
		msg := constructtest.Catch(func() {
			ami.NewLaunchTemplate(dest, jsii.String("Lt"), &encryptedami.LaunchTemplateProps{LaunchTemplate: &awsec2.LaunchTemplateProps{MachineImage: awsec2.MachineImage_LatestAmazonLinux2023(nil)}})
		})
		for _, w := range []string{"D/Lt", "LaunchTemplate.MachineImage", "must be unset", imageID} {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q does not contain %q", msg, w)
			}
		}
	})
	t.Run("empty root device name", func(t *testing.T) {
		_, dest, ami := newAmi()
		msg := constructtest.Catch(func() {
			ami.NewLaunchTemplate(dest, jsii.String("Lt"), &encryptedami.LaunchTemplateProps{RootDeviceName: jsii.String("")})
		})
		for _, w := range []string{"D/Lt", "RootDeviceName", `got ""`} {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q does not contain %q", msg, w)
			}
		}
	})
	t.Run("Auto Scaling group in another region", func(t *testing.T) {
		app, _, ami := newAmi()
		other := awscdk.NewStack(app, jsii.String("Other"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "eu-west-1")})
		vpc := awsec2.NewVpc(other, jsii.String("Vpc"), &awsec2.VpcProps{AvailabilityZones: jsii.Strings("eu-west-1a"), NatGateways: jsii.Number(0),
			SubnetConfiguration: &[]*awsec2.SubnetConfiguration{{Name: jsii.String("P"), SubnetType: awsec2.SubnetType_PUBLIC}}})
		asg := awsautoscaling.NewAutoScalingGroup(other, jsii.String("Asg"), &awsautoscaling.AutoScalingGroupProps{
			Vpc: vpc, InstanceType: awsec2.NewInstanceType(jsii.String("t3.micro")), MachineImage: awsec2.MachineImage_LatestAmazonLinux2023(nil),
		})
		msg := constructtest.Catch(func() { ami.ConfigureAutoScalingGroup(asg) })
		for _, w := range []string{"D/Ami", "Other/Asg", `"eu-west-1"`, `"us-east-1"`} {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q does not contain %q", msg, w)
			}
		}
	})
}

// TestImageIdToken: an image id unknown at synth time is accepted; EC2
// checks it when the launch template is created.
func TestImageIdToken(t *testing.T) {
	app := awscdk.NewApp(nil)
	dest := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	param := awscdk.NewCfnParameter(dest, jsii.String("ImageId"), nil)
	key := awskms.Key_FromKeyArn(dest, jsii.String("K"), jsii.String(importedKeyArn))
	if msg := constructtest.Catch(func() {
		encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: param.ValueAsString()})
	}); msg != "" {
		t.Fatal(msg)
	}
}

// TestSameAccount: the key's account may also be the destination (one
// account builds and runs the AMI). The statements stay valid: the account
// principal plus aws:PrincipalArn works in the key's own account, and the
// grant is created the same way. Key and construct may share one stack.
func TestSameAccount(t *testing.T) {
	for _, sameStack := range []bool{false, true} {
		name := map[bool]string{false: "two stacks", true: "one stack"}[sameStack]
		t.Run(name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
			key := awskms.NewKey(source, jsii.String("Key"), nil)
			dest := source
			if !sameStack {
				dest = awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
			}
			encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
			src := assertions.Template_FromStack(source, nil)
			src.HasResourceProperties(jsii.String("AWS::KMS::Key"), &map[string]interface{}{
				"KeyPolicy": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
					assertions.Match_ObjectLike(&map[string]interface{}{
						"Sid":       "Allow use of the key by AWSServiceRoleForAutoScaling of 111111111111",
						"Principal": map[string]interface{}{"AWS": "arn:aws:iam::111111111111:root"},
					}),
				})},
			})
			assertions.Template_FromStack(dest, nil).ResourceCountIs(jsii.String("Custom::KmsGrant"), jsii.Number(1))
			// Synth of the whole app succeeds (no dependency cycle).
			app.Synth(nil)
		})
	}
}

// TestSameKeySameDestinationSharesOneGrant: two AMIs encrypted with one key,
// launched in one destination stack, need one grant for the service-linked
// role, not two: the second construct uses the first one's grant and
// service-linked role resource. Stacks of their own keep their own grants
// (each stack's handler creates and revokes only its own).
func TestSameKeySameDestinationSharesOneGrant(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	dest := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	a := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("A"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
	b := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("B"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String("ami-0123456789abcdef1")})

	// WHEN an Auto Scaling group is configured with the second
	vpc := awsec2.NewVpc(dest, jsii.String("Vpc"), &awsec2.VpcProps{AvailabilityZones: jsii.Strings("us-east-1a"), NatGateways: jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{{Name: jsii.String("P"), SubnetType: awsec2.SubnetType_PUBLIC}}})
	asg := awsautoscaling.NewAutoScalingGroup(dest, jsii.String("Asg"), &awsautoscaling.AutoScalingGroupProps{
		Vpc: vpc, LaunchTemplate: b.NewLaunchTemplate(dest, jsii.String("Lt"), &encryptedami.LaunchTemplateProps{LaunchTemplate: &awsec2.LaunchTemplateProps{InstanceType: awsec2.NewInstanceType(jsii.String("t3.micro"))}}),
	})
	b.ConfigureAutoScalingGroup(asg)
	grantID := *dest.GetLogicalId(a.Grant().Resource().Node().DefaultChild().(awscdk.CfnElement))
	// THEN the stack has one grant and one service-linked role resource, and the group waits for them
	tmpl := assertions.Template_FromStack(dest, nil)
	tmpl.ResourceCountIs(jsii.String("Custom::KmsGrant"), jsii.Number(1))
	tmpl.ResourceCountIs(jsii.String("Custom::AutoScalingServiceLinkedRole"), jsii.Number(1))
	if *a.Grant().Node().Path() != *b.Grant().Node().Path() {
		t.Errorf("grants %s and %s, want one shared grant", *a.Grant().Node().Path(), *b.Grant().Node().Path())
	}
	tmpl.HasResource(jsii.String("AWS::AutoScaling::AutoScalingGroup"), &map[string]interface{}{
		"DependsOn": assertions.Match_ArrayWith(&[]interface{}{grantID}),
	})
}

// TestSameAmiTwiceOnOneKey: two constructs for the same AMI, key and
// service-linked role in one stack would silently share one grant; the
// second is refused with both paths.
func TestSameAmiTwiceOnOneKey(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	dest := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("A"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
	msg := constructtest.Catch(func() {
		encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("B"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
	})
	t.Log(msg)
	for _, w := range []string{" D/B: ", "ImageId: ", `"` + imageID + `"`, "D/A", "Source/Key", "use D/A"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "${Token[") {
		t.Errorf("error %q shows token text", msg)
	}
	if dest.Node().TryFindChild(jsii.String("B")) != nil {
		t.Error("constructs were added despite the error")
	}
}

// TestSharedGrantHealScheduleMustAgree: a second AMI of the same key and
// role shares the first one's grant, so a HealSchedule of its own would be
// ignored: it is refused, naming the construct that holds the grant.
func TestSharedGrantHealScheduleMustAgree(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	dest := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("A"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
	msg := constructtest.Catch(func() {
		encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("B"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key: key, ImageId: jsii.String("ami-0123456789abcdef1"),
			HealSchedule: awsevents.Schedule_Rate(awscdk.Duration_Hours(jsii.Number(6))),
		})
	})
	t.Log(msg)
	for _, w := range []string{" D/B: ", "HealSchedule: ", "D/A", "rate(6 hours)", "none"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	if dest.Node().TryFindChild(jsii.String("B")) != nil {
		t.Error("constructs were added despite the error")
	}
}

// TestSameAccountKeyWarns: a key in the destination's own account is
// legitimate (one account builds and runs the AMI) and still works, but
// needs no grant: AWS documents key policy statements alone for it. A
// warning says so, with an id to acknowledge; a cross-account key has none.
func TestSameAccountKeyWarns(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	same := awscdk.NewStack(app, jsii.String("Same"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	other := awscdk.NewStack(app, jsii.String("Other"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	for _, s := range []awscdk.Stack{same, other} {
		encryptedami.NewCrossAccountEncryptedAmi(s, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
	}
	sameAnnotations := assertions.Annotations_FromStack(same)
	sameAnnotations.HasWarning(jsii.String("/Same/Ami"), assertions.Match_StringLikeRegexp(jsii.String(
		`Key: the key Source/Key of stack Source is in this stack's account 111111111111\..*needs no grant.*key-policy-requirements-EBS-encryption\.html.*\[ack: crossaccountami:same-account-key\]`)))
	sameAnnotations.HasNoWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String(`\$\{Token\[`)))
	assertions.Annotations_FromStack(other).HasNoWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("same-account-key")))
}

// TestWarningsShowNoTokenText: an imported key whose ARN is a token (a
// parameter) gets the imported-key warning, which says what the key is in
// words instead of printing ${Token[...]}.
func TestWarningsShowNoTokenText(t *testing.T) {
	app := awscdk.NewApp(nil)
	dest := awscdk.NewStack(app, jsii.String("D"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	arn := awscdk.NewCfnParameter(dest, jsii.String("KeyArn"), nil)
	key := awskms.Key_FromKeyArn(dest, jsii.String("K"), arn.ValueAsString())
	encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("Ami"), &encryptedami.CrossAccountEncryptedAmiProps{Key: key, ImageId: jsii.String(imageID)})
	annotations := assertions.Annotations_FromStack(dest)
	annotations.HasWarning(jsii.String("/D/Ami"), assertions.Match_StringLikeRegexp(jsii.String(`^The key D/K \(its ARN is a value known only at deploy time\) is imported, so this app does not edit its policy\. Import the key with its literal ARN and set KeyPolicyScope`)))
	annotations.HasNoWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String(`\$\{Token\[`)))
}

package amicopy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/amicopy"
	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
)

const (
	sourceKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	// copierArn is the handler role of constructtest.NewStack (stack Dest
	// in us-east-1), as kmsgrant's tests know it.
	copierArn = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-Dest-29201ce4b7"
)

func imported(s awscdk.Stack, arn string) awskms.IKey {
	return awskms.Key_FromKeyArn(s, jsii.String(arn), jsii.String(arn))
}

// TestBadProps: every bad value fails at construction, naming the
// construct path, the prop and the value received.
func TestBadProps(t *testing.T) {
	valid := func(s awscdk.Stack) *amicopy.CopiedAmiProps {
		return &amicopy.CopiedAmiProps{SourceImageId: jsii.String("ami-0123456789abcdef0"), SourceKey: imported(s, sourceKeyArn)}
	}
	cases := []struct {
		name string
		mod  func(s awscdk.Stack, p *amicopy.CopiedAmiProps)
		want []string
	}{
		{"no image", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) { p.SourceImageId = nil }, []string{"SourceImageId: required, got nil"}},
		{"bad image", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) { p.SourceImageId = jsii.String("ami-XYZ") }, []string{`SourceImageId: "ami-XYZ" is not an AMI id`}},
		{"no source key", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) { p.SourceKey = nil }, []string{"SourceKey: required, got nil"}},
		{"source key of another region", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.SourceKey = imported(s, strings.Replace(sourceKeyArn, "us-east-1", "eu-west-1", 1))
		}, []string{`SourceKey: the key is in region "eu-west-1"`, `"us-east-1"`}},
		{"destination key of another account", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.DestinationKey = imported(s, "arn:aws:kms:us-east-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
		}, []string{"DestinationKey: the key arn:aws:kms:us-east-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab is in account 333333333333 and region us-east-1", "account 222222222222"}},
		{"destination key of this app in another region", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			other := awscdk.NewStack(s.Node().Scope().(constructs.Construct), jsii.String("Other"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "eu-west-1")})
			p.DestinationKey = awskms.NewKey(other, jsii.String("Key"), nil)
		}, []string{"DestinationKey: the key Other/Key is in account 222222222222 and region eu-west-1"}},
		{"bad name", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) { p.Name = jsii.String("a") }, []string{`Name: "a" is not a valid AMI name prefix`}},
		{"service timeout over an hour", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.ServiceTimeout = awscdk.Duration_Hours(jsii.Number(2))
		},
			[]string{"ServiceTimeout: expected 1 to 3600 whole seconds", "got 2 hours"}},
		{"launchers without a destination key", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.DestinationKeyLaunchers = &[]encryptedami.LauncherKind{encryptedami.LauncherKind_EC2_FLEET}
		}, []string{"DestinationKeyLaunchers and DestinationKeyLauncherRoles: only with DestinationKey"}},
		{"an unknown launcher", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.DestinationKey = awskms.NewKey(s, jsii.String("CopyKey"), nil)
			p.DestinationKeyLaunchers = &[]encryptedami.LauncherKind{"BATCH"}
		}, []string{`DestinationKeyLaunchers[0]: expected one of`, `got "BATCH"`}},
		{"a launcher role of another account", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.DestinationKey = awskms.NewKey(s, jsii.String("CopyKey"), nil)
			p.DestinationKeyLauncherRoles = &[]awsiam.IRole{awsiam.Role_FromRoleArn(s, jsii.String("R"), jsii.String("arn:aws:iam::333333333333:role/karpenter"), nil)}
		}, []string{"DestinationKeyLauncherRoles[0]: the role arn:aws:iam::333333333333:role/karpenter is in account 333333333333"}},
		{"the article's style", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.KeyPolicyStyle = encryptedami.KeyPolicyStyle_SEED_ARTICLE
		},
			[]string{"KeyPolicyStyle: expected SCOPED, ACCOUNTS or ORGANIZATION for a copy", `got "SEED_ARTICLE"`}},
		{"ACCOUNTS on a key of this app without SourceKeyAccess", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.SourceKey = awskms.NewKey(s, jsii.String("Own"), nil)
			p.KeyPolicyStyle = encryptedami.KeyPolicyStyle_ACCOUNTS
		}, []string{"SourceKeyAccess: required with KeyPolicyStyle ACCOUNTS for a key of this app (Dest/Own)", "got nil"}},
		{"a SourceKeyAccess that does not list this account", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.SourceKeyAccess = amicopy.NewCopySourceKeyAccess(s, jsii.String("Access"), &amicopy.CopySourceKeyAccessProps{Key: p.SourceKey, Accounts: jsii.Strings("333333333333")})
		}, []string{"SourceKeyAccess: Dest/Access lists the accounts [333333333333], not this stack's account 222222222222"}},
		{"a SourceKeyAccess on another key", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.SourceKeyAccess = amicopy.NewCopySourceKeyAccess(s, jsii.String("Access"), &amicopy.CopySourceKeyAccessProps{
				Key: imported(s, strings.Replace(sourceKeyArn, "1234abcd", "9999abcd", 1)), Accounts: jsii.Strings("222222222222")})
		}, []string{"SourceKeyAccess: it is on the key arn:aws:kms:us-east-1:111111111111:key/9999abcd", "they must be the same key"}},
		{"SCOPED next to a SourceKeyAccess", func(s awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.SourceKeyAccess = amicopy.NewCopySourceKeyAccess(s, jsii.String("Access"), &amicopy.CopySourceKeyAccessProps{Key: p.SourceKey, OrganizationId: jsii.String("o-abcdefghij")})
			p.KeyPolicyStyle = encryptedami.KeyPolicyStyle_SCOPED
		}, []string{"SourceKeyAccess: Dest/Access covers this destination with the statements of KeyPolicyStyle_ORGANIZATION; got KeyPolicyStyle SCOPED"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := constructtest.NewStack()
			p := valid(s)
			tc.mod(s, p)
			msg := constructtest.Catch(func() { amicopy.NewCopiedAmi(s, jsii.String("Copy"), p) })
			if msg == "" {
				t.Fatal("no error")
			}
			for _, want := range append([]string{"amicopy.NewCopiedAmi Dest/Copy: "}, tc.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q\nlacks %q", msg, want)
				}
			}
		})
	}
}

// TestImportedSourceKeyAndDefaultKey: an imported source key gets no edit
// and a warning that prints the statements for the copier role; with no
// DestinationKey the copy uses aws/ebs (no KmsKeyId) and the copier gets no
// KMS permission on a key of this account.
func TestImportedSourceKeyAndDefaultKey(t *testing.T) {
	s := constructtest.NewStack()
	ami := amicopy.NewCopiedAmi(s, jsii.String("Copy"), &amicopy.CopiedAmiProps{
		SourceImageId: jsii.String("ami-0123456789abcdef0"), SourceKey: imported(s, sourceKeyArn),
	})
	if ami.SourceKeyPolicyManaged() || len(*ami.SourceKeyPolicyStatements()) != 2 || *ami.CopierRoleArn() != copierArn || ami.DestinationKeyArn() != nil {
		t.Errorf("managed %v, %d statements, copier %s, destination key %v", ami.SourceKeyPolicyManaged(), len(*ami.SourceKeyPolicyStatements()), *ami.CopierRoleArn(), ami.DestinationKeyArn())
	}
	warnings := assertions.Annotations_FromStack(s).FindWarning(jsii.String("/Dest/Copy"), assertions.Match_AnyValue())
	if len(*warnings) != 1 || !strings.Contains(jsonOf((*warnings)[0]), copierArn) || !strings.Contains(jsonOf((*warnings)[0]), "kms:GrantIsForAWSResource") {
		t.Errorf("warnings %s, want one that prints the copier's statements", jsonOf(warnings))
	}
	tmpl := assertions.Template_FromStack(s, nil)
	copies := *tmpl.FindResources(jsii.String("Custom::CrossAccountAmiCopy"), nil)
	for _, r := range copies {
		props := (*r)["Properties"].(map[string]interface{})
		if _, ok := props["KmsKeyId"]; ok || props["ServiceTimeout"] != "3600" {
			t.Errorf("copy properties %v, want no KmsKeyId (aws/ebs) and ServiceTimeout 3600", props)
		}
	}
	if len(copies) != 1 {
		t.Errorf("%d copies", len(copies))
	}
	policies := jsonOf(tmpl.FindResources(jsii.String("AWS::IAM::Policy"), nil))
	if strings.Contains(policies, ":222222222222:key/") || !strings.Contains(policies, sourceKeyArn) {
		t.Errorf("the copier's policies %s: want the source key's IAM half and no key of this account", policies)
	}
}

func jsonOf(v interface{}) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSourceKeyAccess: a CopySourceKeyAccess on a key of the app puts the
// two pattern statements on its policy once; the copies it covers add none.
func TestSourceKeyAccess(t *testing.T) {
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: constructtest.Env("111111111111", "us-east-1")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	access := amicopy.NewCopySourceKeyAccess(source, jsii.String("Copiers"), &amicopy.CopySourceKeyAccessProps{Key: key, Accounts: jsii.Strings("333333333333", "222222222222")})
	for _, account := range []string{"222222222222", "333333333333"} {
		dest := awscdk.NewStack(app, jsii.String("Dest"+account), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
		ami := amicopy.NewCopiedAmi(dest, jsii.String("Copy"), &amicopy.CopiedAmiProps{
			SourceImageId: jsii.String("ami-0123456789abcdef0"), SourceKey: key, SourceKeyAccess: access,
		})
		if n := len(*ami.SourceKeyPolicyStatements()); n != 0 || !ami.SourceKeyPolicyManaged() {
			t.Errorf("%s: %d statements of its own, managed %v; want none (the access covers it)", account, n, ami.SourceKeyPolicyManaged())
		}
	}
	if !access.KeyPolicyManaged() {
		t.Error("the access's statements are not on the key of this app")
	}
	policy := jsonOf(assertions.Template_FromStack(source, nil).FindResources(jsii.String("AWS::KMS::Key"), nil))
	for _, want := range []string{
		`"Principal":{"AWS":["222222222222","333333333333"]}`,
		`"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/crossaccountami/*"}`,
		`"Sid":"Allow the copiers of Copiers to read the snapshots of the AMIs they copy"`,
		`"Bool":{"kms:GrantIsForAWSResource":"true"}`,
	} {
		if !strings.Contains(policy, want) {
			t.Errorf("the key policy lacks %s:\n%s", want, policy)
		}
	}
	if strings.Count(policy, "to read the snapshots") != 1 {
		t.Errorf("the read statement is placed %d times, want once:\n%s", strings.Count(policy, "to read the snapshots"), policy)
	}
}

// TestDestinationKeyLaunchers: the destination key's policy lets exactly
// the listed launchers' principals use it, pinned with aws:PrincipalArn.
func TestDestinationKeyLaunchers(t *testing.T) {
	s := constructtest.NewStack()
	karpenter := "arn:aws:iam::222222222222:role/karpenter/KarpenterController"
	amicopy.NewCopiedAmi(s, jsii.String("Copy"), &amicopy.CopiedAmiProps{
		SourceImageId: jsii.String("ami-0123456789abcdef0"), SourceKey: imported(s, sourceKeyArn),
		DestinationKey:              awskms.NewKey(s, jsii.String("CopyKey"), nil),
		DestinationKeyLaunchers:     &[]encryptedami.LauncherKind{encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP, encryptedami.LauncherKind_EC2_FLEET},
		DestinationKeyLauncherRoles: &[]awsiam.IRole{awsiam.Role_FromRoleArn(s, jsii.String("Karpenter"), jsii.String(karpenter), nil)},
		KeyPolicyCovered:            jsii.Bool(true),
	})
	policy := jsonOf(assertions.Template_FromStack(s, nil).FindResources(jsii.String("AWS::KMS::Key"), nil))
	want := `"aws:PrincipalArn":["arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling","arn:aws:iam::222222222222:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet","` + karpenter + `"]`
	if strings.Count(policy, want) != 2 {
		t.Errorf("the destination key policy does not name exactly the launchers in both statements (%s):\n%s", want, policy)
	}
}

// copies places n copies in s, each of its own source AMI, source key
// and destination key of the app (the most statements a copy has).
func copies(s awscdk.Stack, n int) {
	for i := 0; i < n; i++ {
		amicopy.NewCopiedAmi(s, jsii.String(fmt.Sprintf("Copy%d", i)), &amicopy.CopiedAmiProps{
			SourceImageId:    jsii.String(fmt.Sprintf("ami-0123456789abcde%02d", i)),
			SourceKey:        imported(s, strings.Replace(sourceKeyArn, "1234abcd", fmt.Sprintf("1234ab%02d", i), 1)),
			DestinationKey:   awskms.NewKey(s, jsii.String(fmt.Sprintf("CopyKey%d", i)), nil),
			KeyPolicyCovered: jsii.Bool(true),
		})
	}
}

// TestEightCopiesShareTheCopierPolicy: the statements every copy needs
// alike are in one policy of the stack, which every copy depends on; each
// copy's own policy holds only its keys' statements, and eight copies keep
// the handler role's inline policies under IAM's 10,240 characters.
func TestEightCopiesShareTheCopierPolicy(t *testing.T) {
	s := constructtest.NewStack()
	copies(s, 8)
	tmpl := assertions.Template_FromStack(s, nil)
	policies := *tmpl.FindResources(jsii.String("AWS::IAM::Policy"), nil)
	var shared []string
	own := 0
	for id, r := range policies {
		body := jsonOf(r)
		switch {
		case strings.Contains(body, "ec2:CopyImage"):
			shared = append(shared, id)
			for _, want := range []string{`"ec2:CreateAction":"CopyImage"`, `"ec2:DeregisterImage","ec2:DeleteSnapshot"`, `"lambda:InvokeFunction"`} {
				if !strings.Contains(body, want) {
					t.Errorf("the shared policy %s lacks %s", id, want)
				}
			}
		case strings.Contains(body, "kms:ReEncryptFrom"):
			own++
			if strings.Contains(body, "ec2:") || strings.Contains(body, "lambda:") {
				t.Errorf("a copy's own policy %s holds more than its keys' statements: %s", id, body)
			}
		}
	}
	if len(shared) != 1 || own != 8 {
		t.Fatalf("%d shared copier policies %v and %d copies' own policies; want 1 and 8", len(shared), shared, own)
	}
	for id, r := range *tmpl.FindResources(jsii.String("Custom::CrossAccountAmiCopy"), nil) {
		if deps := jsonOf((*r)["DependsOn"]); !strings.Contains(deps, `"`+shared[0]+`"`) {
			t.Errorf("%s DependsOn %s, want the shared policy %s", id, deps, shared[0])
		}
	}
	chars := provider.Of(s).RoleInlinePolicyChars()
	t.Logf("8 copies: the handler role's inline policies count %d characters", chars)
	if chars > 10240 {
		t.Errorf("8 copies: %d characters, over IAM's 10,240", chars)
	}
}

// TestTooManyCopiesFailSynth: copies whose policies would exceed the
// role's quota fail at synth, naming the number of copies and what to do.
func TestTooManyCopiesFailSynth(t *testing.T) {
	s := constructtest.NewStack()
	copies(s, 16)
	msg := constructtest.Catch(func() { assertions.Template_FromStack(s, nil) })
	t.Log(msg)
	for _, want := range []string{"with 16 copies (amicopy.CopiedAmi) and 0 grants", "IAM allows a role 10240 characters", "copies fit next to the rest", "Put the other copies in another stack"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q\nlacks %q", msg, want)
		}
	}
}

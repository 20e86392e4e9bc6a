package keypolicy_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/keypolicy"
)

const keyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// keyHash names keyArn's one writer: the first 4 bytes of its SHA-256, in hex.
const keyHash = "b5bc07ae"

// mark ends every Sid the stack "Source" (111111111111, us-east-1) writes:
// the first 4 bytes of sha256("111111111111\x00us-east-1\x00Source"), in hex.
const mark = " [crossaccountami 7cdacd29]"

func env(account string) *awscdk.Environment {
	return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String("us-east-1")}
}

func TestManagedStatementsInTheSourceStack(t *testing.T) {
	// GIVEN a source stack in the key's account and an imported key
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: env("111111111111")})
	key := awskms.Key_FromKeyArn(source, jsii.String("Key"), jsii.String(keyArn))

	// WHEN statements are managed on it, from CDK statements and from JSON
	m := keypolicy.NewManagedStatements(source, jsii.String("Statements"), &keypolicy.ManagedStatementsProps{
		Key: key,
		Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("Allow decrypt by 222222222222"), Actions: jsii.Strings("kms:Decrypt"), Resources: jsii.Strings("*"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewAccountPrincipal(jsii.String("222222222222"))},
		})},
		StatementsJson: jsii.String(`[{"Sid":"B","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::333333333333:root"},"Action":"kms:DescribeKey","Resource":"*"}]`),
	})

	// THEN one custom resource carries the key ARN and the statements as one JSON string
	tmpl := assertions.Template_FromStack(source, nil)
	tmpl.ResourceCountIs(jsii.String("Custom::KmsKeyPolicyStatements"), jsii.Number(1))
	tmpl.HasResourceProperties(jsii.String("Custom::KmsKeyPolicyStatements"), &map[string]interface{}{
		"KeyArn":    keyArn,
		"SidSuffix": mark,
		// The account principal's ARN holds the partition: CloudFormation renders the JSON.
		"Statements": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
			`[{"Action":"kms:Decrypt","Effect":"Allow","Principal":{"AWS":"arn:`,
			map[string]interface{}{"Ref": "AWS::Partition"},
			`:iam::222222222222:root"},"Resource":"*","Sid":"Allow decrypt by 222222222222` + mark + `"},{"Action":"kms:DescribeKey","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::333333333333:root"},"Resource":"*","Sid":"B` + mark + `"}]`,
		}}},
	})
	// AND the handler role has a fixed name on its own path, and may read and write only that key's policy
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), &map[string]interface{}{
		"Path":     "/crossaccountami-source/",
		"RoleName": assertions.Match_StringLikeRegexp(jsii.String("^SourceHandler-Source-[0-9a-f]{10}$")),
	})
	// (the role's default policy holds only its log group; the key's policy
	// permissions sit in a policy of the resource's own, which it depends on)
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"PolicyDocument": map[string]interface{}{"Statement": []interface{}{
			assertions.Match_ObjectLike(&map[string]interface{}{"Action": []interface{}{"logs:CreateLogStream", "logs:PutLogEvents"}}),
		}},
	})
	keyPolicies := tmpl.FindResources(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"Properties": map[string]interface{}{"PolicyDocument": map[string]interface{}{"Statement": []interface{}{
			map[string]interface{}{"Action": []interface{}{"kms:GetKeyPolicy", "kms:PutKeyPolicy"}, "Effect": "Allow", "Resource": keyArn},
		}}},
	})
	if len(*keyPolicies) != 1 {
		t.Fatalf("%d policies allow the key's policy, want 1", len(*keyPolicies))
	}
	for id := range *keyPolicies {
		tmpl.HasResource(jsii.String("Custom::KmsKeyPolicyStatements"), &map[string]interface{}{
			"DependsOn": assertions.Match_ArrayWith(&[]interface{}{id}),
		})
	}
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), &map[string]interface{}{
		"Runtime": "provided.al2023", "Architectures": []interface{}{"arm64"}, "Handler": "bootstrap",
	})
	if got := strings.Join(jsiivalue.Strings(m.Sids()), ","); got != "Allow decrypt by 222222222222"+mark+",B"+mark {
		t.Errorf("Sids() = %s", got)
	}
	if !strings.HasPrefix(*m.RoleArn(), "arn:aws:iam::111111111111:role/crossaccountami-source/SourceHandler-Source-") {
		t.Errorf("RoleArn() = %s", *m.RoleArn())
	}
}

func TestEncryptedAmiKeyPolicyScope(t *testing.T) {
	// GIVEN a destination using an imported key, and a source stack in the key's account
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: env("111111111111")})
	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{Env: env("222222222222")})

	// WHEN the destination's statements are managed from the source stack
	ami := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: awskms.Key_FromKeyArn(dest, jsii.String("Key"), jsii.String(keyArn)), ImageId: jsii.String("ami-0123456789abcdef0"),
		KeyPolicyScope: source,
	})
	m := ami.ManagedKeyPolicy()

	// THEN the source stack carries exactly the statements KeyPolicyStatements returns
	tmpl := assertions.Template_FromStack(source, nil)
	tmpl.HasResourceProperties(jsii.String("Custom::KmsKeyPolicyStatements"), &map[string]interface{}{
		"KeyArn":     keyArn,
		"Statements": assertions.Match_StringLikeRegexp(jsii.String(`Allow use of the key by AWSServiceRoleForAutoScaling of 222222222222.*Allow attachment of persistent resources by arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-Dest-`)),
	})
	if len(*m.Sids()) != 2 || !ami.KeyPolicyManaged() || *m.Node().Id() != "KeyPolicy-Dest-SharedAmi" {
		t.Errorf("Sids %v, managed %v, id %s", jsiivalue.Strings(m.Sids()), ami.KeyPolicyManaged(), *m.Node().Id())
	}
	// AND there is no warning, and the destination deploys after the source
	assertions.Annotations_FromStack(dest).HasNoWarning(jsii.String("/Dest/SharedAmi"), assertions.Match_StringLikeRegexp(jsii.String("is imported")))
	deps := dest.Dependencies()
	if deps == nil || len(*deps) != 1 || *(*deps)[0].StackName() != "Source" {
		t.Errorf("destination dependencies: %v", deps)
	}
}

// TestOneWriterPerKey: CloudFormation runs independent resources in
// parallel, and KMS has no conditional write, so two resources writing one
// key policy could each drop the other's statements. All the statements a
// stack keeps on one key go through one resource.
func TestOneWriterPerKey(t *testing.T) {
	// GIVEN two destinations whose statements the source stack manages on one
	// imported key, and a third contributor of its own statements
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: env("111111111111")})
	var sids []string
	for _, account := range []string{"222222222222", "333333333333"} {
		dest := awscdk.NewStack(app, jsii.String("Dest"+account), &awscdk.StackProps{Env: env(account)})
		ami := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key: awskms.Key_FromKeyArn(dest, jsii.String("Key"), jsii.String(keyArn)), ImageId: jsii.String("ami-0123456789abcdef0"),
			KeyPolicyScope: source,
		})
		sids = append(sids, jsiivalue.Strings(ami.ManagedKeyPolicy().Sids())...)
	}
	own := keypolicy.NewManagedStatements(source, jsii.String("Own"), &keypolicy.ManagedStatementsProps{
		Key: awskms.Key_FromKeyArn(source, jsii.String("Key"), jsii.String(keyArn)),
		Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("Own"), Actions: jsii.Strings("kms:DescribeKey"), Resources: jsii.Strings("*"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewArnPrincipal(jsii.String("arn:aws:iam::444444444444:root"))},
		})},
	})

	// THEN the stack has one resource for the key, holding every statement
	tmpl := assertions.Template_FromStack(source, nil)
	tmpl.ResourceCountIs(jsii.String("Custom::KmsKeyPolicyStatements"), jsii.Number(1))
	resources := tmpl.FindResources(jsii.String("Custom::KmsKeyPolicyStatements"), nil)
	for _, r := range *resources {
		stmts := (*r)["Properties"].(map[string]interface{})["Statements"].(string)
		for _, sid := range append(sids, "Own"+mark) {
			if !strings.Contains(stmts, `"Sid":"`+sid+`"`) {
				t.Errorf("the resource lacks %q: %s", sid, stmts)
			}
		}
	}
	if len(sids) != 4 || own.Resource() == nil || *own.Resource().Node().Path() != "Source/CrossAccountAmiKeyPolicy"+keyHash+"/Resource" {
		t.Errorf("sids %v, resource %v", sids, own.Resource().Node().Path())
	}
	// AND one handler policy for it, which it depends on
	writers := tmpl.FindResources(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"Properties": map[string]interface{}{"PolicyDocument": map[string]interface{}{"Statement": []interface{}{
			map[string]interface{}{"Action": []interface{}{"kms:GetKeyPolicy", "kms:PutKeyPolicy"}, "Effect": "Allow", "Resource": keyArn},
		}}},
	})
	if len(*writers) != 1 {
		t.Errorf("%d policies allow writing the key policy, want 1", len(*writers))
	}
}

func TestBadProps(t *testing.T) {
	stmt := jsii.String(`[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]`)
	for _, tc := range []struct {
		name    string
		account string
		props   func(s awscdk.Stack) *keypolicy.ManagedStatementsProps
		want    []string
	}{
		{"nil props", "111111111111", func(awscdk.Stack) *keypolicy.ManagedStatementsProps { return nil }, []string{"props: required"}},
		{"owned key", "111111111111", func(s awscdk.Stack) *keypolicy.ManagedStatementsProps {
			return &keypolicy.ManagedStatementsProps{Key: awskms.NewKey(s, jsii.String("Own"), nil), StatementsJson: stmt}
		}, []string{"Key:", "AddToResourcePolicy", "S/Own"}},
		{"other account", "999999999999", func(s awscdk.Stack) *keypolicy.ManagedStatementsProps {
			return &keypolicy.ManagedStatementsProps{Key: awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String(keyArn)), StatementsJson: stmt}
		}, []string{"Key:", "account 111111111111", "account 999999999999"}},
		{"alias", "111111111111", func(s awscdk.Stack) *keypolicy.ManagedStatementsProps {
			return &keypolicy.ManagedStatementsProps{Key: awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String("arn:aws:kms:us-east-1:111111111111:alias/a")), StatementsJson: stmt}
		}, []string{"Key:", "alias"}},
		{"key ARN known only at deploy time", "111111111111", func(s awscdk.Stack) *keypolicy.ManagedStatementsProps {
			arn := awscdk.NewCfnParameter(s, jsii.String("KeyArn"), nil)
			return &keypolicy.ManagedStatementsProps{Key: awskms.Key_FromKeyArn(s, jsii.String("K"), arn.ValueAsString()), StatementsJson: stmt}
		}, []string{"Key:", "known at synth time", "S/K", "a value known only at deploy time"}},
		{"stack without env", "", func(s awscdk.Stack) *keypolicy.ManagedStatementsProps {
			return &keypolicy.ManagedStatementsProps{Key: awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String(keyArn)), StatementsJson: stmt}
		}, []string{"concrete account and region", "got account a value known only at deploy time and region a value known only at deploy time"}},
		{"no statements", "111111111111", func(s awscdk.Stack) *keypolicy.ManagedStatementsProps {
			return &keypolicy.ManagedStatementsProps{Key: awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String(keyArn))}
		}, []string{"at least one statement"}},
		{"no sid", "111111111111", func(s awscdk.Stack) *keypolicy.ManagedStatementsProps {
			return &keypolicy.ManagedStatementsProps{Key: awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String(keyArn)), StatementsJson: jsii.String(`[{"Effect":"Allow"}]`)}
		}, []string{"Statements:", "a Sid is required", `{"Effect":"Allow"}`}},
		{"bad json", "111111111111", func(s awscdk.Stack) *keypolicy.ManagedStatementsProps {
			return &keypolicy.ManagedStatementsProps{Key: awskms.Key_FromKeyArn(s, jsii.String("K"), jsii.String(keyArn)), StatementsJson: jsii.String(`{`)}
		}, []string{"StatementsJson:", `"{"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			props := &awscdk.StackProps{}
			if tc.account != "" {
				props.Env = env(tc.account)
			}
			s := awscdk.NewStack(app, jsii.String("S"), props)
			msg := constructtest.Catch(func() { keypolicy.NewManagedStatements(s, jsii.String("M"), tc.props(s)) })
			for _, w := range append(tc.want, "keypolicy.NewManagedStatements S/M: ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "${Token[") {
				t.Errorf("error %q shows token text", msg)
			}
		})
	}
}

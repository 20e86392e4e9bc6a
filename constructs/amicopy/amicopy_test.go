package amicopy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/amicopy"
	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
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
		}, []string{"DestinationKey: the key is in account 333333333333 and region us-east-1", "account 222222222222"}},
		{"bad name", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) { p.Name = jsii.String("a") }, []string{`Name: "a" is not a valid AMI name prefix`}},
		{"service timeout over an hour", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.ServiceTimeout = awscdk.Duration_Hours(jsii.Number(2))
		},
			[]string{"ServiceTimeout: expected 1 to 3600 whole seconds", "got 2 hours"}},
		{"another key policy style", func(_ awscdk.Stack, p *amicopy.CopiedAmiProps) {
			p.KeyPolicyStyle = encryptedami.KeyPolicyStyle_ORGANIZATION
		},
			[]string{"KeyPolicyStyle: only SCOPED is implemented for copies", `got "ORGANIZATION"`}},
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

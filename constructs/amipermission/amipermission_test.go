package amipermission_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/amipermission"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
)

const (
	orgArn = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
	ouArn  = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefghij"
)

func sourceStack() awscdk.Stack {
	app := awscdk.NewApp(nil)
	return awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("us-east-1")}})
}

func TestLaunchPermission(t *testing.T) {
	// GIVEN a source stack
	s := sourceStack()
	// WHEN an AMI is shared with an account (and its snapshots), an organization and an OU
	amipermission.NewLaunchPermission(s, jsii.String("Sharing"), &amipermission.LaunchPermissionProps{
		ImageId:                jsii.String("ami-0123456789abcdef0"),
		Accounts:               jsii.Strings("222222222222"),
		OrganizationArns:       jsii.Strings(orgArn),
		OrganizationalUnitArns: jsii.Strings(ouArn),
		ShareSnapshots:         jsii.Bool(true),
	})
	amipermission.NewLaunchPermission(s, jsii.String("Other"), &amipermission.LaunchPermissionProps{
		ImageId: jsii.String("ami-01234567"), Accounts: jsii.Strings("333333333333"),
	})
	// THEN the custom resource carries them, served by one source handler
	tmpl := assertions.Template_FromStack(s, nil)
	tmpl.HasResourceProperties(jsii.String("Custom::AmiLaunchPermission"), &map[string]interface{}{
		"ImageId": "ami-0123456789abcdef0", "AccountIds": []interface{}{"222222222222"},
		"OrganizationArns": []interface{}{orgArn}, "OrganizationalUnitArns": []interface{}{ouArn}, "ShareSnapshots": "true",
	})
	tmpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(1))
	// AND the role may change launch and create-volume permissions on images and snapshots of its region only
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
			map[string]interface{}{
				"Action": []interface{}{"ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"}, "Effect": "Allow",
				"Resource": []interface{}{"arn:aws:ec2:us-east-1::image/*", "arn:aws:ec2:us-east-1::snapshot/*"},
			},
		})},
	})
}

func TestBadProps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props *amipermission.LaunchPermissionProps
		want  []string
	}{
		{"nil", nil, []string{"props: required"}},
		{"image", &amipermission.LaunchPermissionProps{ImageId: jsii.String("ami-XYZ"), Accounts: jsii.Strings("222222222222")}, []string{"ImageId:", `"ami-XYZ"`}},
		{"account", &amipermission.LaunchPermissionProps{ImageId: jsii.String("ami-01234567"), Accounts: jsii.Strings("22")}, []string{"Accounts:", `"22"`}},
		{"org", &amipermission.LaunchPermissionProps{ImageId: jsii.String("ami-01234567"), OrganizationArns: jsii.Strings("o-abcdefghij")}, []string{"OrganizationArns:", `"o-abcdefghij"`}},
		{"ou", &amipermission.LaunchPermissionProps{ImageId: jsii.String("ami-01234567"), OrganizationalUnitArns: jsii.Strings("ou-ab12-cdefghij")}, []string{"OrganizationalUnitArns:", `"ou-ab12-cdefghij"`}},
		{"none", &amipermission.LaunchPermissionProps{ImageId: jsii.String("ami-01234567")}, []string{"at least one is required"}},
		{"snapshots without accounts", &amipermission.LaunchPermissionProps{ImageId: jsii.String("ami-01234567"), OrganizationArns: jsii.Strings(orgArn), ShareSnapshots: jsii.Bool(true)}, []string{"ShareSnapshots:", "accounts only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sourceStack()
			msg := constructtest.Catch(func() { amipermission.NewLaunchPermission(s, jsii.String("Sharing"), tc.props) })
			for _, w := range append(tc.want, "amipermission.NewLaunchPermission Source/Sharing: ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

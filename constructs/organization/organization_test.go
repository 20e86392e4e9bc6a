package organization_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
	"github.com/crossaccountami/crossaccountami/constructs/organization"
)

const (
	orgID   = "o-abcdefghij"
	mrkArn  = "arn:aws:kms:us-east-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab"
	account = "999999999999"
)

var (
	ous     = []string{"ou-ab12-11111111", "ou-ab12-22222222"}
	regions = []string{"us-east-1", "eu-west-1", "ap-southeast-2"}
)

func defaultProps() *organization.DeploymentProps {
	return &organization.DeploymentProps{
		Target:            &encryptedami.OrganizationTarget{OrganizationId: jsii.String(orgID), OrganizationalUnitIds: jsii.Strings(ous...)},
		Regions:           jsii.Strings(regions...),
		MultiRegionKeyArn: jsii.String(mrkArn),
	}
}

func newDeployment(t *testing.T, props *organization.DeploymentProps) (awscdk.Stack, organization.Deployment) {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("Org"), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
	return stack, organization.NewDeployment(stack, jsii.String("Fleet"), props)
}

// inner is the StackSet's template as assertions can read it.
func inner(t *testing.T, d organization.Deployment) (assertions.Template, map[string]interface{}) {
	t.Helper()
	var tmpl map[string]interface{}
	if err := json.Unmarshal([]byte(*d.TemplateBody()), &tmpl); err != nil {
		t.Fatal(err)
	}
	return assertions.Template_FromJSON(&tmpl, nil), tmpl
}

// TestDeployment: the StackSet of 2 OUs x 3 regions with the defaults, its
// template, the code buckets and the scheduled check, from one synth.
func TestDeployment(t *testing.T) {
	// GIVEN the settings the CDK CLI passes to every app of the process
	t.Setenv("CDK_CONTEXT_JSON", `{"aws:cdk:enable-path-metadata":true,"aws:cdk:enable-asset-metadata":true,"aws:cdk:version-reporting":true}`)
	stack, d := newDeployment(t, defaultProps())

	// THEN the StackSet is service-managed, deploys automatically to the
	// OUs' accounts now and later, deletes the stack of an account that
	// leaves, and uses the documented preferences
	assertions.Template_FromStack(stack, nil).HasResourceProperties(jsii.String("AWS::CloudFormation::StackSet"), &map[string]interface{}{
		"StackSetName":     "crossaccountami-Fleet",
		"PermissionModel":  "SERVICE_MANAGED",
		"CallAs":           "SELF",
		"AutoDeployment":   map[string]interface{}{"Enabled": true, "RetainStacksOnAccountRemoval": false},
		"ManagedExecution": map[string]interface{}{"Active": true},
		"Capabilities":     []interface{}{"CAPABILITY_NAMED_IAM"},
		"OperationPreferences": map[string]interface{}{
			"MaxConcurrentPercentage": 25, "FailureTolerancePercentage": 10,
			"RegionConcurrencyType": "PARALLEL", "RegionOrder": []interface{}{"us-east-1", "eu-west-1", "ap-southeast-2"},
		},
		"StackInstancesGroup": []interface{}{map[string]interface{}{
			"DeploymentTargets": map[string]interface{}{"OrganizationalUnitIds": []interface{}{"ou-ab12-11111111", "ou-ab12-22222222"}},
			"Regions":           []interface{}{"us-east-1", "eu-west-1", "ap-southeast-2"},
		}},
		"TemplateBody": *d.TemplateBody(),
	})
	// AND the StackSet's stack deploys after every region's code stack
	deps := map[string]bool{}
	for _, s := range *stack.Dependencies() {
		deps[*s.StackName()] = true
	}
	for _, r := range regions {
		if !deps["Org-HandlerCode-"+r] {
			t.Errorf("the StackSet's stack does not depend on Org-HandlerCode-%s (deps %v)", r, deps)
		}
	}

	// AND the template has no CDK bootstrap reference
	tmpl, raw := inner(t, d)
	for _, section := range []string{"Parameters", "Rules", "Conditions"} {
		if _, ok := raw[section]; ok {
			t.Errorf("the StackSet's template has %s: %v", section, raw[section])
		}
	}
	// (and they do not reach it: no path metadata, no CDKMetadata resource)
	for _, ref := range []string{"BootstrapVersion", "cdk-hnb659fds", "AssetParameters", "cdk-bootstrap", "aws:cdk:path", "CDKMetadata"} {
		if strings.Contains(*d.TemplateBody(), ref) {
			t.Errorf("the StackSet's template mentions %s", ref)
		}
	}
	// AND each region's grant is on that region's replica of the key
	tmpl.HasMapping(jsii.String("SourceKeys"), &map[string]interface{}{
		"us-east-1":      map[string]interface{}{"Arn": mrkArn},
		"eu-west-1":      map[string]interface{}{"Arn": "arn:aws:kms:eu-west-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab"},
		"ap-southeast-2": map[string]interface{}{"Arn": "arn:aws:kms:ap-southeast-2:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab"},
	})
	keyOfRegion := map[string]interface{}{"Fn::FindInMap": []interface{}{"SourceKeys", map[string]interface{}{"Ref": "AWS::Region"}, "Arn"}}
	tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{
		"KeyArn": keyOfRegion,
		"GranteePrincipal": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
			"arn:", map[string]interface{}{"Ref": "AWS::Partition"}, ":iam::", map[string]interface{}{"Ref": "AWS::AccountId"},
			":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"}}},
		"Operations":        []interface{}{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant", "DescribeKey"},
		"RetiringPrincipal": map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^CrossAccountAmiGrantHandlerRole")), "Arn"}},
	})
	tmpl.ResourceCountIs(jsii.String("Custom::AutoScalingServiceLinkedRole"), jsii.Number(1))
	// AND the handler's code comes from the region's bucket of the deploying account
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), &map[string]interface{}{
		"Code": map[string]interface{}{
			"S3Bucket": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{"crossaccountami-handlers-999999999999-", map[string]interface{}{"Ref": "AWS::Region"}}}},
			"S3Key":    assertions.Match_StringLikeRegexp(jsii.String(`^handlers/[0-9a-f]{64}\.zip$`)),
		},
	})
	// AND the role's name carries the region (IAM names are global in an account; the StackSet has a stack per region)
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), &map[string]interface{}{
		"Path":     "/crossaccountami/",
		"RoleName": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{"GrantHandler-", map[string]interface{}{"Ref": "AWS::Region"}, assertions.Match_StringLikeRegexp(jsii.String(`^-[0-9a-f]{10}$`))}}},
	})

	// AND the grant is checked daily: the rule invokes the handler with the grant's properties and name
	tmpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), &map[string]interface{}{
		"ScheduleExpression": "rate(1 day)",
		"Targets": []interface{}{map[string]interface{}{
			"Id":    "GrantHandler",
			"Arn":   map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^CrossAccountAmiGrantHandlerFunction")), "Arn"}},
			"Input": assertions.Match_AnyValue(),
		}},
	})
	rules := tmpl.FindResources(jsii.String("AWS::Events::Rule"), nil)
	for _, r := range *rules {
		input, _ := json.Marshal((*r)["Properties"].(map[string]interface{})["Targets"].([]interface{})[0].(map[string]interface{})["Input"])
		// (the grant's resource too: the handler heals only while
		// CloudFormation shows it alive)
		for _, w := range []string{`\"ResourceProperties\":{`, `\"crossaccountami\":\"heal-grant\"`, `\"Name\":\"`, `GrantName`, `SourceKeys`,
			`\"LogicalResourceId\":\"Grant`, `\"PhysicalResourceId\":\"",{"Ref":"Grant`, `\"StackId\":\"",{"Ref":"AWS::StackId"}`} {
			if !strings.Contains(string(input), w) {
				t.Errorf("the rule's Input %s lacks %s", input, w)
			}
		}
	}
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{map[string]interface{}{
			"Action": "cloudformation:DescribeStackResource", "Effect": "Allow",
			"Resource": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
				"arn:", map[string]interface{}{"Ref": "AWS::Partition"}, ":cloudformation:", map[string]interface{}{"Ref": "AWS::Region"}, ":",
				map[string]interface{}{"Ref": "AWS::AccountId"}, ":stack/", map[string]interface{}{"Ref": "AWS::StackName"}, "/*",
			}}},
		}})},
	})
	// AND EventBridge may invoke the function from that rule only
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), &map[string]interface{}{
		"Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
		"SourceArn": map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_StringLikeRegexp(jsii.String("^GrantHealRule")), "Arn"}},
	})
	// AND the check adds one permission to the handler's role,
	// cloudformation:DescribeStackResource on its own stack (the StackSet
	// names the stack: AWS::StackName); what else it calls
	// (ListRetirableGrants, CreateGrant for this grant) the role has for the
	// grant's own lifecycle
	policies := tmpl.FindResources(jsii.String("AWS::IAM::Policy"), nil)
	var actions []string
	for _, p := range *policies {
		doc, _ := json.Marshal((*p)["Properties"].(map[string]interface{})["PolicyDocument"])
		var d struct {
			Statement []struct{ Action interface{} }
		}
		_ = json.Unmarshal(doc, &d)
		for _, s := range d.Statement {
			switch a := s.Action.(type) {
			case string:
				actions = append(actions, a)
			case []interface{}:
				for _, x := range a {
					actions = append(actions, x.(string))
				}
			}
		}
	}
	want := "cloudformation:DescribeStackResource iam:CreateServiceLinkedRole kms:CreateGrant kms:ListRetirableGrants logs:CreateLogStream logs:PutLogEvents"
	if got := strings.Join(sortedUnique(actions), " "); got != want {
		t.Errorf("the handler role's actions: %s, want %s", got, want)
	}

	// AND each region's code bucket lets only the organization read only the handler objects, only over TLS
	for _, r := range regions {
		code := (*d.CodeStacks())[r]
		ct := assertions.Template_FromStack(code, nil)
		if *code.Region() != r || *code.Account() != account {
			t.Errorf("code stack of %s is in %s/%s", r, *code.Account(), *code.Region())
		}
		ct.HasResourceProperties(jsii.String("AWS::S3::Bucket"), &map[string]interface{}{
			"BucketName": "crossaccountami-handlers-999999999999-" + r,
			"PublicAccessBlockConfiguration": map[string]interface{}{
				"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
			},
		})
		ct.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), &map[string]interface{}{
			"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayEquals(&[]interface{}{
				map[string]interface{}{
					"Effect": "Deny", "Action": "s3:*", "Principal": map[string]interface{}{"AWS": "*"},
					"Condition": map[string]interface{}{"Bool": map[string]interface{}{"aws:SecureTransport": "false"}},
					"Resource":  assertions.Match_AnyValue(),
				},
				map[string]interface{}{
					"Sid": "OrganizationReadsHandlerCode", "Effect": "Allow", "Action": "s3:GetObject", "Principal": map[string]interface{}{"AWS": "*"},
					"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{"aws:PrincipalOrgID": orgID}},
					"Resource":  map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{map[string]interface{}{"Fn::GetAtt": []interface{}{assertions.Match_AnyValue(), "Arn"}}, "/handlers/*"}}},
				},
			}), "Version": "2012-10-17"},
		})
		// AND the same deploy publishes the handler there, as the zip the functions read
		ct.HasResourceProperties(jsii.String("Custom::CDKBucketDeployment"), &map[string]interface{}{
			"DestinationBucketKeyPrefix": "handlers/",
			"Extract":                    false,
			"Prune":                      false,
			"RetainOnDelete":             false,
		})
	}
}

func sortedUnique(in []string) []string {
	slices.Sort(in)
	return slices.Compact(in)
}

// TestDeploymentOptions: keys imported per region, a delegated
// administrator, preferences and schedule of one's own, the check off.
func TestDeploymentOptions(t *testing.T) {
	props := defaultProps()
	props.MultiRegionKeyArn = nil
	props.KeyArns = &map[string]*string{
		"us-east-1":      jsii.String("arn:aws:kms:us-east-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
		"eu-west-1":      jsii.String("arn:aws:kms:eu-west-1:333333333333:key/2234abcd-12ab-34cd-56ef-1234567890ab"),
		"ap-southeast-2": jsii.String("arn:aws:kms:ap-southeast-2:333333333333:key/3234abcd-12ab-34cd-56ef-1234567890ab"),
	}
	props.CallAs = organization.CallAs_DELEGATED_ADMIN
	props.MaxConcurrentPercentage = jsii.Number(50)
	props.FailureTolerancePercentage = jsii.Number(0)
	props.RegionOrder = jsii.Strings("eu-west-1", "us-east-1", "ap-southeast-2")
	props.StackSetName = jsii.String("ami-grants")
	props.DisableHealing = jsii.Bool(true)
	props.HealSchedule = awsevents.Schedule_Expression(jsii.String("rate(1 hour)"))
	stack, d := newDeployment(t, props)
	_, other := newDeployment(t, defaultProps())

	assertions.Template_FromStack(stack, nil).HasResourceProperties(jsii.String("AWS::CloudFormation::StackSet"), &map[string]interface{}{
		"StackSetName": "ami-grants",
		"CallAs":       "DELEGATED_ADMIN",
		"OperationPreferences": map[string]interface{}{
			"MaxConcurrentPercentage": 50, "FailureTolerancePercentage": 0,
			"RegionConcurrencyType": "PARALLEL", "RegionOrder": []interface{}{"eu-west-1", "us-east-1", "ap-southeast-2"},
		},
	})
	tmpl, _ := inner(t, d)
	tmpl.HasMapping(jsii.String("SourceKeys"), &map[string]interface{}{
		"us-east-1":      map[string]interface{}{"Arn": "arn:aws:kms:us-east-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		"eu-west-1":      map[string]interface{}{"Arn": "arn:aws:kms:eu-west-1:333333333333:key/2234abcd-12ab-34cd-56ef-1234567890ab"},
		"ap-southeast-2": map[string]interface{}{"Arn": "arn:aws:kms:ap-southeast-2:333333333333:key/3234abcd-12ab-34cd-56ef-1234567890ab"},
	})
	tmpl.ResourceCountIs(jsii.String("AWS::Events::Rule"), jsii.Number(0))
	tmpl.ResourceCountIs(jsii.String("AWS::Lambda::Permission"), jsii.Number(0))

	// AND two StackSets that reach one account and region name their
	// handler roles apart (IAM names are global in an account)
	if a, b := roleName(t, d), roleName(t, other); a == b {
		t.Errorf("the StackSets ami-grants and crossaccountami-Fleet both name their handler role %s", a)
	}
}

// roleName is the handler role's RoleName in d's template, as JSON.
func roleName(t *testing.T, d organization.Deployment) string {
	t.Helper()
	_, raw := inner(t, d)
	for _, r := range raw["Resources"].(map[string]interface{}) {
		if r := r.(map[string]interface{}); r["Type"] == "AWS::IAM::Role" {
			b, _ := json.Marshal(r["Properties"].(map[string]interface{})["RoleName"])
			return string(b)
		}
	}
	t.Fatal("no role in the StackSet's template")
	return ""
}

// TestDeploymentBadProps: a bad prop fails at construction, naming the
// construct path, the prop and the value, and adds nothing.
func TestDeploymentBadProps(t *testing.T) {
	props := defaultProps()
	props.MultiRegionKeyArn = nil
	props.KeyArns = &map[string]*string{"us-east-1": jsii.String(mrkArn), "eu-west-1": jsii.String("arn:aws:kms:eu-west-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab")}
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Org"), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
	msg := constructtest.Catch(func() { organization.NewDeployment(stack, jsii.String("Fleet"), props) })
	for _, w := range []string{"Org/Fleet", "KeyArns: no key for the region ap-southeast-2"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	if stack.Node().TryFindChild(jsii.String("Fleet")) != nil || len(*app.Node().Children()) != 1 {
		t.Errorf("constructs were added despite the error: %d children of the app", len(*app.Node().Children()))
	}

	// AND a suffix that repeats the role name's prefix is refused (IAM
	// would accept it, and the role would be AWSServiceRoleForAutoScaling_AWSServiceRoleForAutoScaling_myapp)
	suffixed := defaultProps()
	suffixed.ServiceLinkedRoleSuffix = jsii.String("AWSServiceRoleForAutoScaling_myapp")
	msg = constructtest.Catch(func() { organization.NewDeployment(stack, jsii.String("Suffixed"), suffixed) })
	for _, w := range []string{"Org/Suffixed", `ServiceLinkedRoleSuffix: "AWSServiceRoleForAutoScaling_myapp" repeats the role name's prefix`, `"myapp"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}

	// AND a second deployment in one stack is refused, naming the first's code stack
	organization.NewDeployment(stack, jsii.String("First"), defaultProps())
	msg = constructtest.Catch(func() { organization.NewDeployment(stack, jsii.String("Second"), defaultProps()) })
	for _, w := range []string{"Org/Second", "has an organization.NewDeployment already", "Org-HandlerCode-us-east-1", "one per stack"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

// TestDeploymentKeyAccess: given the OrganizationKeyAccess of each region's
// key (here keys imported by ARN, their policies kept by stacks of this
// app), the grants go on those keys and the StackSet's stack deploys after
// the stacks that hold the statements; an access for other OUs is refused.
func TestDeploymentKeyAccess(t *testing.T) {
	// GIVEN the statements on each region's key, for the deployment's target
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	target := &encryptedami.OrganizationTarget{OrganizationId: jsii.String(orgID), OrganizationalUnitIds: jsii.Strings(ous...)}
	var access []encryptedami.OrganizationKeyAccess
	keyArns := map[string]string{}
	for i, r := range []string{"us-east-1", "eu-west-1"} {
		keyStack := awscdk.NewStack(app, jsii.String("Keys-"+r), &awscdk.StackProps{Env: constructtest.Env("111111111111", r)})
		keyArns[r] = fmt.Sprintf("arn:aws:kms:%s:111111111111:key/%d234abcd-12ab-34cd-56ef-1234567890ab", r, i+1)
		access = append(access, encryptedami.NewOrganizationKeyAccess(keyStack, jsii.String("Access"), &encryptedami.OrganizationKeyAccessProps{
			Key: awskms.Key_FromKeyArn(keyStack, jsii.String("Key"), jsii.String(keyArns[r])), Target: target,
		}))
	}
	stack := awscdk.NewStack(app, jsii.String("Org"), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})

	// WHEN a deployment takes them, with the same OUs listed in another order
	props := defaultProps()
	props.MultiRegionKeyArn = nil
	props.Regions = jsii.Strings("us-east-1", "eu-west-1")
	props.Target = &encryptedami.OrganizationTarget{OrganizationId: jsii.String(orgID), OrganizationalUnitIds: jsii.Strings(ous[1], ous[0])}
	props.KeyAccess = &access
	d := organization.NewDeployment(stack, jsii.String("Fleet"), props)

	// THEN the StackSet's stack deploys after both key policy stacks
	deps := map[string]bool{}
	for _, s := range *stack.Dependencies() {
		deps[*s.StackName()] = true
	}
	if !deps["Keys-us-east-1"] || !deps["Keys-eu-west-1"] {
		t.Errorf("the StackSet's stack depends on %v, want Keys-us-east-1 and Keys-eu-west-1", deps)
	}
	// AND each region's grant is on the key of that region's access
	tmpl, raw := inner(t, d)
	tmpl.HasMapping(jsii.String("SourceKeys"), &map[string]interface{}{
		"us-east-1": map[string]interface{}{"Arn": keyArns["us-east-1"]},
		"eu-west-1": map[string]interface{}{"Arn": keyArns["eu-west-1"]},
	})
	if _, ok := raw["Parameters"]; ok {
		t.Errorf("keys known at synth time need no parameter: %v", raw["Parameters"])
	}

	// AND an access for other OUs than the StackSet's is refused, naming both
	other := awscdk.NewStack(app, jsii.String("Other"), &awscdk.StackProps{Env: constructtest.Env(account, "us-east-1")})
	props.Target = &encryptedami.OrganizationTarget{OrganizationId: jsii.String(orgID), OrganizationalUnitIds: jsii.Strings(ous[0])}
	msg := constructtest.Catch(func() { organization.NewDeployment(other, jsii.String("Fleet"), props) })
	for _, w := range []string{"Other/Fleet", "KeyAccess[0] (Keys-us-east-1/Access)", "o-abcdefghij (ou-ab12-11111111, ou-ab12-22222222)", "but Target is o-abcdefghij (ou-ab12-11111111)"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

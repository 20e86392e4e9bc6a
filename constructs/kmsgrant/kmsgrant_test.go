package kmsgrant_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/constructtest"
	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
)

const (
	keyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	slrArn = "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	// handlerRoleArn is the grant handler's role in constructtest.NewStack
	// (stack Dest in us-east-1; the suffix hashes both).
	handlerRoleArn = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-Dest-29201ce4b7"
)

// TestBadProps tries the bad values of every prop. Each must fail at
// construction with an error that names the construct path, the prop and the
// value received, and says what is expected; nothing is added to the tree.
func TestBadProps(t *testing.T) {
	key := func(s awscdk.Stack, arn string) awskms.IKey {
		return awskms.Key_FromKeyArn(s, jsii.String(arn), jsii.String(arn))
	}
	valid := func(s awscdk.Stack) *kmsgrant.GrantProps {
		return &kmsgrant.GrantProps{
			Key:        key(s, keyArn),
			Grantee:    awsiam.NewArnPrincipal(jsii.String(slrArn)),
			Operations: jsii.Strings("Decrypt"),
		}
	}
	with := func(mod func(s awscdk.Stack, p *kmsgrant.GrantProps)) func(awscdk.Stack) *kmsgrant.GrantProps {
		return func(s awscdk.Stack) *kmsgrant.GrantProps {
			p := valid(s)
			mod(s, p)
			return p
		}
	}
	cases := []struct {
		name  string
		props func(awscdk.Stack) *kmsgrant.GrantProps
		want  []string // substrings of the error: prop, value, expectation
	}{
		{"nil props", func(awscdk.Stack) *kmsgrant.GrantProps { return nil },
			[]string{"props: required, got nil"}},
		{"nil key", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) { p.Key = nil }),
			[]string{"Key: required, got nil"}},
		{"nil grantee", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) { p.Grantee = nil }),
			[]string{"Grantee: required, got nil"}},
		{"nil operations", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) { p.Operations = nil }),
			[]string{"Operations: required, got nil"}},
		{"empty operations", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) { p.Operations = &[]*string{} }),
			[]string{"Operations", "at least one grant operation", "got none"}},
		{"unknown operation", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) { p.Operations = jsii.Strings("Decrypt", "Explode") }),
			[]string{"Operations", `"Explode"`, "expected one of"}},
		{"operation with the kms: prefix", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) { p.Operations = jsii.Strings("kms:Decrypt") }),
			[]string{"Operations", `"kms:Decrypt"`, "expected one of"}},
		{"operation listed twice", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) { p.Operations = jsii.Strings("Decrypt", "Decrypt") }),
			[]string{"Operations", `"Decrypt" is listed twice`}},
		{"malformed key ARN", with(func(s awscdk.Stack, p *kmsgrant.GrantProps) {
			p.Key = key(s, "arn:aws:kms:us-east-1:111111111111:key/not-a-key-id")
		}), []string{"Key: ", `"arn:aws:kms:us-east-1:111111111111:key/not-a-key-id"`, "key/<key-id>"}},
		{"alias ARN instead of a key", with(func(s awscdk.Stack, p *kmsgrant.GrantProps) {
			p.Key = key(s, "arn:aws:kms:us-east-1:111111111111:alias/ami")
		}), []string{"Key: ", "alias ARN", `"arn:aws:kms:us-east-1:111111111111:alias/ami"`, "need the key ARN"}},
		{"key ARN whose account is not 12 digits", with(func(s awscdk.Stack, p *kmsgrant.GrantProps) {
			p.Key = key(s, "arn:aws:kms:us-east-1:11111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab")
		}), []string{"Key: ", `"11111111111"`, "12 digits"}},
		{"grantee with no IAM ARN", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) {
			p.Grantee = awsiam.NewServicePrincipal(jsii.String("autoscaling.amazonaws.com"), nil)
		}), []string{"Grantee", "exactly one IAM ARN", "autoscaling.amazonaws.com"}},
		{"grantee account not 12 digits", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) {
			p.Grantee = awsiam.NewArnPrincipal(jsii.String("arn:aws:iam::2222:role/x"))
		}), []string{"Grantee", `"2222"`, "12 digits"}},
		{"grantee not an ARN", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) {
			p.Grantee = awsiam.NewArnPrincipal(jsii.String("AWSServiceRoleForAutoScaling"))
		}), []string{"Grantee", `"AWSServiceRoleForAutoScaling"`, "arn:<partition>"}},
		{"retiring principal not an ARN", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) {
			p.RetiringPrincipal = awsiam.NewArnPrincipal(jsii.String("bob"))
		}), []string{"RetiringPrincipal", `"bob"`, "arn:<partition>"}},
		{"retiring principal of another service", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) {
			p.RetiringPrincipal = awsiam.NewArnPrincipal(jsii.String("arn:aws:s3:::bucket"))
		}), []string{"RetiringPrincipal", `"arn:aws:s3:::bucket"`, "expected service iam or sts"}},
		{"both encryption context constraints", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) {
			p.EncryptionContextEquals = &map[string]*string{"a": jsii.String("b")}
			p.EncryptionContextSubset = &map[string]*string{"a": jsii.String("b")}
		}), []string{"EncryptionContextEquals", "EncryptionContextSubset", "got both"}},
		{"grant name with a space", with(func(_ awscdk.Stack, p *kmsgrant.GrantProps) { p.GrantName = jsii.String("my grant") }),
			[]string{"GrantName: ", `"my grant"`, "1 to 256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stack := constructtest.NewStack()
			msg := constructtest.Catch(func() { kmsgrant.NewGrant(stack, jsii.String("Grant"), tc.props(stack)) })
			if msg == "" {
				t.Fatal("no error")
			}
			t.Log(msg)
			for _, w := range append(tc.want, "Dest/Grant: ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			// Nothing half-written: neither the grant nor the stack's handler was added.
			if stack.Node().TryFindChild(jsii.String("Grant")) != nil {
				t.Error("the construct was added despite the error")
			}
			if stack.Node().TryFindChild(jsii.String("CrossAccountAmiGrantHandler")) != nil {
				t.Error("the handler was added despite the error")
			}
		})
	}
}

// TestTokensAreCheckedAtDeploy: values unknown at synth time (another stack's
// key, a role created in this stack) are accepted and written to the template;
// the handler validates them when CloudFormation resolves them (see
// internal/destinationhandler TestInProcessAgainstMoto, "invalid ..." steps, and
// internal/grantspec TestDecodeRejects).
func TestTokensAreCheckedAtDeploy(t *testing.T) {
	// GIVEN a key in another stack and a grantee role created in this stack
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("222222222222"), Region: jsii.String("us-east-1")},
	})
	k := awskms.NewKey(source, jsii.String("Key"), nil)
	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String("222222222222"), Region: jsii.String("us-east-1")},
	})
	role := awsiam.NewRole(dest, jsii.String("Role"), &awsiam.RoleProps{AssumedBy: awsiam.NewAccountRootPrincipal()})

	// WHEN a grant names both, and a retiring principal
	msg := constructtest.Catch(func() {
		kmsgrant.NewGrant(dest, jsii.String("Grant"), &kmsgrant.GrantProps{
			Key: k, Grantee: role, RetiringPrincipal: role,
			Operations: jsii.Strings("Decrypt"),
		})
	})

	// THEN synth accepts them and the template carries the references
	if msg != "" {
		t.Fatalf("unexpected error: %s", msg)
	}
	tmpl := assertions.Template_FromStack(dest, nil)
	tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{
		"KeyArn":            assertions.Match_ObjectLike(&map[string]interface{}{"Fn::ImportValue": assertions.Match_AnyValue()}),
		"GranteePrincipal":  assertions.Match_ObjectLike(&map[string]interface{}{"Fn::GetAtt": assertions.Match_AnyValue()}),
		"RetiringPrincipal": assertions.Match_ObjectLike(&map[string]interface{}{"Fn::GetAtt": assertions.Match_AnyValue()}),
	})
}

// TestGranteeAsCDKPassesIt: a Lambda function is an awsiam.IGrantable (not
// an IPrincipal); the grant goes to its role, as CDK's own grant methods do.
func TestGranteeAsCDKPassesIt(t *testing.T) {
	stack := constructtest.NewStack()
	fn := awslambda.NewFunction(stack, jsii.String("Fn"), &awslambda.FunctionProps{
		Runtime: awslambda.Runtime_PYTHON_3_13(), Handler: jsii.String("index.handler"),
		Code: awslambda.Code_FromInline(jsii.String("def handler(e, c): pass")),
	})
	kmsgrant.NewGrant(stack, jsii.String("Grant"), &kmsgrant.GrantProps{
		Key: awskms.Key_FromKeyArn(stack, jsii.String("K"), jsii.String(keyArn)), Grantee: fn, Operations: jsii.Strings("Decrypt"),
	})
	role := *stack.GetLogicalId(fn.Role().Node().DefaultChild().(awscdk.CfnElement))
	assertions.Template_FromStack(stack, nil).HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{
		"GranteePrincipal": map[string]interface{}{"Fn::GetAtt": []interface{}{role, "Arn"}},
	})
}

// TestEachGrantHasItsOwnHandlerPolicy: two grants on one key in one stack
// share the handler; each has a policy of its own on the key, and depends on
// it, so that removing one grant cannot take its permissions away before
// its Delete runs. By default the handler's role is the grant's retiring
// principal: the role may create exactly that grant (grantee, operations,
// itself as retiring principal) and list the grants it may retire, and needs
// nothing on the key to retire them.
func TestEachGrantHasItsOwnHandlerPolicy(t *testing.T) {
	stack := constructtest.NewStack()
	k := awskms.Key_FromKeyArn(stack, jsii.String("K"), jsii.String(keyArn))
	for _, id := range []string{"A", "B"} {
		kmsgrant.NewGrant(stack, jsii.String(id), &kmsgrant.GrantProps{
			Key: k, Grantee: awsiam.NewArnPrincipal(jsii.String(slrArn)), Operations: jsii.Strings("Decrypt"),
		})
	}
	tmpl := assertions.Template_FromStack(stack, nil)
	tmpl.ResourceCountIs(jsii.String("Custom::KmsGrant"), jsii.Number(2))
	tmpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(1))
	tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{
		"RetiringPrincipal": handlerRoleArn,
	})
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), &map[string]interface{}{
		"Environment": map[string]interface{}{"Variables": map[string]interface{}{"CROSSACCOUNTAMI_HANDLER_ROLE_ARN": handlerRoleArn}},
	})
	kmsStatement := map[string]interface{}{"Statement": []interface{}{map[string]interface{}{
		"Action": "kms:CreateGrant",
		"Condition": map[string]interface{}{
			"StringEquals":              map[string]interface{}{"kms:GranteePrincipal": slrArn, "kms:RetiringPrincipal": handlerRoleArn},
			"ForAllValues:StringEquals": map[string]interface{}{"kms:GrantOperations": []interface{}{"Decrypt"}},
		},
		"Effect":   "Allow",
		"Resource": keyArn,
	}}, "Version": "2012-10-17"}
	policies := tmpl.FindResources(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"Properties": map[string]interface{}{"PolicyDocument": kmsStatement},
	})
	if len(*policies) != 2 {
		t.Fatalf("%d policies allow exactly the grant on the key, want one per grant", len(*policies))
	}
	grants := tmpl.FindResources(jsii.String("Custom::KmsGrant"), nil)
	for id, g := range *grants {
		deps, _ := (*g)["DependsOn"].([]interface{})
		n := 0
		for _, d := range deps {
			if _, ok := (*policies)[d.(string)]; ok {
				n++
			}
		}
		if n != 1 {
			t.Errorf("grant %s DependsOn %v, want exactly one of its policies", id, deps)
		}
	}
	// AND the role lists its retirable grants (an IAM-only permission) and
	// has no ListGrants, RevokeGrant or RetireGrant anywhere
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
			map[string]interface{}{"Action": "kms:ListRetirableGrants", "Effect": "Allow", "Resource": "*"},
		})},
	})
	body, _ := json.Marshal(tmpl.ToJSON())
	// (and, without a scheduled check, no CloudFormation permission)
	for _, a := range []string{"kms:ListGrants", "kms:RevokeGrant", "kms:RetireGrant", "cloudformation:DescribeStackResource"} {
		if strings.Contains(string(body), `"`+a+`"`) {
			t.Errorf("the template allows %s", a)
		}
	}
}

// TestARetiringPrincipalOfYourOwnIsRevoked: a grant whose retiring principal
// is not the handler's role cannot be retired by the handler; it gets
// ListGrants and RevokeGrant on that key, and the key policy must allow them.
func TestARetiringPrincipalOfYourOwnIsRevoked(t *testing.T) {
	stack := constructtest.NewStack()
	k := awskms.Key_FromKeyArn(stack, jsii.String("K"), jsii.String(keyArn))
	retirer := "arn:aws:iam::222222222222:role/retirer"
	kmsgrant.NewGrant(stack, jsii.String("G"), &kmsgrant.GrantProps{
		Key: k, Grantee: awsiam.NewArnPrincipal(jsii.String(slrArn)), Operations: jsii.Strings("Decrypt"),
		RetiringPrincipal: awsiam.NewArnPrincipal(jsii.String(retirer)),
	})
	tmpl := assertions.Template_FromStack(stack, nil)
	tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{"RetiringPrincipal": retirer})
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
			assertions.Match_ObjectLike(&map[string]interface{}{"Action": "kms:CreateGrant", "Condition": assertions.Match_ObjectLike(&map[string]interface{}{
				"StringEquals": map[string]interface{}{"kms:GranteePrincipal": slrArn, "kms:RetiringPrincipal": retirer},
			})}),
			map[string]interface{}{"Action": []interface{}{"kms:ListGrants", "kms:RevokeGrant"}, "Effect": "Allow", "Resource": keyArn},
		})},
	})
	body, _ := json.Marshal(tmpl.ToJSON())
	if strings.Contains(string(body), "kms:ListRetirableGrants") {
		t.Error("the role may list retirable grants, though it owns none")
	}
}

// TestHealSchedule: the scheduled check is for grants the handler owns; a
// grant with a RetiringPrincipal of your own is refused, naming it.
func TestHealSchedule(t *testing.T) {
	stack := constructtest.NewStack()
	k := awskms.Key_FromKeyArn(stack, jsii.String("K"), jsii.String(keyArn))
	kmsgrant.NewGrant(stack, jsii.String("Owned"), &kmsgrant.GrantProps{
		Key: k, Grantee: awsiam.NewArnPrincipal(jsii.String(slrArn)), Operations: jsii.Strings("Decrypt"),
		GrantName: jsii.String("fleet-grant"), HealSchedule: awsevents.Schedule_Rate(awscdk.Duration_Hours(jsii.Number(6))),
	})
	tmpl := assertions.Template_FromStack(stack, nil)
	grant := *stack.GetLogicalId(stack.Node().FindChild(jsii.String("Owned")).Node().FindChild(jsii.String("Resource")).Node().DefaultChild().(awscdk.CfnElement))
	// THEN the rule's Input names the grant's resource (the stack's unique
	// id, the logical id, the Ref: the handler heals only while
	// CloudFormation shows it alive) and its properties; the Ref makes the
	// rule wait for the grant, with no DependsOn of its own
	tmpl.HasResource(jsii.String("AWS::Events::Rule"), &map[string]interface{}{
		"DependsOn": assertions.Match_Absent(),
		"Properties": map[string]interface{}{
			"ScheduleExpression": "rate(6 hours)",
			"Targets": []interface{}{map[string]interface{}{
				"Id": "GrantHandler", "Arn": assertions.Match_AnyValue(),
				"Input": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
					`{"LogicalResourceId":"` + grant + `","PhysicalResourceId":"`,
					map[string]interface{}{"Ref": grant},
					`","ResourceProperties":{"GranteePrincipal":"` + slrArn + `","KeyArn":"` + keyArn + `","Name":"fleet-grant","Operations":["Decrypt"],"RetiringPrincipal":"arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-Dest-29201ce4b7"},"StackId":"`,
					map[string]interface{}{"Ref": "AWS::StackId"},
					`","crossaccountami":"heal-grant"}`,
				}}},
			}},
		},
	})
	// AND the handler's role may describe the resources of its own stack, and no other
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), &map[string]interface{}{
		"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{map[string]interface{}{
			"Action": "cloudformation:DescribeStackResource", "Effect": "Allow",
			"Resource": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{
				"arn:", map[string]interface{}{"Ref": "AWS::Partition"}, ":cloudformation:", map[string]interface{}{"Ref": "AWS::Region"}, ":",
				map[string]interface{}{"Ref": "AWS::AccountId"}, ":stack/", map[string]interface{}{"Ref": "AWS::StackName"}, "/*",
			}}},
		}})},
	})
	tmpl.ResourceCountIs(jsii.String("AWS::Lambda::Permission"), jsii.Number(1))
	// AND the grant carries its schedule: turning the check on for a grant
	// that exists sends it an Update, which answers the GrantName the rule reads
	tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{"Name": "fleet-grant", "HealSchedule": "rate(6 hours)"})

	msg := constructtest.Catch(func() {
		kmsgrant.NewGrant(stack, jsii.String("NotOwned"), &kmsgrant.GrantProps{
			Key: k, Grantee: awsiam.NewArnPrincipal(jsii.String(slrArn)), Operations: jsii.Strings("Decrypt"),
			RetiringPrincipal: awsiam.NewArnPrincipal(jsii.String("arn:aws:iam::222222222222:role/ops")),
			HealSchedule:      awsevents.Schedule_Rate(awscdk.Duration_Days(jsii.Number(1))),
		})
	})
	for _, w := range []string{"Dest/NotOwned", "HealSchedule", "arn:aws:iam::222222222222:role/ops"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

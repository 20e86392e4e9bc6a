package encryptedami_test

import (
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

// With a custom-suffix service-linked role, the Auto Scaling group launches
// through that role (ServiceLinkedRoleARN, an L1-only property), waits for
// the role and the grant, and its launch template encrypts the root volume
// with the source key.
func TestAutoScalingGroupWithCustomSuffixRole(t *testing.T) {
	// GIVEN a destination stack and an AMI with a custom-suffix role
	app := awscdk.NewApp(nil)
	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{Env: constructtest.Env("222222222222", "us-east-1")})
	key := awskms.Key_FromKeyArn(dest, jsii.String("Key"), jsii.String(importedKeyArn))
	ami := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: key, ImageId: jsii.String("ami-0123456789abcdef0"), ServiceLinkedRoleSuffix: jsii.String("fleet"),
		HealSchedule: awsevents.Schedule_Expression(jsii.String("rate(12 hours)")),
	})
	vpc := awsec2.NewVpc(dest, jsii.String("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: jsii.Strings("us-east-1a", "us-east-1b"), NatGateways: jsii.Number(0),
	})

	// WHEN an Auto Scaling group uses its launch template and is configured by it
	asg := awsautoscaling.NewAutoScalingGroup(dest, jsii.String("Asg"), &awsautoscaling.AutoScalingGroupProps{
		Vpc: vpc,
		LaunchTemplate: ami.NewLaunchTemplate(dest, jsii.String("LaunchTemplate"), &encryptedami.LaunchTemplateProps{
			LaunchTemplate: &awsec2.LaunchTemplateProps{InstanceType: awsec2.NewInstanceType(jsii.String("t3.micro"))},
			RootDeviceName: jsii.String("/dev/sda1"),
		}),
	})
	ami.ConfigureAutoScalingGroup(asg)

	// THEN the group launches through the custom-suffix role
	tmpl := assertions.Template_FromStack(dest, nil)
	slr := "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_fleet"
	tmpl.HasResourceProperties(jsii.String("AWS::AutoScaling::AutoScalingGroup"), &map[string]interface{}{
		"ServiceLinkedRoleARN": slr,
	})
	// AND the grant is for that role
	tmpl.HasResourceProperties(jsii.String("Custom::KmsGrant"), &map[string]interface{}{"GranteePrincipal": slr})
	tmpl.HasResourceProperties(jsii.String("Custom::AutoScalingServiceLinkedRole"), &map[string]interface{}{"CustomSuffix": "fleet"})
	// AND the group waits for the role and the grant
	grants := tmpl.FindResources(jsii.String("Custom::KmsGrant"), nil)
	roles := tmpl.FindResources(jsii.String("Custom::AutoScalingServiceLinkedRole"), nil)
	var want []string
	for id := range *grants {
		want = append(want, id)
	}
	for id := range *roles {
		want = append(want, id)
	}
	if len(want) != 2 {
		t.Fatalf("want one grant and one role resource, got %v", want)
	}
	for _, id := range want {
		tmpl.HasResource(jsii.String("AWS::AutoScaling::AutoScalingGroup"), &map[string]interface{}{
			"DependsOn": assertions.Match_ArrayWith(&[]interface{}{id}),
		})
	}
	// AND the grant is checked on the schedule asked for, with the name the handler gives it
	tmpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), &map[string]interface{}{
		"ScheduleExpression": "rate(12 hours)",
		"Targets": []interface{}{map[string]interface{}{"Id": "GrantHandler", "Arn": assertions.Match_AnyValue(), "Input": assertions.Match_ObjectLike(&map[string]interface{}{
			"Fn::Join": []interface{}{"", assertions.Match_ArrayWith(&[]interface{}{map[string]interface{}{"Fn::GetAtt": []interface{}{want[0], "GrantName"}}})},
		})}},
	})
	// AND the root volume named by RootDeviceName is encrypted with the source key, its size left to the snapshot
	tmpl.HasResourceProperties(jsii.String("AWS::EC2::LaunchTemplate"), &map[string]interface{}{
		"LaunchTemplateData": assertions.Match_ObjectLike(&map[string]interface{}{
			"ImageId": "ami-0123456789abcdef0",
			"BlockDeviceMappings": []interface{}{map[string]interface{}{
				"DeviceName": "/dev/sda1",
				"Ebs":        map[string]interface{}{"Encrypted": true, "KmsKeyId": importedKeyArn, "VolumeType": "gp3"},
			}},
		}),
	})
}

package test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/copyspec"
)

// TestCopyExample synthesizes examples/copy on its defaults: the copy is a
// Custom::CrossAccountAmiCopy of the shared AMI, encrypted with the
// destination's key, waited for up to CloudFormation's hour; the launch
// template launches the copy with the destination key, the group waits for
// the copy, and the source shares the AMI and its snapshots.
func TestCopyExample(t *testing.T) {
	t.Parallel()
	a := exampleAssembly(t, "copy", nil)
	dest, source := a.Templates["AmiCopy"], a.Templates["AmiSource"]
	if dest == nil || source == nil {
		t.Fatalf("stacks %v", keys(a.Templates))
	}
	copyID, cp := only(t, dest, copyspec.ResourceType)
	props := cp["Properties"].(map[string]interface{})
	if props[copyspec.PropSourceImageId] != "ami-0123456789abcdef0" || props[copyspec.PropName] != "shared-ami-copy" {
		t.Errorf("%s properties %v", copyID, props)
	}
	if props["ServiceTimeout"] != "3600" {
		t.Errorf("%s ServiceTimeout %v, want \"3600\" (the handler waits as long as CloudFormation)", copyID, props["ServiceTimeout"])
	}
	keyID, _ := only(t, dest, "AWS::KMS::Key")
	if k, _ := props[copyspec.PropKmsKeyId].(map[string]interface{}); k == nil || strs(k["Fn::GetAtt"])[0] != keyID {
		t.Errorf("%s KmsKeyId %v, want the destination key %s", copyID, props[copyspec.PropKmsKeyId], keyID)
	}
	if deps := strings.Join(strs(cp["DependsOn"]), " "); !strings.Contains(deps, "HandlerPolicy") {
		t.Errorf("%s DependsOn %s, want its own handler policy (deleted after the copy)", copyID, deps)
	}
	_, asg := only(t, dest, "AWS::AutoScaling::AutoScalingGroup")
	if deps := strings.Join(strs(asg["DependsOn"]), " "); !strings.Contains(deps, copyID) {
		t.Errorf("the group DependsOn %s, want the copy %s", deps, copyID)
	}
	_, lt := only(t, dest, "AWS::EC2::LaunchTemplate")
	data := lt["Properties"].(map[string]interface{})["LaunchTemplateData"].(map[string]interface{})
	if img, _ := data["ImageId"].(map[string]interface{}); img == nil || strs(img["Fn::GetAtt"])[0] != copyID {
		t.Errorf("launch template ImageId %v, want the copy's ImageId", data["ImageId"])
	}
	_, perm := only(t, source, "Custom::AmiLaunchPermission")
	if p := perm["Properties"].(map[string]interface{}); p["ShareSnapshots"] != "true" && p["ShareSnapshots"] != true {
		t.Errorf("the source's launch permission %v does not share the snapshots, which the copy reads", p)
	}
	for _, r := range []map[string]interface{}{dest, source} {
		for id := range Resources(r, "Custom::KmsGrant") {
			t.Errorf("%s: a KMS grant; a copy needs none", id)
		}
	}
	goldenAssembly(t, "copy", a)
	cfnLint(t, a)
}

// TestCopyExampleDefaultKey: examples/copy with -c destinationKey=aws/ebs:
// no key in the destination, the copy without KmsKeyId, the launch
// template's root volume encrypted without a KmsKeyId (the account's
// default EBS key), and no KMS permission on a key of the destination.
func TestCopyExampleDefaultKey(t *testing.T) {
	t.Parallel()
	a := exampleAssembly(t, "copy", map[string]string{"destinationKey": "aws/ebs"})
	dest := a.Templates["AmiCopy"]
	if n := len(Resources(dest, "AWS::KMS::Key")); n != 0 {
		t.Errorf("%d keys in the destination, want none", n)
	}
	_, cp := only(t, dest, copyspec.ResourceType)
	if k, ok := cp["Properties"].(map[string]interface{})[copyspec.PropKmsKeyId]; ok {
		t.Errorf("the copy names KmsKeyId %v, want none (aws/ebs)", k)
	}
	_, lt := only(t, dest, "AWS::EC2::LaunchTemplate")
	body, _ := json.Marshal(lt)
	if !strings.Contains(string(body), `"Ebs":{"Encrypted":true,"VolumeType":"gp3"}`) {
		t.Errorf("launch template %s, want an encrypted root volume without KmsKeyId", body)
	}
	policies, _ := json.Marshal(Resources(dest, "AWS::IAM::Policy"))
	if strings.Contains(string(policies), "ReEncryptTo") {
		t.Errorf("the copier may use a destination key that does not exist: %s", policies)
	}
	cfnLint(t, a)
}

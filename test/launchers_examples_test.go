package test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEksExample synthesizes examples/eks on its defaults: the node group
// waits for the default Auto Scaling role and its grant, launches from the
// construct's launch template (no instance profile), and the key policy
// names the default Auto Scaling role.
func TestEksExample(t *testing.T) {
	t.Parallel()
	a := exampleAssembly(t, "eks", nil)
	dest := a.Templates["AmiNodegroup"]
	if dest == nil || a.Templates["AmiSource"] == nil {
		t.Fatalf("stacks %v", keys(a.Templates))
	}
	_, grant := only(t, dest, "Custom::KmsGrant")
	const slr = "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	if g := grant["Properties"].(map[string]interface{})["GranteePrincipal"]; g != slr {
		t.Errorf("grantee %v, want %s", g, slr)
	}
	only(t, dest, "Custom::AutoScalingServiceLinkedRole")
	ngID, ng := only(t, dest, "AWS::EKS::Nodegroup")
	deps := strings.Join(strs(ng["DependsOn"]), " ")
	if !strings.Contains(deps, "SharedAmiGrant") || !strings.Contains(deps, "SharedAmiServiceLinkedRole") {
		t.Errorf("%s DependsOn %s, want the grant and the service-linked role", ngID, deps)
	}
	if _, ok := ng["Properties"].(map[string]interface{})["AmiType"]; ok {
		t.Errorf("%s sets AmiType next to a launch template with a custom AMI", ngID)
	}
	_, lt := only(t, dest, "AWS::EC2::LaunchTemplate")
	data := lt["Properties"].(map[string]interface{})["LaunchTemplateData"].(map[string]interface{})
	if _, ok := data["IamInstanceProfile"]; ok {
		t.Error("the launch template has an IamInstanceProfile, which EKS refuses")
	}
	if data["ImageId"] != "ami-0123456789abcdef0" || data["UserData"] == nil {
		t.Errorf("launch template data %v", data)
	}
	goldenAssembly(t, "eks", a)
	cfnLint(t, a)
}

// TestKarpenterExample synthesizes examples/karpenter on its defaults: the
// imported controller role gets the only grant, no service-linked role is
// created, and the key policy names the role.
func TestKarpenterExample(t *testing.T) {
	t.Parallel()
	a := exampleAssembly(t, "karpenter", nil)
	dest := a.Templates["AmiKarpenter"]
	if dest == nil || a.Templates["AmiSource"] == nil {
		t.Fatalf("stacks %v", keys(a.Templates))
	}
	const role = "arn:aws:iam::222222222222:role/KarpenterController-shared"
	_, grant := only(t, dest, "Custom::KmsGrant")
	if g := grant["Properties"].(map[string]interface{})["GranteePrincipal"]; g != role {
		t.Errorf("grantee %v, want %s", g, role)
	}
	for id, r := range dest["Resources"].(map[string]interface{}) {
		switch r.(map[string]interface{})["Type"] {
		case "Custom::AutoScalingServiceLinkedRole", "Custom::ServiceLinkedRole", "AWS::IAM::Role":
			if !strings.HasPrefix(id, "CrossAccountAmiGrantHandler") {
				t.Errorf("%s: %v in the destination, want only the grant handler's role", id, r.(map[string]interface{})["Type"])
			}
		case "AWS::IAM::Policy":
			if roles, _ := json.Marshal(r.(map[string]interface{})["Properties"].(map[string]interface{})["Roles"]); strings.Contains(string(roles), "Karpenter") {
				t.Errorf("%s changes the controller role's policies", id)
			}
		}
	}
	goldenAssembly(t, "karpenter", a)
	cfnLint(t, a)
}

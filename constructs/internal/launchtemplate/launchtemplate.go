// Package launchtemplate makes the launch template the AMI constructs hand
// out (encryptedami's NewLaunchTemplate for a shared AMI, amicopy's for a
// copy): the user's props with the AMI, and, unless the user sets block
// devices, the root volume encrypted with the AMI's key.
package launchtemplate

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// DefaultRootDeviceName is the root device of Amazon Linux AMIs.
const DefaultRootDeviceName = "/dev/xvda"

// Spec is what differs between the constructs.
type Spec struct {
	// Method names the caller in errors, e.g. "CopiedAmi.NewLaunchTemplate".
	Method string
	// Image is the AMI; Describe names it in the error for a MachineImage
	// of the user's ("the shared AMI ami-...").
	Image    awsec2.IMachineImage
	Describe string
	// KmsKeyId encrypts the root volume; nil for the account's default EBS
	// key.
	KmsKeyId interface{}
}

// New creates the launch template under scope. props and rootDeviceName
// are the user's (nil for the defaults). It panics with an error naming
// the prop and the value for a MachineImage of the user's or an empty
// device name.
func New(scope constructs.Construct, id *string, spec Spec, props *awsec2.LaunchTemplateProps, rootDeviceName *string) awsec2.LaunchTemplate {
	var p awsec2.LaunchTemplateProps
	if props != nil {
		p = *props
	}
	root := DefaultRootDeviceName
	if rootDeviceName != nil {
		root = *rootDeviceName
	}
	if p.MachineImage != nil {
		panic(fmt.Errorf("%s %s/%s: LaunchTemplate.MachineImage: must be unset, the launch template uses %s", spec.Method, *scope.Node().Path(), *id, spec.Describe))
	}
	if root == "" {
		panic(fmt.Errorf(`%s %s/%s: RootDeviceName: expected a device name such as "/dev/xvda", got "" (leave it nil for the default)`, spec.Method, *scope.Node().Path(), *id))
	}
	p.MachineImage = spec.Image
	lt := awsec2.NewLaunchTemplate(scope, id, &p)
	if p.BlockDevices == nil {
		// Through the L1 resource: the L2 BlockDevice needs a volume size,
		// and the right size is the AMI's snapshot size, which only EC2
		// knows. Without VolumeSize, EC2 uses the snapshot's size; without
		// KmsKeyId, an encrypted volume uses the account's default EBS key.
		ebs := map[string]interface{}{"Encrypted": true, "VolumeType": "gp3"}
		if spec.KmsKeyId != nil {
			ebs["KmsKeyId"] = spec.KmsKeyId
		}
		lt.Node().DefaultChild().(awsec2.CfnLaunchTemplate).AddPropertyOverride(jsii.String("LaunchTemplateData.BlockDeviceMappings"), []interface{}{
			map[string]interface{}{"DeviceName": root, "Ebs": ebs},
		})
	}
	return lt
}

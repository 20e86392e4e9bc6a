// Package amipermission provides LaunchPermission: launch permission on an existing
// AMI for destination accounts, an organization or organizational units
// (ec2:ModifyImageAttribute), and optionally create-volume permission on its
// snapshots for the accounts, managed by a custom resource in the AMI's
// account. Delete removes only the permissions it names and tolerates an AMI
// that is gone.
//
// At deploy time, an AMI whose snapshots are encrypted with the AWS managed
// key aws/ebs fails with a reason that says to copy it with a customer
// managed key: no other account can use aws/ebs.
//
// The runnable ExampleNewLaunchPermission (go doc -all, or the package's
// page on pkg.go.dev) shares an AMI with two accounts.
package amipermission

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/internal/amipermissionspec"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

// LaunchPermissionProps configures the launch permission.
type LaunchPermissionProps struct {
	// The AMI, in this stack's account and region: ami- followed by 8 or 17 hex digits.
	ImageId *string `field:"required"`
	// Accounts that may launch the AMI (12-digit ids).
	// Default: - none; one of Accounts, OrganizationArns, OrganizationalUnitArns is required.
	Accounts *[]*string `field:"optional"`
	// Organizations whose accounts may launch the AMI,
	// arn:aws:organizations::<management account>:organization/o-xxxxxxxxxx.
	// Default: - none.
	OrganizationArns *[]*string `field:"optional"`
	// Organizational units whose accounts may launch the AMI,
	// arn:aws:organizations::<management account>:ou/o-xxxxxxxxxx/ou-xxxx-xxxxxxxx.
	// Default: - none.
	OrganizationalUnitArns *[]*string `field:"optional"`
	// Also give Accounts create-volume permission on the AMI's snapshots,
	// for teams that copy the AMI into their own account rather than launch
	// it shared. EC2 shares snapshots with accounts only.
	// Default: false.
	ShareSnapshots *bool `field:"optional"`
}

// LaunchPermission is the launch permission of one AMI.
type LaunchPermission interface {
	constructs.Construct
	// The custom resource (Custom::AmiLaunchPermission).
	Resource() awscdk.CustomResource
	// The AMI's snapshot ids, comma-separated (known at deploy time).
	SnapshotIds() *string
}

type launchPermission struct {
	constructs.Construct
	resource awscdk.CustomResource
}

func (a *launchPermission) Resource() awscdk.CustomResource { return a.resource }
func (a *launchPermission) SnapshotIds() *string {
	return a.resource.GetAttString(jsii.String(amipermissionspec.AttrSnapshotIds))
}

// NewLaunchPermission shares props.ImageId. It panics with an error naming the
// construct path, the prop and the value when a prop is invalid; unresolved
// tokens are checked by the handler at deploy time.
func NewLaunchPermission(scope constructs.Construct, id *string, props *LaunchPermissionProps) LaunchPermission {
	fail := func(err error) {
		panic(fmt.Errorf("amipermission.NewLaunchPermission %s/%s: %w", *scope.Node().Path(), *id, err))
	}
	spec, err := specFromProps(props)
	if err != nil {
		fail(err)
	}
	if env := provider.EnvOf(scope); !env.Concrete {
		fail(fmt.Errorf("the stack %s needs a concrete account and region (env), got %s: it must be the AMI's account and region", env.Path, env.Where()))
	}
	c := constructs.NewConstruct(scope, id)
	src := provider.SourceOf(c)
	resource := src.Resource(c, amipermissionspec.ResourceType, spec.CfnProperties())
	src.AllowImageSharing(c, resource)
	return &launchPermission{Construct: c, resource: resource}
}

func specFromProps(props *LaunchPermissionProps) (amipermissionspec.Properties, error) {
	if props == nil {
		return amipermissionspec.Properties{}, fmt.Errorf("props: required, got nil")
	}
	if props.ImageId == nil {
		return amipermissionspec.Properties{}, fmt.Errorf("ImageId: required, got nil")
	}
	p := amipermissionspec.Properties{
		ImageId:                *props.ImageId,
		AccountIds:             jsiivalue.Strings(props.Accounts),
		OrganizationArns:       jsiivalue.Strings(props.OrganizationArns),
		OrganizationalUnitArns: jsiivalue.Strings(props.OrganizationalUnitArns),
		ShareSnapshots:         props.ShareSnapshots != nil && *props.ShareSnapshots,
	}
	// Check what is known now, with the prop names of this construct.
	if !jsiivalue.IsUnresolved(props.ImageId) {
		if err := awsid.ValidateImageID(p.ImageId); err != nil {
			return p, fmt.Errorf("ImageId: %v", err)
		}
	}
	check := func(prop string, values []string, validate func(string) error) error {
		for _, v := range values {
			if jsiivalue.IsUnresolved(&v) {
				continue
			}
			if err := validate(v); err != nil {
				return fmt.Errorf("%s: %v", prop, err)
			}
		}
		return nil
	}
	if err := check("Accounts", p.AccountIds, awsid.ValidateAccount); err != nil {
		return p, err
	}
	if err := check("OrganizationArns", p.OrganizationArns, amipermissionspec.ValidateOrganizationArn); err != nil {
		return p, err
	}
	if err := check("OrganizationalUnitArns", p.OrganizationalUnitArns, amipermissionspec.ValidateOrganizationalUnitArn); err != nil {
		return p, err
	}
	if len(p.AccountIds)+len(p.OrganizationArns)+len(p.OrganizationalUnitArns) == 0 {
		return p, fmt.Errorf("Accounts, OrganizationArns or OrganizationalUnitArns: at least one is required, got none")
	}
	if p.ShareSnapshots && len(p.AccountIds) == 0 {
		return p, fmt.Errorf("ShareSnapshots: true needs Accounts (EC2 shares snapshots with accounts only, not with organizations or OUs), got no Accounts")
	}
	return p, nil
}

// Package amipermissionspec is the one definition of the Custom::AmiLaunchPermission
// resource's properties: launch permissions on one AMI for accounts, an
// organization or organizational units, and optionally create-volume
// permission on its snapshots. The construct writes them with
// Properties.CfnProperties, the handler reads them back with Decode.
package amipermissionspec

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/cfnprops"
)

// ResourceType is the CloudFormation type of the resource.
const ResourceType = "Custom::AmiLaunchPermission"

// Property names.
const (
	PropImageId                = "ImageId"
	PropAccountIds             = "AccountIds"
	PropOrganizationArns       = "OrganizationArns"
	PropOrganizationalUnitArns = "OrganizationalUnitArns"
	PropShareSnapshots         = "ShareSnapshots"
)

// Attribute names.
const (
	AttrImageId     = "ImageId"
	AttrSnapshotIds = "SnapshotIds" // comma-separated
)

var (
	orgArnRe = regexp.MustCompile(`^arn:aws(-[a-z]+)*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$`)
	ouArnRe  = regexp.MustCompile(`^arn:aws(-[a-z]+)*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`)
)

// ValidateOrganizationArn checks arn:aws:organizations::<management account>:organization/o-xxxxxxxxxx.
func ValidateOrganizationArn(s string) error {
	if !orgArnRe.MatchString(s) {
		return fmt.Errorf("%q is not an organization ARN (expected arn:aws:organizations::<management account>:organization/o-<10 to 32 lowercase letters or digits>)", s)
	}
	return nil
}

// ValidateOrganizationalUnitArn checks arn:aws:organizations::<management account>:ou/o-xxxxxxxxxx/ou-xxxx-xxxxxxxx.
func ValidateOrganizationalUnitArn(s string) error {
	if !ouArnRe.MatchString(s) {
		return fmt.Errorf("%q is not an organizational unit ARN (expected arn:aws:organizations::<management account>:ou/o-<id>/ou-<root>-<id>)", s)
	}
	return nil
}

// Properties define the sharing of one AMI.
type Properties struct {
	ImageId                string
	AccountIds             []string
	OrganizationArns       []string
	OrganizationalUnitArns []string
	// ShareSnapshots adds create-volume permission on the AMI's snapshots for
	// AccountIds (EC2 shares snapshots with accounts only, not with
	// organizations), for teams that copy the AMI into their own account.
	ShareSnapshots bool
}

// Validate checks every field and names the property and value at fault.
func (p Properties) Validate() error {
	var errs []error
	if err := awsid.ValidateImageID(p.ImageId); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropImageId, err))
	}
	check := func(prop string, values []string, validate func(string) error) {
		seen := map[string]bool{}
		for _, v := range values {
			if err := validate(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", prop, err))
			}
			if seen[v] {
				errs = append(errs, fmt.Errorf("%s: %q is listed twice", prop, v))
			}
			seen[v] = true
		}
	}
	check(PropAccountIds, p.AccountIds, awsid.ValidateAccount)
	check(PropOrganizationArns, p.OrganizationArns, ValidateOrganizationArn)
	check(PropOrganizationalUnitArns, p.OrganizationalUnitArns, ValidateOrganizationalUnitArn)
	if len(p.AccountIds)+len(p.OrganizationArns)+len(p.OrganizationalUnitArns) == 0 {
		errs = append(errs, fmt.Errorf("%s, %s or %s: at least one is required, got none", PropAccountIds, PropOrganizationArns, PropOrganizationalUnitArns))
	}
	if p.ShareSnapshots && len(p.AccountIds) == 0 {
		errs = append(errs, fmt.Errorf("%s: true needs %s (EC2 shares snapshots with accounts only, not with organizations or OUs)", PropShareSnapshots, PropAccountIds))
	}
	return errors.Join(errs...)
}

// CfnProperties renders p as custom resource properties; empty lists are left out.
func (p Properties) CfnProperties() map[string]interface{} {
	out := map[string]interface{}{PropImageId: p.ImageId}
	if len(p.AccountIds) > 0 {
		out[PropAccountIds] = slices.Clone(p.AccountIds)
	}
	if len(p.OrganizationArns) > 0 {
		out[PropOrganizationArns] = slices.Clone(p.OrganizationArns)
	}
	if len(p.OrganizationalUnitArns) > 0 {
		out[PropOrganizationalUnitArns] = slices.Clone(p.OrganizationalUnitArns)
	}
	if p.ShareSnapshots {
		out[PropShareSnapshots] = "true"
	}
	return out
}

// Decode reads the properties of a CloudFormation event and validates them.
func Decode(raw map[string]interface{}) (Properties, error) {
	r := cfnprops.NewReader(raw)
	var p Properties
	if s, ok := raw[PropImageId].(string); ok {
		p.ImageId = s
	} else {
		r.Failf("%s: expected a string, got %s", PropImageId, cfnprops.Show(raw[PropImageId]))
	}
	p.AccountIds = r.List(PropAccountIds)
	p.OrganizationArns = r.List(PropOrganizationArns)
	p.OrganizationalUnitArns = r.List(PropOrganizationalUnitArns)
	p.ShareSnapshots = r.Bool(PropShareSnapshots)
	if err := r.Err(); err != nil {
		return Properties{}, err
	}
	if err := p.Validate(); err != nil {
		return Properties{}, err
	}
	return p, nil
}

// PhysicalID names one resource: "<image id>/<16 hex>" (a hash of the stack
// and logical id). Another image gives another id, a replacement.
type PhysicalID struct {
	ImageId string
	Hash    string
}

// NewPhysicalID derives the physical id of a resource.
func NewPhysicalID(imageID, stackID, logicalID string) PhysicalID {
	return PhysicalID{ImageId: imageID, Hash: cfnprops.ResourceHash(stackID, logicalID)}
}

func (id PhysicalID) String() string { return id.ImageId + "/" + id.Hash }

// ParsePhysicalID reads an id written by String; ok is false for anything else.
func ParsePhysicalID(s string) (PhysicalID, bool) {
	img, hash, ok := strings.Cut(s, "/")
	if !ok || awsid.ValidateImageID(img) != nil || !cfnprops.IsResourceHash(hash) {
		return PhysicalID{}, false
	}
	return PhysicalID{ImageId: img, Hash: hash}, true
}

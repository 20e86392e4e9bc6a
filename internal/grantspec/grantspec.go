// Package grantspec is the one definition of the Custom::KmsGrant resource's
// properties: the construct writes them with Properties.CfnProperties, the
// handler reads them back with Decode. Both sides use this package, so the
// names and the rules cannot drift apart.
package grantspec

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/cfnprops"
)

// ResourceType is the CloudFormation type of the grant custom resource.
const ResourceType = "Custom::KmsGrant"

// Property names, as they appear in the template and in the event.
const (
	PropKeyArn                  = "KeyArn"
	PropGranteePrincipal        = "GranteePrincipal"
	PropOperations              = "Operations"
	PropRetiringPrincipal       = "RetiringPrincipal"
	PropEncryptionContextEquals = "EncryptionContextEquals"
	PropEncryptionContextSubset = "EncryptionContextSubset"
	PropName                    = "Name"
	PropVerifyToken             = "VerifyToken"
	// PropHealSchedule is the schedule of the grant's check, written in the
	// template for the reader. It defines nothing, and the handler ignores
	// it; adding it to a grant that exists sends CloudFormation's Update,
	// which answers the GrantName attribute the check's rule reads (a grant
	// created by an older handler has none).
	PropHealSchedule = "HealSchedule"
)

// HandlerRoleEnv is the environment variable through which the construct
// tells the handler the ARN of the role it runs as. A grant whose
// RetiringPrincipal is that role is owned by the handler: it is found with
// ListRetirableGrants and removed with RetireGrant, which need nothing in
// the key policy. Any other grant is removed with RevokeGrant.
const HandlerRoleEnv = "CROSSACCOUNTAMI_HANDLER_ROLE_ARN"

// Attribute names (the Data of every response, Update included).
const (
	AttrGrantId = "GrantId"
	AttrKeyArn  = "KeyArn"
	// AttrGrantName is the grant's name: Name, or the one the handler
	// derived (DefaultName), which is known only at deploy time. The
	// scheduled check's event carries it (HealEvent).
	AttrGrantName = "GrantName"
)

// Operations KMS accepts in a grant: the values of the SDK's
// types.GrantOperation (sdk_test.go checks they are the same set; this
// package does not import the SDK, so the constructs need not).
var Operations = []string{
	"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	"ReEncryptFrom", "ReEncryptTo", "Sign", "Verify", "GetPublicKey",
	"CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
	"GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
	"Encapsulate", "Decapsulate",
}

// AutoScalingOperations are the operations the Auto Scaling service-linked
// role needs to launch instances from an AMI encrypted with another account's
// key (the AWS knowledge-center article this library implements).
var AutoScalingOperations = []string{
	"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	"ReEncryptFrom", "ReEncryptTo", "CreateGrant", "DescribeKey",
}

var nameRe = regexp.MustCompile(`^[a-zA-Z0-9:/_-]{1,256}$`)

// Properties defines one grant. The zero value of an optional field means
// "not set".
type Properties struct {
	KeyArn                  string
	GranteePrincipal        string
	Operations              []string
	RetiringPrincipal       string
	EncryptionContextEquals map[string]string
	EncryptionContextSubset map[string]string
	// Name is the grant name. Empty means: the handler derives it from the
	// stack id and logical id, so a retried Create returns the same grant.
	Name string
	// VerifyToken does not define the grant. Changing it makes the next
	// Update check that the grant still exists and recreate it if it does not.
	VerifyToken string
}

// Validate checks every field and names the property and value at fault.
// Values still unresolved at synth time are never passed here; the handler
// validates them at deploy time.
func (p Properties) Validate() error {
	var errs []error
	if _, err := awsid.ParseKeyARN(p.KeyArn); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropKeyArn, err))
	}
	if err := awsid.ValidatePrincipalARN(p.GranteePrincipal); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropGranteePrincipal, err))
	}
	if err := ValidateOperations(p.Operations); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropOperations, err))
	}
	if p.RetiringPrincipal != "" {
		if err := awsid.ValidatePrincipalARN(p.RetiringPrincipal); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", PropRetiringPrincipal, err))
		}
	}
	if len(p.EncryptionContextEquals) > 0 && len(p.EncryptionContextSubset) > 0 {
		errs = append(errs, fmt.Errorf("%s and %s: KMS accepts only one of the two grant constraints, got both", PropEncryptionContextEquals, PropEncryptionContextSubset))
	}
	if p.Name != "" && !nameRe.MatchString(p.Name) {
		errs = append(errs, fmt.Errorf("%s: %q is not a valid grant name (expected 1 to 256 of a-z A-Z 0-9 : / _ -)", PropName, p.Name))
	}
	return errors.Join(errs...)
}

// ValidateOperations checks a grant's operations: not empty, each known to
// KMS, none repeated.
func ValidateOperations(ops []string) error {
	if len(ops) == 0 {
		return errors.New("at least one grant operation is required, got none")
	}
	seen := map[string]bool{}
	for _, op := range ops {
		if !slices.Contains(Operations, op) {
			return fmt.Errorf("unknown grant operation %q (expected one of %s)", op, strings.Join(Operations, ", "))
		}
		if seen[op] {
			return fmt.Errorf("grant operation %q is listed twice", op)
		}
		seen[op] = true
	}
	return nil
}

// SameGrant reports whether a and b define the same grant, so an Update
// between them can keep the grant. VerifyToken does not define a grant; the
// order of operations does not matter.
func SameGrant(a, b Properties) bool {
	return a.KeyArn == b.KeyArn &&
		a.GranteePrincipal == b.GranteePrincipal &&
		a.RetiringPrincipal == b.RetiringPrincipal &&
		a.Name == b.Name &&
		SameOperations(a.Operations, b.Operations) &&
		maps.Equal(a.EncryptionContextEquals, b.EncryptionContextEquals) &&
		maps.Equal(a.EncryptionContextSubset, b.EncryptionContextSubset)
}

// SameOperations reports whether a and b list the same operations, in any order.
func SameOperations(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// CfnProperties renders p as custom resource properties. Optional fields
// that are not set are left out, so the template shows only what was asked.
// Values may be CDK tokens (strings that resolve at deploy time).
func (p Properties) CfnProperties() map[string]interface{} {
	out := map[string]interface{}{
		PropKeyArn:           p.KeyArn,
		PropGranteePrincipal: p.GranteePrincipal,
		PropOperations:       slices.Clone(p.Operations),
	}
	if p.RetiringPrincipal != "" {
		out[PropRetiringPrincipal] = p.RetiringPrincipal
	}
	if len(p.EncryptionContextEquals) > 0 {
		out[PropEncryptionContextEquals] = maps.Clone(p.EncryptionContextEquals)
	}
	if len(p.EncryptionContextSubset) > 0 {
		out[PropEncryptionContextSubset] = maps.Clone(p.EncryptionContextSubset)
	}
	if p.Name != "" {
		out[PropName] = p.Name
	}
	if p.VerifyToken != "" {
		out[PropVerifyToken] = p.VerifyToken
	}
	return out
}

// Decode reads the properties of a CloudFormation event (every scalar
// arrives as a string) into Properties and validates them. The ServiceToken
// and unknown keys are ignored so that an older handler tolerates a newer
// template (and this handler an older one: RetireOnDelete, which 0.1
// templates carry, no longer means anything); every known key is checked.
func Decode(raw map[string]interface{}) (Properties, error) {
	var p Properties
	r := cfnprops.NewReader(raw)
	p.KeyArn = r.String(PropKeyArn)
	p.GranteePrincipal = r.String(PropGranteePrincipal)
	p.RetiringPrincipal = r.String(PropRetiringPrincipal)
	p.Name = r.String(PropName)
	p.VerifyToken = r.String(PropVerifyToken)
	p.Operations = r.List(PropOperations)
	p.EncryptionContextEquals = r.Map(PropEncryptionContextEquals)
	p.EncryptionContextSubset = r.Map(PropEncryptionContextSubset)
	if err := r.Err(); err != nil {
		return Properties{}, err
	}
	if err := p.Validate(); err != nil {
		return Properties{}, err
	}
	return p, nil
}

// PhysicalID identifies one grant: the key ARN and the grant id, joined by
// the last colon (grant ids never contain one), like Terraform's aws_kms_grant.
type PhysicalID struct {
	KeyArn  string
	GrantId string
}

func (id PhysicalID) String() string { return id.KeyArn + ":" + id.GrantId }

var grantIDRe = regexp.MustCompile(`^[0-9a-fA-F]{1,128}$`)

// ParsePhysicalID reads a physical id written by String. ok is false for
// anything else, such as the request id CloudFormation keeps after a failed
// Create: a Delete of such an id has no grant to remove.
func ParsePhysicalID(s string) (id PhysicalID, ok bool) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return PhysicalID{}, false
	}
	key, grant := s[:i], s[i+1:]
	if _, err := awsid.ParseKeyARN(key); err != nil || !grantIDRe.MatchString(grant) {
		return PhysicalID{}, false
	}
	return PhysicalID{KeyArn: key, GrantId: grant}, true
}

// PendingID is the physical id of a Create that failed after it may have
// reached KMS (an error, or a timeout while CreateGrant was in flight). It
// names the key and the grant name, so the Delete CloudFormation sends on
// rollback can find and revoke a grant that KMS created after all, instead
// of leaking it.
type PendingID struct {
	KeyArn string
	Name   string
}

const pendingPrefix = "pending-grant:"

func (id PendingID) String() string { return pendingPrefix + id.KeyArn + "#" + id.Name }

// ParsePendingID reads a physical id written by PendingID.String.
func ParsePendingID(s string) (id PendingID, ok bool) {
	rest, ok := strings.CutPrefix(s, pendingPrefix)
	if !ok {
		return PendingID{}, false
	}
	key, name, ok := strings.Cut(rest, "#")
	if !ok || !nameRe.MatchString(name) {
		return PendingID{}, false
	}
	if _, err := awsid.ParseKeyARN(key); err != nil {
		return PendingID{}, false
	}
	return PendingID{KeyArn: key, Name: name}, true
}

// DefaultName derives a grant name from the stack and the logical id: the
// same for every retry of one resource, different for every stack instance
// (the stack id ends in a UUID). KMS returns the existing grant when a
// CreateGrant repeats a Name with the same parameters.
func DefaultName(stackID, logicalID string) string {
	stackName, uuid := stackID, ""
	if a, err := awsid.ParseARN(stackID); err == nil {
		parts := strings.Split(a.Resource, "/") // stack/<name>/<uuid>
		if len(parts) == 3 {
			stackName, uuid = parts[1], parts[2]
		}
	}
	name := sanitize(stackName) + "/" + sanitize(logicalID)
	if uuid != "" {
		name += "/" + sanitize(uuid)
	}
	if len(name) > 256 {
		name = name[len(name)-256:]
	}
	return name
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == ':' || r == '/' || r == '_' || r == '-' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return r
		}
		return '-'
	}, s)
}

// Package copyspec is the one definition of the Custom::CrossAccountAmiCopy
// resource: its properties (written by the construct with
// Properties.CfnProperties, read by the handler with Decode), its
// attributes, its physical ids, and the tags that mark the AMI copy and its
// snapshots as this resource's own. The construct and the handler both use
// this package, so the names and rules cannot drift apart. It imports no
// SDK, so the constructs need not.
package copyspec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/cfnprops"
)

// ResourceType is the CloudFormation type of the copy custom resource.
const ResourceType = "Custom::CrossAccountAmiCopy"

// Property names, as they appear in the template and in the event.
const (
	PropSourceImageId = "SourceImageId"
	PropSourceRegion  = "SourceRegion"
	PropName          = "Name"
	PropKmsKeyId      = "KmsKeyId"
	PropDescription   = "Description"
	// PropServiceTimeout is CloudFormation's own property of a custom
	// resource (AWS::CloudFormation::CustomResource ServiceTimeout, 1 to
	// 3600 seconds, default 3600): how long CloudFormation waits for the
	// answer. The handler reads it from the event to know how long it may
	// wait for the copy (3600 when the event does not carry it: the
	// request-object page of the CloudFormation guide does not say whether
	// CloudFormation forwards it in ResourceProperties). The construct
	// always sets it (1 to 3600, default 3600), so that the value
	// CloudFormation uses and the one the handler reads are the same.
	PropServiceTimeout = "ServiceTimeout"
)

// Attribute names (the Data of every SUCCESS answer).
const (
	AttrImageId = "ImageId"
	// AttrSnapshotIds is the copy's snapshot ids, joined by commas (a
	// custom resource's attributes are strings).
	AttrSnapshotIds = "SnapshotIds"
)

// Tags the copy and each of its snapshots carry (CopyImage's
// TagSpecifications, set as the copy is made). The handler removes an
// image or a snapshot only when it carries TagStackId and TagLogicalId of
// the request, and TagCopyToken of the copy it means.
const (
	TagCopyOf       = "crossaccountami:copy-of"       // the source AMI id
	TagSourceRegion = "crossaccountami:source-region" // the source AMI's region
	TagStackId      = "crossaccountami:stack-id"      // the stack's id (ARN, with its UUID)
	TagLogicalId    = "crossaccountami:logical-id"    // the resource's logical id
	TagCopyToken    = "crossaccountami:copy-token"    // the CopyImage ClientToken: one per copy
	// TagDefinition is DefinitionHash of the properties the copy was made
	// from: a rollback finds the copy it returns to by it.
	TagDefinition = "crossaccountami:definition"
)

// DefaultKeyAlias names the account's default EBS encryption key. An empty
// KmsKeyId means the same: CopyImage is called with Encrypted and no
// KmsKeyId, and EC2 uses the account's default key for EBS encryption in
// the region (aws/ebs unless the account changed it).
const DefaultKeyAlias = "alias/aws/ebs"

// MaxServiceTimeout is CloudFormation's limit on ServiceTimeout, in seconds,
// and its default.
const MaxServiceTimeout = 3600

// Properties defines one copy. The zero value of an optional field means
// "not set".
type Properties struct {
	// SourceImageId is the shared AMI to copy.
	SourceImageId string
	// SourceRegion is its region. Default: the stack's region (the handler
	// fills it in).
	SourceRegion string
	// Name is the copy's name prefix. EC2 wants AMI names unique in an
	// account and region, and a replacement's copy exists next to the old
	// one until CloudFormation deletes it; so the copy is named
	// <Name>-<12 hex of its token> (ImageName). Default: copy-of-<SourceImageId>.
	Name string
	// KmsKeyId is the ARN of the destination key (in the stack's account
	// and region), or "" / DefaultKeyAlias for the account's default EBS key.
	KmsKeyId string
	// Description of the copy. Default: none.
	Description string
	// ServiceTimeout is CloudFormation's wait, in seconds (0: not set, 3600).
	ServiceTimeout int
}

var (
	nameRe = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./'@_-]{3,128}$`)
	// Maximum length of the Name a copy is named after: 128 minus "-" and 12 hex.
	maxNameLen = 128 - 13
)

// Validate checks every field and names the property and value at fault.
// Values still unresolved at synth time are never passed here; the handler
// validates them at deploy time.
func (p Properties) Validate() error {
	var errs []error
	if err := awsid.ValidateImageID(p.SourceImageId); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropSourceImageId, err))
	}
	if p.SourceRegion != "" {
		if err := awsid.ValidateRegion(p.SourceRegion); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", PropSourceRegion, err))
		}
	}
	if p.Name != "" && (!nameRe.MatchString(p.Name) || len(p.Name) > maxNameLen) {
		errs = append(errs, fmt.Errorf("%s: %q is not a valid AMI name prefix (expected 3 to %d of a-z A-Z 0-9 ( ) [ ] space . / - ' @ _; the handler appends - and 12 hex digits to keep copies apart)", PropName, p.Name, maxNameLen))
	}
	if !p.DefaultKey() {
		if _, err := awsid.ParseKeyARN(p.KmsKeyId); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v (or leave it empty, or %s, for the account's default EBS key)", PropKmsKeyId, err, DefaultKeyAlias))
		}
	}
	if len(p.Description) > 255 {
		errs = append(errs, fmt.Errorf("%s: at most 255 characters, got %d (%.40q...)", PropDescription, len(p.Description), p.Description))
	}
	if p.ServiceTimeout < 0 || p.ServiceTimeout > MaxServiceTimeout {
		errs = append(errs, fmt.Errorf("%s: expected 1 to %d seconds, got %d", PropServiceTimeout, MaxServiceTimeout, p.ServiceTimeout))
	}
	return errors.Join(errs...)
}

// DefaultKey reports whether the copy is encrypted with the account's
// default EBS key.
func (p Properties) DefaultKey() bool { return p.KmsKeyId == "" || p.KmsKeyId == DefaultKeyAlias }

// Wait is how long CloudFormation waits for the answer: ServiceTimeout, or
// CloudFormation's default of one hour.
func (p Properties) Wait() time.Duration {
	if p.ServiceTimeout > 0 {
		return time.Duration(p.ServiceTimeout) * time.Second
	}
	return MaxServiceTimeout * time.Second
}

// SameCopy reports whether a and b define the same copy, so that an Update
// between them keeps it. Every property but ServiceTimeout defines the copy:
// EC2 cannot rename an AMI or re-encrypt it in place, so any other change is
// a replacement (a new copy; CloudFormation deletes the old one after the
// update succeeds).
func SameCopy(a, b Properties) bool { return DefinitionHash(a) == DefinitionHash(b) }

// DefinitionHash is 16 hex digits that stand for the properties that define
// a copy (TagDefinition). The default key is one value however it is written.
func DefinitionHash(p Properties) string {
	key := p.KmsKeyId
	if p.DefaultKey() {
		key = DefaultKeyAlias
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{p.SourceImageId, p.SourceRegion, key, p.Name, p.Description}, "\x00")))
	return hex.EncodeToString(sum[:])[:16]
}

// CfnProperties renders p as custom resource properties. Optional fields
// that are not set are left out. ServiceTimeout is not rendered here: it is
// the custom resource's own property, which the construct sets through
// CfnCustomResource (and which CloudFormation passes in the event).
func (p Properties) CfnProperties() map[string]interface{} {
	out := map[string]interface{}{PropSourceImageId: p.SourceImageId}
	for k, v := range map[string]string{PropSourceRegion: p.SourceRegion, PropName: p.Name, PropKmsKeyId: p.KmsKeyId, PropDescription: p.Description} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// Decode reads the properties of a CloudFormation event (every scalar
// arrives as a string) and validates them. The ServiceToken and unknown
// keys are ignored, so that an older handler tolerates a newer template.
func Decode(raw map[string]interface{}) (Properties, error) {
	var p Properties
	r := cfnprops.NewReader(raw)
	p.SourceImageId = r.String(PropSourceImageId)
	p.SourceRegion = r.String(PropSourceRegion)
	p.Name = r.String(PropName)
	p.KmsKeyId = r.String(PropKmsKeyId)
	p.Description = r.String(PropDescription)
	if v, ok := raw[PropServiceTimeout]; ok && v != nil {
		// CloudFormation sends the number as a string; a template read
		// from JSON by a test may hold a number.
		switch t := v.(type) {
		case string:
			n, err := strconv.Atoi(t)
			if err != nil || n < 1 || n > MaxServiceTimeout {
				r.Failf("%s: expected 1 to %d seconds, got %s", PropServiceTimeout, MaxServiceTimeout, cfnprops.Show(v))
				n = 0
			}
			p.ServiceTimeout = n
		case float64:
			if t != float64(int(t)) || t < 1 || t > MaxServiceTimeout {
				r.Failf("%s: expected 1 to %d seconds, got %s", PropServiceTimeout, MaxServiceTimeout, cfnprops.Show(v))
			} else {
				p.ServiceTimeout = int(t)
			}
		default:
			r.Failf("%s: expected 1 to %d seconds, got %s", PropServiceTimeout, MaxServiceTimeout, cfnprops.Show(v))
		}
	}
	// One error lists every bad property: the reader's (wrong types) and
	// Validate's (wrong values).
	if err := errors.Join(r.Err(), p.Validate()); err != nil {
		return Properties{}, err
	}
	return p, nil
}

// CopyToken is the ClientToken of the CopyImage that one request makes, and
// the TagCopyToken of that copy: "ca" and 32 hex digits (EC2 accepts up to
// 64 ASCII characters).
//
// It is a hash of what every delivery of one request shares and what a
// replacement changes: the stack id (its UUID tells stack instances apart),
// the logical id, CloudFormation's RequestId (new for every request, the
// same when Lambda delivers one event twice or the handler continues it)
// and the defining properties. A duplicate delivery therefore repeats the
// CopyImage with the same token, and EC2 answers with the copy the first one
// made instead of making a second. A replacing Update is a new request, so
// it gets a new copy even when it returns to properties an older copy was
// made from; without the RequestId, EC2 could answer with that older copy,
// which CloudFormation may have deleted since. The properties are in the
// hash so that a RequestId repeated with other properties gets its own
// token rather than EC2's IdempotentParameterMismatch.
func CopyToken(stackID, logicalID, requestID string, p Properties) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{stackID, logicalID, requestID, DefinitionHash(p)}, "\x00")))
	return "ca" + hex.EncodeToString(sum[:])[:32]
}

var tokenRe = regexp.MustCompile(`^ca[0-9a-f]{32}$`)

// IsCopyToken reports whether s has the shape CopyToken gives.
func IsCopyToken(s string) bool { return tokenRe.MatchString(s) }

// ImageName is the name of the copy made with token: the Name (or
// copy-of-<SourceImageId>) and 12 hex digits of the token.
func ImageName(p Properties, token string) string {
	name := p.Name
	if name == "" {
		name = "copy-of-" + p.SourceImageId
	}
	return name + "-" + strings.TrimPrefix(token, "ca")[:12]
}

// PhysicalID names one copy: its image id and its token, joined by a slash.
// The token lets a Delete find the copy's snapshots after the image is
// gone (a Delete retried after it deregistered the image).
type PhysicalID struct {
	ImageId string
	Token   string
}

func (id PhysicalID) String() string { return id.ImageId + "/" + id.Token }

// ParsePhysicalID reads a physical id written by String. ok is false for
// anything else.
func ParsePhysicalID(s string) (id PhysicalID, ok bool) {
	image, token, found := strings.Cut(s, "/")
	if !found || awsid.ValidateImageID(image) != nil || !IsCopyToken(token) {
		return PhysicalID{}, false
	}
	return PhysicalID{ImageId: image, Token: token}, true
}

// PendingID is the physical id of a Create that failed after its CopyImage
// may have made a copy: the rollback Delete removes every image and
// snapshot that carries the token (and the resource's stack and logical id).
type PendingID struct{ Token string }

const pendingPrefix = "pending-copy/"

func (id PendingID) String() string { return pendingPrefix + id.Token }

// ParsePendingID reads a physical id written by PendingID.String.
func ParsePendingID(s string) (id PendingID, ok bool) {
	token, ok := strings.CutPrefix(s, pendingPrefix)
	if !ok || !IsCopyToken(token) {
		return PendingID{}, false
	}
	return PendingID{Token: token}, true
}

// OwnerTags are the tags of a copy made with token from p for a resource.
// sourceRegion is p.SourceRegion or, when that is empty, the stack's region.
func OwnerTags(stackID, logicalID, token, sourceRegion string, p Properties) map[string]string {
	return map[string]string{
		TagCopyOf:       p.SourceImageId,
		TagSourceRegion: sourceRegion,
		TagStackId:      stackID,
		TagLogicalId:    logicalID,
		TagCopyToken:    token,
		TagDefinition:   DefinitionHash(p),
	}
}

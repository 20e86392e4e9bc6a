// Package keypolicyspec is the one definition of the
// Custom::KmsKeyPolicyStatements resource's properties: a set of statements,
// identified by their Sids, that the resource keeps in the policy of a KMS
// key it does not own. The construct writes the properties with
// Properties.CfnProperties, the handler reads them back with Decode.
//
// The statements travel as one JSON string (CloudFormation would stringify
// every scalar of a nested object anyway), so the handler merges exactly the
// statements the construct wrote.
//
// Ownership is written in the statements themselves: every Sid of a
// resource ends with SidSuffix, a mark derived from the stack that owns the
// resource (its account, region and name; one stack keeps one resource per
// key). A statement whose Sid lacks that mark, such as one applied by hand
// from CrossAccountEncryptedAmi's synth warning, is never this resource's,
// whatever its content. Properties written before marks existed have no
// SidSuffix; their resources keep the rules they were created under until
// their next Update writes marked statements.
package keypolicyspec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/cfnprops"
)

// ResourceType is the CloudFormation type of the resource.
const ResourceType = "Custom::KmsKeyPolicyStatements"

// Property names.
const (
	PropKeyArn     = "KeyArn"
	PropStatements = "Statements"
	PropSidSuffix  = "SidSuffix"
)

// Attribute names (the Data of Create and Update answers).
const (
	AttrKeyArn      = "KeyArn"
	AttrPolicyBytes = "PolicyBytes"
)

// MaxPolicyBytes is KMS's limit on a key policy document (32 KB).
const MaxPolicyBytes = 32768

// Statement is one key policy statement: its Sid and its JSON, compact.
type Statement struct {
	Sid  string
	JSON json.RawMessage
}

// Properties are the resource's properties.
type Properties struct {
	KeyArn     string
	Statements []Statement
	// SidSuffix is the mark every Sid of Statements ends with (see
	// SidSuffix the function). Empty in properties written before marks
	// existed.
	SidSuffix string
}

// SidSuffix returns the mark that ends every Sid the
// Custom::KmsKeyPolicyStatements of one stack writes: " [crossaccountami
// <8 hex>]", the hex being the start of the SHA-256 of the stack's account,
// region and name. The construct knows these at synth and the handler reads
// them from the StackId of each event (SidSuffixOfStack), so a template
// deployed under another stack name is refused instead of taking over the
// statements of the stack it was copied from. KMS allows any printable
// ASCII in a key policy's Sids, spaces included (KMS Developer Guide, "Key
// policy format": https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html).
func SidSuffix(account, region, stackName string) string {
	sum := sha256.Sum256([]byte(account + "\x00" + region + "\x00" + stackName))
	return " [crossaccountami " + hex.EncodeToString(sum[:4]) + "]"
}

// SidSuffixBytes is the length of every SidSuffix.
const SidSuffixBytes = len(" [crossaccountami 01234567]")

var sidSuffixRe = regexp.MustCompile(`^ \[crossaccountami [0-9a-f]{8}\]$`)

// SidSuffixOfStack returns the SidSuffix of the stack a CloudFormation
// StackId names (arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>).
func SidSuffixOfStack(stackID string) (string, error) {
	a, err := awsid.ParseARN(stackID)
	name, _, _ := strings.Cut(strings.TrimPrefix(a.Resource, "stack/"), "/")
	if err != nil || a.Service != "cloudformation" || !strings.HasPrefix(a.Resource, "stack/") || name == "" || awsid.ValidateAccount(a.Account) != nil {
		return "", fmt.Errorf("StackId: expected arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>, got %q", stackID)
	}
	return SidSuffix(a.Account, a.Region, name), nil
}

// Mark returns the statements with suffix appended to each Sid. Everything
// else of each statement, its keys' order included, stays as it was.
func Mark(statements []Statement, suffix string) ([]Statement, error) {
	out := make([]Statement, len(statements))
	for i, s := range statements {
		body, err := withSid(s.JSON, s.Sid+suffix)
		if err != nil {
			return nil, fmt.Errorf("statement %q: %v", s.Sid, err)
		}
		out[i] = Statement{Sid: s.Sid + suffix, JSON: body}
	}
	return out, nil
}

// withSid rewrites a compact statement object with another Sid, its
// members in their order.
func withSid(stmt json.RawMessage, sid string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(stmt))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("expected a JSON object, got %.200s", stmt)
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if key == "Sid" {
			value, _ = json.Marshal(sid)
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// checkMarks says which Sid does not end with p.SidSuffix, or that the
// suffix is not a mark.
func (p Properties) checkMarks() []error {
	if p.SidSuffix == "" {
		return nil
	}
	if !sidSuffixRe.MatchString(p.SidSuffix) {
		return []error{fmt.Errorf("%s: expected \" [crossaccountami <8 hex digits>]\" (SidSuffix of the stack), got %q", PropSidSuffix, p.SidSuffix)}
	}
	var errs []error
	for _, s := range p.Statements {
		if !strings.HasSuffix(s.Sid, p.SidSuffix) {
			errs = append(errs, fmt.Errorf("%s: the Sid %q does not end with the SidSuffix %q: every statement of this resource carries its mark", PropStatements, s.Sid, p.SidSuffix))
		}
	}
	return errs
}

// ParseStatements reads a JSON array of policy statements. Each must be an
// object with a non-empty Sid (the identity by which the handler finds it
// again), unique in the list, and an Effect of Allow or Deny.
func ParseStatements(s string) ([]Statement, error) {
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(s), &items); err != nil {
		return nil, fmt.Errorf("expected a JSON array of policy statements, got %.200q: %v", s, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("expected at least one policy statement, got %q", s)
	}
	seen := map[string]bool{}
	out := make([]Statement, 0, len(items))
	for i, item := range items {
		var head struct {
			Sid    *string
			Effect *string
		}
		if err := json.Unmarshal(item, &head); err != nil {
			return nil, fmt.Errorf("statement %d: expected an object with a string Sid, got %.200s", i, item)
		}
		switch {
		case head.Sid == nil || *head.Sid == "":
			return nil, fmt.Errorf("statement %d: a Sid is required (it identifies the statement in the key policy), got %.200s", i, item)
		case seen[*head.Sid]:
			return nil, fmt.Errorf("statement %d: the Sid %q is used twice", i, *head.Sid)
		case head.Effect == nil || (*head.Effect != "Allow" && *head.Effect != "Deny"):
			return nil, fmt.Errorf("statement %q: Effect must be Allow or Deny, got %.200s", *head.Sid, item)
		}
		seen[*head.Sid] = true
		var compact bytes.Buffer
		if err := json.Compact(&compact, item); err != nil {
			return nil, fmt.Errorf("statement %q: %v", *head.Sid, err)
		}
		out = append(out, Statement{Sid: *head.Sid, JSON: compact.Bytes()})
	}
	return out, nil
}

// StatementsJSON renders statements as the JSON array the property carries.
func StatementsJSON(statements []Statement) string {
	parts := make([]string, len(statements))
	for i, s := range statements {
		parts[i] = string(s.JSON)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Sids lists the statements' Sids, in order.
func Sids(statements []Statement) []string {
	out := make([]string, len(statements))
	for i, s := range statements {
		out[i] = s.Sid
	}
	return out
}

// Validate checks the key ARN and the statements.
func (p Properties) Validate() error {
	var errs []error
	if _, err := awsid.ParseKeyARN(p.KeyArn); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropKeyArn, err))
	}
	if len(p.Statements) == 0 {
		errs = append(errs, fmt.Errorf("%s: at least one statement is required, got none", PropStatements))
	} else if _, err := ParseStatements(StatementsJSON(p.Statements)); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropStatements, err))
	}
	if n := len(StatementsJSON(p.Statements)); n > MaxPolicyBytes {
		errs = append(errs, fmt.Errorf("%s: the statements alone are %d bytes, over KMS's key policy limit of %d bytes", PropStatements, n, MaxPolicyBytes))
	}
	errs = append(errs, p.checkMarks()...)
	return errors.Join(errs...)
}

// CfnProperties renders p as custom resource properties.
func (p Properties) CfnProperties() map[string]interface{} {
	out := map[string]interface{}{
		PropKeyArn:     p.KeyArn,
		PropStatements: StatementsJSON(p.Statements),
	}
	if p.SidSuffix != "" {
		out[PropSidSuffix] = p.SidSuffix
	}
	return out
}

// Decode reads the properties of a CloudFormation event and validates them.
// The ServiceToken and unknown keys are ignored.
func Decode(raw map[string]interface{}) (Properties, error) {
	var errs []error
	str := func(key string) string {
		v, ok := raw[key]
		if !ok || v == nil {
			errs = append(errs, fmt.Errorf("%s: required, got nothing", key))
			return ""
		}
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			errs = append(errs, fmt.Errorf("%s: expected a string, got %.200s", key, b))
		}
		return s
	}
	p := Properties{KeyArn: str(PropKeyArn)}
	stmts := str(PropStatements)
	if v, ok := raw[PropSidSuffix]; ok && v != nil {
		if p.SidSuffix, ok = v.(string); !ok {
			b, _ := json.Marshal(v)
			errs = append(errs, fmt.Errorf("%s: expected a string, got %.200s", PropSidSuffix, b))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Properties{}, err
	}
	if _, err := awsid.ParseKeyARN(p.KeyArn); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropKeyArn, err))
	}
	parsed, err := ParseStatements(stmts)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", PropStatements, err))
	}
	p.Statements = parsed
	errs = append(errs, p.checkMarks()...)
	if err := errors.Join(errs...); err != nil {
		return Properties{}, err
	}
	return p, nil
}

// PhysicalID names one resource: the key and a hash of the stack and
// logical id, "<keyArn>/<16 hex>". It stays the same for every update on one
// key; another key gives another id (a replacement: CloudFormation then
// deletes the old resource, which removes its statements from the old key).
type PhysicalID struct {
	KeyArn string
	Hash   string
}

// NewPhysicalID derives the physical id of a resource from its key, stack
// and logical id.
func NewPhysicalID(keyArn, stackID, logicalID string) PhysicalID {
	return PhysicalID{KeyArn: keyArn, Hash: cfnprops.ResourceHash(stackID, logicalID)}
}

func (id PhysicalID) String() string { return id.KeyArn + "/" + id.Hash }

// ParsePhysicalID reads an id written by String. ok is false for anything
// else, such as the request id CloudFormation keeps after a failed Create.
func ParsePhysicalID(s string) (id PhysicalID, ok bool) {
	i := strings.LastIndex(s, "/")
	if i < 0 {
		return PhysicalID{}, false
	}
	key, hash := s[:i], s[i+1:]
	if _, err := awsid.ParseKeyARN(key); err != nil || !cfnprops.IsResourceHash(hash) {
		return PhysicalID{}, false
	}
	return PhysicalID{KeyArn: key, Hash: hash}, true
}

// RollbackID is the physical id a Create of crossaccountami 0.2 answered
// when it failed after its first PutKeyPolicy: the resource's PhysicalID,
// and the statements the rollback Delete (which gets the same properties)
// must leave in the policy. A resource whose statements carry a SidSuffix
// never answers one (a marked statement found before its Create is its own,
// so its rollback removes them all); the handler keeps reading it so that
// the rollback Delete of a 0.2 Create still keeps what it adopted.
// Those are the statements the Create adopted: already in the policy, with
// the same Sid and the same content, when the Create read it just before its
// first write. They are named by their index in the properties' Statements,
// as a bitmap, so that the id stays short however many statements there are.
//
// With nothing to keep it is the PhysicalID itself, "<keyArn>/<16 hex>",
// whose Delete removes every statement of the properties. Otherwise it is
// "<keyArn>/<16 hex>/keep-<hex>": <hex> is the bit string of the
// statements in order (1: keep), statement 0 first and as the most
// significant bit of the first digit, padded with zero bits to a whole digit,
// without trailing zero digits. Keeping statements 0 and 2 is "keep-a"
// (1010), keeping statement 1 is "keep-4" (0100), keeping statement 5 is
// "keep-04" (0000 0100).
//
// A Create writes a policy only when all of its statements fit in
// MaxPolicyBytes, and a statement (an object with a Sid and an Effect) takes
// at least 28 bytes: at most 1,129 statements, a bitmap of at most 283
// digits, an id far below CloudFormation's 1,024 bytes for any key ARN.
type RollbackID struct {
	PhysicalID
	// Keep lists indexes into the properties' Statements (negative ones
	// are ignored); ParseRollbackID returns them ascending.
	Keep []int
}

const keepPrefix = "keep-"

func (id RollbackID) String() string {
	last := -1
	for _, i := range id.Keep {
		last = max(last, i)
	}
	if last < 0 {
		return id.PhysicalID.String()
	}
	bits := make([]byte, last/4+1)
	for _, i := range id.Keep {
		if i >= 0 {
			bits[i/4] |= 8 >> (i % 4)
		}
	}
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	b.WriteString(id.PhysicalID.String())
	b.WriteString("/" + keepPrefix)
	for _, d := range bits {
		b.WriteByte(hexDigits[d])
	}
	return b.String()
}

// ParseRollbackID reads an id written by RollbackID.String, and so every
// id ParsePhysicalID reads (with nothing to keep). ok is false for anything
// else, such as the request id a Create answers when it fails before
// writing.
func ParseRollbackID(s string) (id RollbackID, ok bool) {
	if base, ok := ParsePhysicalID(s); ok {
		return RollbackID{PhysicalID: base}, true
	}
	i := strings.LastIndex(s, "/")
	if i < 0 || !strings.HasPrefix(s[i+1:], keepPrefix) {
		return RollbackID{}, false
	}
	base, ok := ParsePhysicalID(s[:i])
	bitmap := s[i+1+len(keepPrefix):]
	if !ok || bitmap == "" || strings.HasSuffix(bitmap, "0") {
		return RollbackID{}, false
	}
	var keep []int
	for j, c := range bitmap {
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		default:
			return RollbackID{}, false
		}
		for k := 0; k < 4; k++ {
			if d&(8>>k) != 0 {
				keep = append(keep, 4*j+k)
			}
		}
	}
	return RollbackID{PhysicalID: base, Keep: keep}, true
}

// Split divides the statements' Sids into those the Delete of this id
// removes and those it keeps. Indexes of Keep past the end of statements
// match nothing.
func (id RollbackID) Split(statements []Statement) (remove, keep []string) {
	for i, s := range statements {
		if slices.Contains(id.Keep, i) {
			keep = append(keep, s.Sid)
		} else {
			remove = append(remove, s.Sid)
		}
	}
	return remove, keep
}

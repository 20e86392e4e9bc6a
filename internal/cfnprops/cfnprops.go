// Package cfnprops reads a custom resource's properties out of a
// CloudFormation event. CloudFormation passes every scalar as a string and
// lists and maps as JSON arrays and objects, whatever the template's types
// were. A Reader collects one error per bad property, naming the property
// and the value received, so that one FAILED answer lists them all.
package cfnprops

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Reader reads properties from raw and collects what is wrong with them.
type Reader struct {
	raw  map[string]interface{}
	errs []error
}

// NewReader reads the properties raw (a CloudFormation event's
// ResourceProperties or OldResourceProperties).
func NewReader(raw map[string]interface{}) *Reader { return &Reader{raw: raw} }

// Failf records a problem that the caller found itself; it should start
// with the property's name and show the value received.
func (r *Reader) Failf(format string, args ...interface{}) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

// Err is every problem recorded so far, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// String is the string property key, or "" when it is absent or null.
func (r *Reader) String(key string) string {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.Failf("%s: expected a string, got %s", key, Show(v))
	}
	return s
}

// Bool is the boolean property key (CloudFormation sends "true" or
// "false"), or false when it is absent, null or "".
func (r *Reader) Bool(key string) bool {
	v, ok := r.raw[key]
	if !ok || v == nil || v == "" {
		return false
	}
	s, _ := v.(string)
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.Failf("%s: expected true or false, got %s", key, Show(v))
	}
	return b
}

// List is the list-of-strings property key, or nil when it is absent or
// null. An item that is not a string is recorded and left out.
func (r *Reader) List(key string) []string {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return nil
	}
	items, ok := v.([]interface{})
	if !ok {
		r.Failf("%s: expected a list of strings, got %s", key, Show(v))
		return nil
	}
	var out []string
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			r.Failf("%s: expected a list of strings, got the item %s", key, Show(item))
			continue
		}
		out = append(out, s)
	}
	return out
}

// Map is the map-of-strings property key, or nil when it is absent or
// null. A value that is not a string is recorded and left out.
func (r *Reader) Map(key string) map[string]string {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]interface{})
	if !ok {
		r.Failf("%s: expected a map of strings, got %s", key, Show(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, item := range m {
		s, ok := item.(string)
		if !ok {
			r.Failf("%s: value of %q must be a string, got %s", key, k, Show(item))
			continue
		}
		out[k] = s
	}
	return out
}

// Show renders a received value for an error message as JSON, the form the
// template's author wrote it in (a string quoted, null for nothing).
func Show(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// ResourceHash is 16 hex digits that stand for one resource of one stack
// instance (its stack id, which ends in a UUID, and its logical id): the
// stable part of a physical id that must differ between stacks.
func ResourceHash(stackID, logicalID string) string {
	sum := sha256.Sum256([]byte(stackID + "\x00" + logicalID))
	return hex.EncodeToString(sum[:])[:16]
}

var resourceHashRe = regexp.MustCompile(`^[0-9a-f]{16}$`)

// IsResourceHash reports whether s has the shape ResourceHash gives.
func IsResourceHash(s string) bool { return resourceHashRe.MatchString(s) }

package keypolicylifecycle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

// document is a key policy read so that everything this library does not
// own is written back byte for byte: the top-level fields in their order,
// and every statement it does not own as the exact bytes KMS returned.
type document struct {
	fields     []field // top-level fields, in order
	statements []json.RawMessage
	hasStmt    bool // a Statement field exists (its position is in fields)
}

type field struct {
	key   string
	value json.RawMessage // nil for the Statement field, rendered from statements
}

const statementKey = "Statement"

func parseDocument(policy string) (*document, error) {
	dec := json.NewDecoder(strings.NewReader(policy))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("the key policy is not a JSON object: %.200q", policy)
	}
	d := &document{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("reading the key policy: %v", err)
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("reading the key policy's %q: %v", key, err)
		}
		if key != statementKey {
			d.fields = append(d.fields, field{key: key, value: value})
			continue
		}
		d.fields = append(d.fields, field{key: key})
		d.hasStmt = true
		trimmed := bytes.TrimSpace(value)
		if len(trimmed) > 0 && trimmed[0] == '{' {
			// IAM's grammar allows a single statement object.
			d.statements = []json.RawMessage{trimmed}
			continue
		}
		if err := json.Unmarshal(value, &d.statements); err != nil {
			return nil, fmt.Errorf("the key policy's Statement is neither a list nor an object: %v", err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("reading the key policy: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("the key policy has data after its closing brace")
	}
	return d, nil
}

// clone copies the document, so that a merge of the original leaves it as read.
func (d *document) clone() *document {
	c := *d
	c.fields = append([]field(nil), d.fields...)
	c.statements = append([]json.RawMessage(nil), d.statements...)
	return &c
}

// render writes the document: top-level fields in their original order,
// compact between them, each value as it was read.
func (d *document) render() string {
	var b strings.Builder
	b.WriteByte('{')
	fields := d.fields
	if !d.hasStmt {
		fields = append(fields, field{key: statementKey})
	}
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		b.Write(k)
		b.WriteByte(':')
		if f.key == statementKey && f.value == nil {
			b.WriteByte('[')
			for j, s := range d.statements {
				if j > 0 {
					b.WriteByte(',')
				}
				b.Write(s)
			}
			b.WriteByte(']')
			continue
		}
		b.Write(f.value)
	}
	b.WriteByte('}')
	return b.String()
}

// sidOf returns a statement's Sid, or "" when it has none (or is not an
// object): such a statement is never this library's.
func sidOf(raw json.RawMessage) string {
	var head struct{ Sid string }
	_ = json.Unmarshal(raw, &head)
	return head.Sid
}

// holds lists the indexes of the statements the document already has with
// the same Sid and the same content (the first statement with a Sid is the
// one merge keeps).
func (d *document) holds(stmts []keypolicyspec.Statement) []int {
	first := map[string]json.RawMessage{}
	for _, raw := range d.statements {
		if sid := sidOf(raw); sid != "" {
			if _, seen := first[sid]; !seen {
				first[sid] = raw
			}
		}
	}
	var out []int
	for i, s := range stmts {
		if raw, ok := first[s.Sid]; ok && sameStatement(raw, s.JSON) {
			out = append(out, i)
		}
	}
	return out
}

// sameStatement compares two statements as KMS means them: as JSON values
// (KMS may return a statement with other whitespace or key order than it was
// written with), each list of strings as the set it is in a policy, and an
// account principal in either of its forms (canonical). KMS may return a
// statement's principals and actions in another order than written (seen
// by terraform-provider-aws users: hashicorp/terraform-provider-aws#39788,
// #30232), and IAM says of a bare account id principal: "When you save a
// resource-based policy that includes the shortened account ID, the service
// might convert it to the principal ARN. This does not change the
// functionality of the policy."
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts).
// Without this, the read-back check of a statement that lists accounts
// (KeyPolicyStyle_ACCOUNTS) could never succeed.
func sameStatement(a, b json.RawMessage) bool {
	var x, y interface{}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(canonical(x, ""), canonical(y, ""))
}

// accountRootARN is an account principal in its ARN form.
var accountRootARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):root$`)

// canonical is a statement's JSON value (v, under key) with every list of
// strings sorted, without repeats, and a list of one as its string (the
// same set to IAM), and each account principal (under "AWS") as its bare id.
func canonical(v interface{}, key string) interface{} {
	str := func(s string) string {
		if m := accountRootARN.FindStringSubmatch(s); key == "AWS" && m != nil {
			return m[1]
		}
		return s
	}
	switch v := v.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(v))
		for k, x := range v {
			out[k] = canonical(x, k)
		}
		return out
	case []interface{}:
		set := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok { // not a list of strings: compared item by item
				out := make([]interface{}, len(v))
				for i, x := range v {
					out[i] = canonical(x, key)
				}
				return out
			}
			set = append(set, str(s))
		}
		slices.Sort(set)
		set = slices.Compact(set)
		if len(set) == 1 {
			return set[0]
		}
		out := make([]interface{}, len(set))
		for i, s := range set {
			out[i] = s
		}
		return out
	case string:
		return str(v)
	}
	return v
}

// change is what one event does to the key policy.
type change struct {
	// upsert: statements to have in the policy, replaced in place (same
	// position) when their Sid is there, appended otherwise.
	upsert []keypolicyspec.Statement
	// remove: Sids to take out of the policy.
	remove []string
	// owned: Sids this resource wrote before (the old properties'), which it
	// may overwrite. Any other Sid of upsert found with other content is a
	// conflict: someone else owns that statement.
	owned map[string]bool
}

// merge applies c to the document and reports a Sid conflict.
func (d *document) merge(c change) error {
	want := map[string]json.RawMessage{}
	for _, s := range c.upsert {
		want[s.Sid] = s.JSON
	}
	drop := map[string]bool{}
	for _, sid := range c.remove {
		if _, kept := want[sid]; !kept {
			drop[sid] = true
		}
	}
	placed := map[string]bool{}
	out := make([]json.RawMessage, 0, len(d.statements)+len(c.upsert))
	for _, raw := range d.statements {
		sid := sidOf(raw)
		if sid == "" {
			out = append(out, raw)
			continue
		}
		if drop[sid] {
			continue
		}
		mine, ok := want[sid]
		if !ok {
			out = append(out, raw)
			continue
		}
		if placed[sid] {
			continue // a second copy of one of our Sids: keep one
		}
		if !sameStatement(raw, mine) && !c.owned[sid] {
			return &conflictError{sid: sid, existing: string(raw), wanted: string(mine)}
		}
		placed[sid] = true
		if sameStatement(raw, mine) {
			out = append(out, raw) // unchanged: keep KMS's bytes
		} else {
			out = append(out, mine)
		}
	}
	for _, s := range c.upsert {
		if !placed[s.Sid] {
			out = append(out, s.JSON)
		}
	}
	d.statements = out
	return nil
}

// check says what of c is missing in the document, or nil when the policy
// holds every upserted statement (same content) and no removed Sid.
func (d *document) check(c change) error {
	have := map[string]json.RawMessage{}
	for _, raw := range d.statements {
		if sid := sidOf(raw); sid != "" {
			have[sid] = raw
		}
	}
	for _, s := range c.upsert {
		got, ok := have[s.Sid]
		if !ok {
			return fmt.Errorf("the statement %q is missing", s.Sid)
		}
		if !sameStatement(got, s.JSON) {
			return fmt.Errorf("the statement %q has other content: %.300s", s.Sid, got)
		}
	}
	want := map[string]bool{}
	for _, s := range c.upsert {
		want[s.Sid] = true
	}
	for _, sid := range c.remove {
		if _, ok := have[sid]; ok && !want[sid] {
			return fmt.Errorf("the removed statement %q is still there", sid)
		}
	}
	return nil
}

type conflictError struct{ sid, existing, wanted string }

func (e *conflictError) Error() string {
	return fmt.Sprintf("the key policy already has a statement with Sid %q and other content, which this resource did not write (another stack or a person owns it): %.600s; this resource would write %.600s. Remove or rename that statement in the key policy, or give this resource other statements, then deploy again", e.sid, e.existing, e.wanted)
}

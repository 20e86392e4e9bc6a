package check

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// This file evaluates a key policy for one request, reasonably rather than
// completely: the principal, the action and the condition operators key
// policies use (String*, Arn*, Bool, Null, with ForAnyValue/ForAllValues
// and IfExists). What it cannot decide (an organization condition, an
// unknown operator) makes the answer "maybe", with a note saying why.

// policyDoc is a key policy as GetKeyPolicy returns it.
type policyDoc struct {
	Statement statementList `json:"Statement"`
}

type statement struct {
	Sid          string                           `json:"Sid"`
	Effect       string                           `json:"Effect"`
	Principal    principal                        `json:"Principal"`
	NotPrincipal json.RawMessage                  `json:"NotPrincipal"`
	Action       stringList                       `json:"Action"`
	NotAction    stringList                       `json:"NotAction"`
	Condition    map[string]map[string]stringList `json:"Condition"`
	index        int
}

// label names a statement in a message: its Sid, or its position.
func (s statement) label() string {
	if s.Sid != "" {
		return fmt.Sprintf("%q", s.Sid)
	}
	return fmt.Sprintf("#%d (no Sid)", s.index+1)
}

type statementList []statement

func (l *statementList) UnmarshalJSON(b []byte) error {
	var many []statement
	if err := json.Unmarshal(b, &many); err != nil {
		var one statement
		if err2 := json.Unmarshal(b, &one); err2 != nil {
			return err
		}
		many = []statement{one}
	}
	for i := range many {
		many[i].index = i
	}
	*l = many
	return nil
}

// stringList reads a policy value that is a string, a list, a bool or a number.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var raw interface{}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	one := func(v interface{}) string {
		if s, ok := v.(string); ok {
			return s
		}
		return fmt.Sprint(v)
	}
	switch v := raw.(type) {
	case nil:
		*l = nil
	case []interface{}:
		out := make([]string, 0, len(v))
		for _, item := range v {
			out = append(out, one(item))
		}
		*l = out
	default:
		*l = []string{one(v)}
	}
	return nil
}

// principal is the Principal element: "*", or {"AWS": ...}. Service and
// federated principals never match an IAM role and are kept out.
type principal struct {
	Any bool
	AWS []string
}

func (p *principal) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		p.Any = s == "*"
		return nil
	}
	var m map[string]stringList
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for _, v := range m["AWS"] {
		if v == "*" {
			p.Any = true
			continue
		}
		p.AWS = append(p.AWS, v)
	}
	return nil
}

func parsePolicy(s string) (policyDoc, error) {
	var d policyDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return policyDoc{}, fmt.Errorf("the key policy is not valid JSON: %v", err)
	}
	return d, nil
}

type tri int

const (
	no tri = iota
	maybe
	yes
)

// request is what the policy is asked about.
type request struct {
	action    string // kms:Decrypt
	principal string // the caller's ARN; "" for "some principal of account"
	account   string // the caller's account
	partition string
	// exactPrincipal: the principal cannot receive permissions from IAM
	// policies in its account (a service-linked role), so a statement that
	// allows its whole account does not by itself let it use the key.
	exactPrincipal bool
	// context holds the condition keys of the request (lower-case names).
	// A key in absent is known not to be in the request; any other key
	// missing from context is unknown.
	context map[string][]string
	absent  []string
}

func (r request) rootARN() string { return "arn:" + r.partition + ":iam::" + r.account + ":root" }

// outcome of one statement, or of a whole policy, for a request.
type outcome struct {
	v     tri
	notes []string
	// who names the principals the statement is limited to when the
	// request's principal is unknown ("some principal of account").
	who []string
	// by lists the statements that decided.
	by []string
	// broad: the statement matched the principal's whole account (or
	// everyone), not the principal itself.
	broad bool
}

func (o *outcome) note(format string, args ...interface{}) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(o.notes, n) {
		o.notes = append(o.notes, n)
	}
}

// matches reports whether a statement applies to a request, not looking at
// its Effect.
func (s statement) matches(r request) outcome {
	var o outcome
	if len(s.NotPrincipal) > 0 {
		o.note("statement %s uses NotPrincipal, which this tool does not evaluate", s.label())
		return o
	}
	if !s.matchesAction(r.action) {
		return o
	}
	// The principal element.
	scope := no // yes: the exact principal; maybe: its account, or anyone
	wholeAccount := false
	if s.Principal.Any {
		scope, wholeAccount = yes, true
	}
	for _, p := range s.Principal.AWS {
		switch {
		case r.principal != "" && p == r.principal:
			scope, wholeAccount = yes, false
		case p == r.account || p == r.rootARN():
			if scope == no {
				scope, wholeAccount = yes, true
			}
		case r.principal == "" && arnAccount(p) == r.account:
			scope = yes
			o.who = appendNew(o.who, p)
		case strings.HasPrefix(p, "AROA") || strings.HasPrefix(p, "AIDA"):
			o.note("statement %s names %s, the unique id of a deleted IAM principal: KMS shows a principal that way after it was deleted; re-add the role's ARN", s.label(), p)
		}
	}
	if scope == no {
		return o
	}
	o.v = yes
	// The conditions: all must hold.
	pinned := false
	for op, kv := range s.Condition {
		for key, vals := range kv {
			c := evalCondition(op, key, vals, r)
			if strings.EqualFold(key, "aws:PrincipalArn") && c.v != no {
				pinned = true
			}
			o.notes = append(o.notes, c.notes...)
			for _, w := range c.who {
				o.who = appendNew(o.who, w)
			}
			o.v = min(o.v, c.v)
		}
	}
	if o.v == no {
		o.notes, o.who = nil, nil
		return o
	}
	o.broad = wholeAccount && !pinned && len(o.who) == 0
	return o
}

func (s statement) matchesAction(action string) bool {
	if len(s.NotAction) > 0 {
		for _, a := range s.NotAction {
			if glob(strings.ToLower(a), strings.ToLower(action)) {
				return false
			}
		}
		return true
	}
	for _, a := range s.Action {
		if glob(strings.ToLower(a), strings.ToLower(action)) {
			return true
		}
	}
	return false
}

// evaluate asks the whole policy: an explicit Deny wins, then the best Allow.
func (d policyDoc) evaluate(r request) outcome {
	best := outcome{}
	denyMaybe := false
	for _, s := range d.Statement {
		m := s.matches(r)
		if strings.EqualFold(s.Effect, "Deny") {
			switch m.v {
			case yes:
				return outcome{v: no, by: []string{s.label()}, notes: []string{fmt.Sprintf("statement %s denies %s", s.label(), r.action)}}
			case maybe:
				denyMaybe = true
				best.note("the Deny statement %s may apply to %s", s.label(), r.action)
			}
			continue
		}
		if !strings.EqualFold(s.Effect, "Allow") {
			continue
		}
		if m.v == no {
			best.notes = append(best.notes, m.notes...)
			continue
		}
		if m.broad && r.exactPrincipal {
			m.v = min(m.v, maybe)
			m.note("statement %s allows account %s as a whole, so IAM policies in that account decide; a service-linked role's policy is AWS-managed and cannot be extended: name the role (or pin it with aws:PrincipalArn) as the AWS article does", s.label(), r.account)
		}
		switch {
		case m.v > best.v:
			notes := best.notes
			best = m
			best.by = []string{s.label()}
			best.notes = append(notes, m.notes...)
		case m.v == best.v:
			best.by = append(best.by, s.label())
			for _, w := range m.who {
				best.who = appendNew(best.who, w)
			}
			if m.v == maybe {
				best.notes = append(best.notes, m.notes...)
			}
		}
	}
	if best.v == yes {
		best.notes = slices.DeleteFunc(best.notes, func(n string) bool {
			return !strings.Contains(n, "deleted IAM principal") && !strings.Contains(n, "Deny statement")
		})
		if denyMaybe {
			best.v = maybe
		}
	}
	return best
}

// condition evaluates one condition key of a statement.
type condition struct {
	v     tri
	notes []string
	who   []string
}

var orgKeys = map[string]bool{"aws:principalorgid": true, "aws:principalorgpaths": true}

func evalCondition(op, key string, vals []string, r request) condition {
	setOp, base := "", op
	if i := strings.Index(op, ":"); i >= 0 {
		setOp, base = op[:i], op[i+1:]
	}
	base, ifExists := strings.CutSuffix(base, "IfExists")
	lkey := strings.ToLower(key)
	show := fmt.Sprintf("%s %s %s", op, key, strings.Join(vals, ","))

	// The library's grant creator names itself as the grant's retiring
	// principal. While the creator is unknown, a condition on the retiring
	// principal holds for a creator of the account ("itself", or a role of
	// the account the statement names).
	if lkey == "kms:retiringprincipal" && r.principal == "" && !negated(base) {
		for _, v := range vals {
			if v == "${aws:PrincipalArn}" || glob(arnAccountPattern(v), r.account) {
				return condition{v: yes}
			}
		}
		return condition{v: no}
	}

	// Policy variables this tool knows.
	resolved := make([]string, 0, len(vals))
	for _, v := range vals {
		v = strings.ReplaceAll(v, "${aws:PrincipalAccount}", r.account)
		if r.principal != "" {
			v = strings.ReplaceAll(v, "${aws:PrincipalArn}", r.principal)
		}
		if strings.Contains(v, "${") {
			return condition{v: maybe, notes: []string{"condition " + show + ": policy variable not evaluated"}}
		}
		resolved = append(resolved, v)
	}

	ctx, present := r.context[lkey]
	if !present {
		switch {
		case lkey == "aws:principalarn" && r.principal == "":
			var who []string
			for _, v := range resolved {
				if glob(arnAccountPattern(v), r.account) {
					who = append(who, v)
				}
			}
			if len(who) == 0 || negated(base) {
				return condition{v: no}
			}
			return condition{v: yes, who: who}
		case slices.Contains(r.absent, lkey) || ifExists && !orgKeys[lkey]:
			if base == "Null" {
				return condition{v: boolTri(slices.Contains(resolved, "true"))}
			}
			if ifExists || setOp == "ForAllValues" || negated(base) {
				return condition{v: yes}
			}
			return condition{v: no}
		case orgKeys[lkey]:
			return condition{v: maybe, notes: []string{fmt.Sprintf("condition %s: holds only if account %s belongs to that organization (or organizational unit); this tool cannot see that", show, r.account)}}
		default:
			return condition{v: maybe, notes: []string{"condition " + show + ": not evaluated by this tool"}}
		}
	}
	if base == "Null" {
		return condition{v: boolTri(slices.Contains(resolved, "false"))}
	}
	match, ok := matcher(base)
	if !ok {
		return condition{v: maybe, notes: []string{"condition " + show + ": operator not evaluated by this tool"}}
	}
	one := func(cv string) bool {
		hit := slices.ContainsFunc(resolved, func(pv string) bool { return match(pv, cv) })
		if negated(base) {
			return !hit
		}
		return hit
	}
	var ok2 bool
	if setOp == "ForAllValues" {
		ok2 = !slices.ContainsFunc(ctx, func(cv string) bool { return !one(cv) })
	} else {
		ok2 = slices.ContainsFunc(ctx, one)
	}
	return condition{v: boolTri(ok2)}
}

func negated(base string) bool { return strings.Contains(base, "Not") }

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

// matcher returns the comparison of a condition operator (negated
// operators return the positive comparison; the caller negates).
func matcher(base string) (func(policyValue, value string) bool, bool) {
	switch base {
	case "StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals":
		return func(p, v string) bool { return p == v }, true
	case "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "Bool":
		return strings.EqualFold, true
	case "StringLike", "StringNotLike", "ArnLike", "ArnNotLike":
		return glob, true
	}
	return nil, false
}

// glob matches s against a policy pattern with * (any run) and ? (one character).
func glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// arnAccount is the account field of an ARN, "" for anything else.
func arnAccount(s string) string {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ""
	}
	return parts[4]
}

// arnAccountPattern is the account field of an ARN pattern ("*" when the
// pattern does not reach it).
func arnAccountPattern(s string) string {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) < 5 {
		return "*"
	}
	return parts[4]
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

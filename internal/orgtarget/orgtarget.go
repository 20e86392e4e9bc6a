// Package orgtarget is the one definition of an organization target: the
// accounts of an AWS Organization, or of some of its organizational units
// and every OU below them. A service-managed StackSet deploys to exactly
// these accounts (its OrganizationalUnitIds), and the source key policy
// lets exactly these accounts in (aws:PrincipalOrgID, or
// aws:PrincipalOrgPaths patterns), so the two cannot disagree.
//
// It is plain Go: constructs/encryptedami and constructs/organization read
// their props into a Target.
package orgtarget

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Target is an organization and, optionally, some of its OUs (or its root).
type Target struct {
	// OrganizationID is o-xxxxxxxxxx.
	OrganizationID string
	// UnitIDs are OU ids (ou-xxxx-xxxxxxxx) or the root id (r-xxxx); each
	// covers itself and every OU below it, at any depth. Empty: every
	// account of the organization.
	UnitIDs []string
}

// The formats of the Organizations API reference (OrganizationalUnit.Id,
// Root.Id, Organization.Id). An OU id's first segment is the id of the root
// that contains the OU.
var (
	orgIDRe  = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	ouIDRe   = regexp.MustCompile(`^ou-([0-9a-z]{4,32})-[a-z0-9]{8,32}$`)
	rootIDRe = regexp.MustCompile(`^r-([0-9a-z]{4,32})$`)
)

// Validate checks the ids, naming the field (as the constructs' props name
// it) and the value received.
func (t Target) Validate() error {
	if !orgIDRe.MatchString(t.OrganizationID) {
		return fmt.Errorf("OrganizationId: expected o- followed by 10 to 32 lowercase letters or digits, got %q", t.OrganizationID)
	}
	// An organization has one root, which contains every account
	// (Organizations API reference, Root): OUs under two roots, or an OU
	// under another root than the one given, are not all of this
	// organization.
	var root, rootOf string
	for _, id := range t.UnitIDs {
		var r string
		if m := ouIDRe.FindStringSubmatch(id); m != nil {
			r = m[1]
		} else if m := rootIDRe.FindStringSubmatch(id); m != nil {
			r = m[1]
		} else {
			return fmt.Errorf("OrganizationalUnitIds: expected OU ids (ou-xxxx-xxxxxxxx) or the root id (r-xxxx) of %s, got %q", t.OrganizationID, id)
		}
		if root != "" && r != root {
			return fmt.Errorf("OrganizationalUnitIds: %q and %q are under two roots (r-%s, r-%s), but an organization has one root; expected OUs of %s only", rootOf, id, root, r, t.OrganizationID)
		}
		root, rootOf = r, id
	}
	return nil
}

// Units is UnitIDs without repeats, in their order.
func (t Target) Units() []string {
	var out []string
	for _, id := range t.UnitIDs {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// Equal reports whether t and u are the same accounts: the same
// organization and the same units, in any order.
func (t Target) Equal(u Target) bool {
	return t.OrganizationID == u.OrganizationID &&
		slices.Equal(slices.Sorted(slices.Values(t.Units())), slices.Sorted(slices.Values(u.Units())))
}

func (t Target) String() string {
	if len(t.UnitIDs) == 0 {
		return t.OrganizationID
	}
	return t.OrganizationID + " (" + strings.Join(t.Units(), ", ") + ")"
}

// PrincipalOrgPaths are the ForAnyValue:StringLike aws:PrincipalOrgPaths
// patterns that match exactly the accounts of the units and of every OU
// below them; nil when t is the whole organization (aws:PrincipalOrgID says
// it better).
//
// An account's aws:PrincipalOrgPaths value is its path from the
// organization: o-ORG/r-ROOT/ou-A/ou-B/ for an account in ou-B, a child of
// ou-A (IAM User Guide, "aws:PrincipalOrgPaths"). StringLike's * matches any
// run of characters, slashes included, and the match is of the whole value.
// So o-ORG/*/ou-X/* matches every path through ou-X at any depth: the
// slashes on both sides of ou-X pin one whole path segment (no OU whose id
// merely starts or ends like ou-X's), and o-ORG/ pins the organization.
// The root covers every path: o-ORG/r-ROOT/*. The path as given, without a
// trailing *, would match only accounts directly in that OU, while a
// StackSet that targets an OU reaches its child OUs too.
func (t Target) PrincipalOrgPaths() []string {
	var out []string
	for _, id := range t.Units() {
		if strings.HasPrefix(id, "r-") {
			out = append(out, t.OrganizationID+"/"+id+"/*")
		} else {
			out = append(out, t.OrganizationID+"/*/"+id+"/*")
		}
	}
	return out
}

// Covers reports whether an account whose aws:PrincipalOrgPaths value is
// path is in t, as the key policy's condition evaluates it.
func (t Target) Covers(path string) bool {
	patterns := t.PrincipalOrgPaths()
	if patterns == nil {
		return strings.HasPrefix(path, t.OrganizationID+"/")
	}
	return slices.ContainsFunc(patterns, func(p string) bool { return StringLike(p, path) })
}

// StringLike is IAM's StringLike condition operator on one value: case
// sensitive, of the whole value, where * matches any run of characters
// (none included, slashes included) and ? exactly one character (IAM User
// Guide, "Condition operators").
func StringLike(pattern, value string) bool {
	var re strings.Builder
	re.WriteString(`(?s)^`)
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(`.*`)
		case '?':
			re.WriteString(`.`)
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString(`$`)
	return regexp.MustCompile(re.String()).MatchString(value)
}

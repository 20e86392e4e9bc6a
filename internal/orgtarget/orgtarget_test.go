package orgtarget

import (
	"slices"
	"strings"
	"testing"
)

// TestStringLike calibrates the matcher on the cases the IAM User Guide
// states: * spans any run of characters (slashes and none included), ?
// exactly one, the whole value, case-sensitive.
func TestStringLike(t *testing.T) {
	for _, tc := range []struct {
		pattern, value string
		want           bool
	}{
		{"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*", "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/", true},
		{"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*", "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-22222222/", true},
		{"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/", "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-22222222/", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a.c", "abc", false}, // regexp metacharacters are literal
		{"ABC", "abc", false},
		{"b*", "abc", false}, // anchored at the start
	} {
		if got := StringLike(tc.pattern, tc.value); got != tc.want {
			t.Errorf("StringLike(%q, %q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}

// TestPrincipalOrgPathsCoverTheOUsAndBelow: the key policy's patterns let
// in the accounts a StackSet targeting the same OUs reaches (the OU and
// every OU below it) and no other, on real-shaped paths.
func TestPrincipalOrgPathsCoverTheOUsAndBelow(t *testing.T) {
	target := Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-11111111", "ou-ab12-22222222", "ou-ab12-11111111"}}
	if got, want := target.PrincipalOrgPaths(), []string{"o-abcdefghij/*/ou-ab12-11111111/*", "o-abcdefghij/*/ou-ab12-22222222/*"}; !slices.Equal(got, want) {
		t.Fatalf("patterns %q, want %q", got, want)
	}
	for path, want := range map[string]bool{
		"o-abcdefghij/r-ab12/ou-ab12-11111111/":                                   true,  // directly in the OU
		"o-abcdefghij/r-ab12/ou-ab12-11111111/ou-ab12-33333333/":                  true,  // a child OU
		"o-abcdefghij/r-ab12/ou-ab12-11111111/ou-ab12-33333333/ou-ab12-44444444/": true,  // a grandchild OU
		"o-abcdefghij/r-ab12/ou-ab12-55555555/ou-ab12-22222222/":                  true,  // the OU, moved under another
		"o-abcdefghij/r-ab12/":                                                    false, // the root itself
		"o-abcdefghij/r-ab12/ou-ab12-55555555/":                                   false, // a sibling OU
		"o-abcdefghij/r-ab12/ou-ab12-55555555/ou-ab12-66666666/":                  false, // below a sibling
		"o-abcdefghij/r-ab12/ou-ab12-111111112/":                                  false, // an id that starts like ou-ab12-11111111
		"o-abcdefghij/r-ab12/ou-ab12-911111111/":                                  false, // an id that ends like it
		"o-abcdefghij/r-ab12/xou-ab12-11111111/":                                  false,
		"o-bbcdefghij/r-ab12/ou-ab12-11111111/":                                   false, // another organization
		"o-abcdefghijk/r-ab12/ou-ab12-11111111/":                                  false, // an org id that starts like this one
		"xo-abcdefghij/r-ab12/ou-ab12-11111111/":                                  false,
	} {
		if got := target.Covers(path); got != want {
			t.Errorf("an account with aws:PrincipalOrgPaths %s is covered: %v, want %v", path, got, want)
		}
	}

	// The root covers every account of its organization, and no other.
	root := Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"r-ab12"}}
	if got := root.PrincipalOrgPaths(); !slices.Equal(got, []string{"o-abcdefghij/r-ab12/*"}) {
		t.Errorf("root patterns %q", got)
	}
	for path, want := range map[string]bool{
		"o-abcdefghij/r-ab12/":                                  true,
		"o-abcdefghij/r-ab12/ou-ab12-11111111/ou-ab12-3333333/": true,
		"o-bbcdefghij/r-ab12/ou-ab12-11111111/":                 false,
	} {
		if got := root.Covers(path); got != want {
			t.Errorf("root: %s covered %v, want %v", path, got, want)
		}
	}
	// The whole organization is aws:PrincipalOrgID: no path pattern.
	if got := (Target{OrganizationID: "o-abcdefghij"}).PrincipalOrgPaths(); got != nil {
		t.Errorf("whole organization: patterns %q, want none", got)
	}
}

func TestValidate(t *testing.T) {
	ok := []Target{
		{OrganizationID: "o-abcdefghij"},
		{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-11111111", "r-ab12"}},
		{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12cd34-11111111aaaa"}},
	}
	for _, target := range ok {
		if err := target.Validate(); err != nil {
			t.Errorf("%v: %v", target, err)
		}
	}
	for _, tc := range []struct {
		target Target
		want   []string
	}{
		{Target{OrganizationID: "org-1"}, []string{"OrganizationId:", `"org-1"`}},
		{Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"123456789012"}}, []string{"OrganizationalUnitIds:", `"123456789012"`}},
		{Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"o-abcdefghij/r-ab12/ou-ab12-11111111/"}}, []string{"OrganizationalUnitIds:", `"o-abcdefghij/r-ab12/ou-ab12-11111111/"`}},
		{Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-1111"}}, []string{`"ou-ab12-1111"`}},
		{Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"r-ab"}}, []string{`"r-ab"`}},
		{Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"OU-AB12-11111111"}}, []string{`"OU-AB12-11111111"`}},
		// An OU id names its root: an OU of another root is of another organization.
		{Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-11111111", "ou-cd34-22222222"}}, []string{"two roots", `"ou-ab12-11111111"`, `"ou-cd34-22222222"`}},
		{Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"r-ab12", "ou-cd34-22222222"}}, []string{"two roots", "r-ab12", "r-cd34"}},
	} {
		err := tc.target.Validate()
		if err == nil {
			t.Errorf("%v: no error", tc.target)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not contain %q", tc.target, err, w)
			}
		}
	}
}

func TestEqual(t *testing.T) {
	a := Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-11111111", "ou-ab12-22222222"}}
	if !a.Equal(Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-22222222", "ou-ab12-11111111", "ou-ab12-22222222"}}) {
		t.Error("the same OUs in another order are another target")
	}
	for _, b := range []Target{
		{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-11111111"}},
		{OrganizationID: "o-bbcdefghij", UnitIDs: a.UnitIDs},
		{OrganizationID: "o-abcdefghij"},
	} {
		if a.Equal(b) {
			t.Errorf("%v equals %v", a, b)
		}
	}
}

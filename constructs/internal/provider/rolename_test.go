package provider

import (
	"regexp"
	"strings"
	"testing"
)

// The role names are plain Go over a StackEnv's name and region: these
// tests build StackEnv values directly and synthesize nothing.

// iamRoleName is IAM's rule for a role name (CreateRole RoleName).
var iamRoleName = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,64}$`)

func TestRoleNameOfAShortStackName(t *testing.T) {
	e := &StackEnv{Name: "Dest", Region: "us-east-1"}
	// Literal: the name other tests and deployed stacks know this role by.
	if got, want := e.RoleName(), "GrantHandler-Dest-29201ce4b7"; got != want {
		t.Errorf("RoleName() = %q, want %q", got, want)
	}
	if got, want := e.SourceRoleName(), "SourceHandler-Dest-29201ce4b7"; got != want {
		t.Errorf("SourceRoleName() = %q, want %q", got, want)
	}
}

func TestRoleNameDependsOnTheRegion(t *testing.T) {
	// Role names are global in an account: the same stack name in two
	// regions must not name the same role.
	east := (&StackEnv{Name: "Dest", Region: "us-east-1"}).RoleName()
	west := (&StackEnv{Name: "Dest", Region: "us-west-2"}).RoleName()
	if east == west {
		t.Errorf("stack Dest in us-east-1 and us-west-2 both name the role %q", east)
	}
}

func TestRoleNameOfALongStackName(t *testing.T) {
	common := strings.Repeat("VeryLongDestinationStack", 2) // 48 characters
	one := &StackEnv{Name: common + "One", Region: "us-east-1"}
	two := &StackEnv{Name: common + "Two", Region: "us-east-1"}

	a, b := one.RoleName(), two.RoleName()

	// The stack name is cut to its first 36 characters...
	if want := "GrantHandler-" + common[:36] + "-"; !strings.HasPrefix(a, want) || !strings.HasPrefix(b, want) {
		t.Errorf("role names %q and %q, want both to start with %q", a, b, want)
	}
	// ...and the hash of the whole name keeps the two apart.
	if a == b {
		t.Errorf("stacks %q and %q share the role name %q", one.Name, two.Name, a)
	}
}

func TestRoleNamesAreValidIAMRoleNames(t *testing.T) {
	// CloudFormation stack names: letters, digits and hyphens, at most 128
	// characters.
	for _, name := range []string{"D", "Dest", strings.Repeat("x", 36), strings.Repeat("x", 37), strings.Repeat("a-B-1", 25) + "xyz"} {
		e := &StackEnv{Name: name, Region: "ap-southeast-2"}
		for _, got := range []string{e.RoleName(), e.SourceRoleName()} {
			if len(got) > 64 || !iamRoleName.MatchString(got) {
				t.Errorf("stack %q (%d characters): role name %q (%d characters) is not a valid IAM role name (at most 64 of A-Z a-z 0-9 + = , . @ _ -)", name, len(name), got, len(got))
			}
		}
	}
}

// TestLogicalID: the policies keep the names CDK's L2 constructs gave them,
// their logical ids (the values are those of test/testdata's templates).
func TestLogicalID(t *testing.T) {
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"CrossAccountAmiGrantHandler", "Role", "DefaultPolicy", "Resource"}, "CrossAccountAmiGrantHandlerRoleDefaultPolicy02244E73"},
		{[]string{"CrossAccountAmiSourceHandler", "Role", "DefaultPolicy", "Resource"}, "CrossAccountAmiSourceHandlerRoleDefaultPolicy72729CFB"},
		{[]string{"SharedAmi", "Grant", "HandlerPolicy", "Resource"}, "SharedAmiGrantHandlerPolicyDE37019C"},
	} {
		if got := logicalID(tc.path...); got != tc.want {
			t.Errorf("logicalID(%v) = %s, want %s", tc.path, got, tc.want)
		}
	}
	// A component that the previous one ends with is left out of the human
	// part (as CDK does), but not out of the hash.
	if got := logicalID("Grant", "Grant", "Resource"); !strings.HasPrefix(got, "Grant") || strings.HasPrefix(got, "GrantGrant") || len(got) != len("Grant")+8 {
		t.Errorf("logicalID(Grant, Grant, Resource) = %s", got)
	}
}

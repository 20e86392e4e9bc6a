package organization

import (
	"fmt"
	"strings"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// targetLauncher is one launch path of every target account: a kind with
// its suffix (Auto Scaling), or a role of one path and name in every
// account. Its grantee's account is known only in each stack instance.
type targetLauncher struct {
	kind     launcher.Kind
	suffix   string // AUTO_SCALING only
	roleName string // launcher.Role only: "path/name" or "name"
}

// in is the launcher of account (a literal, or a pseudo parameter's token)
// in partition.
func (l targetLauncher) in(partition, account string) launcher.Launcher {
	out := launcher.Launcher{Kind: l.kind, SLRSuffix: l.suffix}
	if l.kind == launcher.Role {
		path, name, _ := amipolicy.SplitRoleName(l.roleName) // checked by resolveLaunchers
		out.RoleARN = awsid.RoleARN(partition, account, path, name)
	}
	return out
}

// String names the launcher as messages do.
func (l targetLauncher) String() string {
	switch {
	case l.kind == launcher.Role:
		return "the role " + l.roleName
	case l.suffix != "":
		return fmt.Sprintf("%s with ServiceLinkedRoleSuffix %q", l.kind, l.suffix)
	}
	return string(l.kind)
}

// resolveLaunchers reads Launchers, LauncherRoleNames and
// ServiceLinkedRoleSuffix into the launchers of every target account, by
// encryptedami's rules, naming the prop and the value of the first that
// cannot work. No Launchers and no LauncherRoleNames means an Auto Scaling
// group (the StackSets of the releases before launchers).
func resolveLaunchers(kinds *[]encryptedami.LauncherKind, roleNames []string, suffix string) ([]targetLauncher, error) {
	ls, err := launcher.ResolveKinds(launcher.KindsOf(kinds), suffix, "LauncherRoleNames", len(roleNames))
	if err != nil {
		return nil, err
	}
	var out []targetLauncher
	for _, l := range ls {
		out = append(out, targetLauncher{kind: l.Kind, suffix: l.SLRSuffix})
	}
	seenRole := map[string]int{}
	for i, n := range roleNames {
		if jsiivalue.IsUnresolved(&n) {
			return nil, fmt.Errorf("LauncherRoleNames[%d]: must be known at synth time (the StackSet's template names the role), got %s", i, jsiivalue.DeployTime)
		}
		if _, _, err := amipolicy.SplitRoleName(n); err != nil {
			return nil, fmt.Errorf("LauncherRoleNames[%d]: %v", i, err)
		}
		if j, dup := seenRole[n]; dup {
			return nil, fmt.Errorf("LauncherRoleNames[%d]: %q is LauncherRoleNames[%d] already", i, n, j)
		}
		seenRole[n] = i
		out = append(out, targetLauncher{kind: launcher.Role, roleName: n})
	}
	return out, nil
}

// isDefault reports whether ls are the launcher of the releases before
// launchers: an Auto Scaling group alone.
func isDefault(ls []targetLauncher) bool {
	return len(ls) == 1 && ls[0].kind == launcher.AutoScaling
}

// launcherCoverage is what NewDeployment asks of each KeyAccess item (the
// value encryptedami.NewOrganizationKeyAccess returned): whether its
// statements let every account's launcher of that kind (suffix, role
// name) use the key and receive its grant. They are the only statements
// that name the launchers, so a launcher they miss gets its grant denied
// in every account.
type launcherCoverage interface {
	CoversLauncher(kind launcher.Kind, slrSuffix, roleName string) bool
}

// checkCoverage checks that each KeyAccess item lets in every launcher.
func checkCoverage(access []accessKey, ls []targetLauncher) error {
	for i, a := range access {
		if a.coverage == nil {
			return fmt.Errorf("KeyAccess[%d] (%s): expected the value encryptedami.NewOrganizationKeyAccess returned, whose statements can be checked against Launchers, got another implementation", i, a.path)
		}
		for _, l := range ls {
			if a.coverage.CoversLauncher(l.kind, l.suffix, l.roleName) {
				continue
			}
			fix := "add " + string(l.kind) + " to its Launchers"
			switch {
			case l.kind == launcher.Role:
				fix = fmt.Sprintf("add %q to its LauncherRoleNames", l.roleName)
			case l.suffix != "":
				fix = fmt.Sprintf("add %q to its ServiceLinkedRoleSuffixes", l.suffix)
			}
			grantee := l.in("<partition>", "<account>").Grantee("<partition>", "<account>")
			return fmt.Errorf("KeyAccess[%d] (%s): its statements do not let %s (%s in each account) use the key, so every account's grant for it would be denied: %s; got Launchers %s",
				i, a.path, l, grantee, fix, launcherList(ls))
		}
	}
	return nil
}

// launcherList is the launchers as a message lists them.
func launcherList(ls []targetLauncher) string {
	var out []string
	for _, l := range ls {
		out = append(out, l.String())
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// idAccount stands for every target account while the construct ids are
// chosen: they depend on the grantees' names only.
const idAccount = "000000000000"

// innerGrantee is one distinct grantee of the StackSet's template: its
// role's IAM path and name (its ARN is made in each stack instance from
// AWS::Partition and AWS::AccountId), the service-linked role to ensure
// (if any) and the suffix of its construct ids.
type innerGrantee struct {
	id         string
	path, name string
	slr        launcher.ServiceLinkedRole
	hasSLR     bool
	suffix     string // the Auto Scaling role's custom suffix
}

// innerGrantees lists the distinct grantees of ls, in the launchers'
// order (an Auto Scaling group and an EKS managed node group without
// suffix share the default Auto Scaling role: one grant). Their construct
// ids end in "" ("Grant", "ServiceLinkedRole", the ids of the releases
// before launchers) for the Auto Scaling role of AUTO_SCALING (else of
// EKS_MANAGED_NODE_GROUP), in "-<role name>" for the others, a number
// following when two roles share a name.
func innerGrantees(ls []targetLauncher) []innerGrantee {
	const partition = "aws"
	primary := ""
	for _, k := range []launcher.Kind{launcher.AutoScaling, launcher.EKSManagedNodeGroup} {
		for _, l := range ls {
			if primary == "" && l.kind == k {
				primary = l.in(partition, idAccount).Grantee(partition, idAccount)
			}
		}
	}
	var out []innerGrantee
	seen := map[string]bool{}
	used := map[string]bool{}
	for _, tl := range ls {
		l := tl.in(partition, idAccount)
		arn := l.Grantee(partition, idAccount)
		if seen[arn] {
			continue
		}
		seen[arn] = true
		g := innerGrantee{}
		if g.slr, g.hasSLR = l.ServiceLinkedRole(); g.hasSLR {
			g.path, g.name, g.suffix = g.slr.Path(), g.slr.Name(l.SLRSuffix), l.SLRSuffix
		} else {
			g.path, g.name, _ = amipolicy.SplitRoleName(tl.roleName)
		}
		if arn != primary {
			g.id = "-" + g.name
			for n := 2; used[g.id]; n++ {
				g.id = fmt.Sprintf("-%s%d", g.name, n)
			}
			used[g.id] = true
		}
		out = append(out, g)
	}
	return out
}

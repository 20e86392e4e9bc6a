// Package amipolicy writes the source key policy statements that let one
// destination account's launchers (Auto Scaling groups, EKS managed node
// groups, EC2 Fleet, Spot Fleet, Spot, a role: internal/launcher) launch an
// AMI encrypted with the key. It is plain Go: the constructs turn the statements into CDK policy
// statements, and a source-side handler can merge them into a key it does
// not own.
package amipolicy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

// Style selects how tightly the statements are scoped.
type Style string

const (
	// Scoped (the default) names the destination account as principal and
	// pins the exact roles with aws:PrincipalArn, so the policy is valid
	// before those roles exist. The grant creator gets kms:CreateGrant and
	// nothing else: only for the service-linked role as grantee, only with
	// the Auto Scaling operations, and only with itself as the grant's
	// retiring principal, so it can retire its own grants (KMS authorizes
	// that from the grant) but list or revoke no grant on the key.
	Scoped Style = "SCOPED"
	// SeedArticle reproduces the AWS knowledge-center article's statements:
	// the roles themselves as principals, CreateGrant/ListGrants/RevokeGrant
	// without conditions. KMS rejects such a policy while a named role does
	// not exist yet, so the destination must be deployed first.
	SeedArticle Style = "SEED_ARTICLE"
)

// UseActions let the service-linked role use the key (the article's
// "Allow use of the key").
var UseActions = []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"}

// Destination is one account whose launchers launch the AMI.
// Statements takes it as given: its fields are checked where they are read
// (constructs/encryptedami resolveDestination, which names the prop that
// carried a bad value).
type Destination struct {
	Partition string
	Account   string
	// SLRSuffix selects AWSServiceRoleForAutoScaling_<suffix>; empty for the default role.
	SLRSuffix string
	// GrantCreatorArn is the role that creates the grant (the handler's
	// role), and the grant's retiring principal.
	GrantCreatorArn string
	// Launchers are the account's launch paths. nil means the Auto Scaling
	// group with SLRSuffix (launcher.Default), whose statements are those
	// of every release before launchers existed, byte for byte.
	Launchers []launcher.Launcher
}

// LaunchersOrDefault is d.Launchers, or the default Auto Scaling launcher
// with d.SLRSuffix when there are none.
func (d Destination) LaunchersOrDefault() []launcher.Launcher {
	if len(d.Launchers) == 0 {
		return launcher.Default(d.SLRSuffix)
	}
	return d.Launchers
}

// Grantees are the distinct principals that use the key, sorted: one grant
// and one aws:PrincipalArn value each.
func (d Destination) Grantees() []string {
	return launcher.Grantees(d.LaunchersOrDefault(), d.Partition, d.Account)
}

// SLRArn is the destination's Auto Scaling service-linked role.
func (d Destination) SLRArn() string {
	return awsid.AutoScalingSLRARN(d.Partition, d.Account, d.SLRSuffix)
}

// Statement is one key policy statement, shaped as it appears in JSON.
type Statement struct {
	Sid       string                            `json:"Sid"`
	Effect    string                            `json:"Effect"`
	Principal map[string]interface{}            `json:"Principal"`
	Action    []string                          `json:"Action"`
	Resource  string                            `json:"Resource"`
	Condition map[string]map[string]interface{} `json:"Condition,omitempty"`
}

// JSON returns the statement as a generic map, as policy documents take it.
func (s Statement) JSON() map[string]interface{} {
	out := map[string]interface{}{
		"Sid":       s.Sid,
		"Effect":    s.Effect,
		"Principal": s.Principal,
		"Action":    s.Action,
		"Resource":  s.Resource,
	}
	if len(s.Condition) > 0 {
		cond := map[string]interface{}{}
		for k, v := range s.Condition {
			cond[k] = v
		}
		out["Condition"] = cond
	}
	return out
}

// Statements returns the statements for one destination: one that lets
// every grantee use the key, one that lets the grant creator create a grant
// for each of them and no one else. Their Sids name the account and the
// roles, so several destinations, and several stacks of one destination,
// can share a key without a Sid clash; one Auto Scaling service-linked role
// (the default launcher) keeps the Sids of the releases before launchers.
func Statements(d Destination, style Style) []Statement {
	grantees := d.Grantees()
	creator := d.GrantCreatorArn
	names := granteeNames(d.LaunchersOrDefault(), grantees, d.Partition, d.Account)
	useSid := fmt.Sprintf("Allow use of the key by %s of %s", names, d.Account)
	attachSid := fmt.Sprintf("Allow attachment of persistent resources by %s", creator)
	if style == SeedArticle {
		// The attachment statement does not depend on the grantees: every
		// construct of the stack shares it.
		return []Statement{
			{Sid: useSid, Effect: "Allow", Principal: aws(oneOrList(grantees)), Action: UseActions, Resource: "*"},
			// No kms:GrantIsForAWSResource: that condition forbids a grant to the service-linked role.
			{Sid: attachSid, Effect: "Allow", Principal: aws(creator),
				Action: []string{"kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"}, Resource: "*"},
		}
	}
	if !onlyAutoScalingRole(d.LaunchersOrDefault(), grantees) {
		// Another grantee set of the same creator (another construct of the
		// stack) writes another statement: the Sid names the grantees.
		attachSid += " for " + names
	}
	root := aws(awsid.AccountRootARN(d.Partition, d.Account))
	return []Statement{
		{
			Sid: useSid, Effect: "Allow", Principal: root, Action: UseActions, Resource: "*",
			Condition: map[string]map[string]interface{}{
				"StringEquals": {"aws:PrincipalArn": oneOrList(grantees)},
			},
		},
		{
			// CreateGrant only by the grant creator, only for the
			// grantees, only with the operations a launch needs, only with
			// the creator as retiring principal. No
			// kms:GrantIsForAWSResource: that condition forbids a grant to
			// the service-linked role; the conditions here replace it.
			Sid: attachSid, Effect: "Allow", Principal: root, Action: []string{"kms:CreateGrant"}, Resource: "*",
			Condition: map[string]map[string]interface{}{
				"StringEquals":              {"aws:PrincipalArn": creator, "kms:GranteePrincipal": oneOrList(grantees), "kms:RetiringPrincipal": creator},
				"ForAllValues:StringEquals": {"kms:GrantOperations": grantspec.AutoScalingOperations},
			},
		},
	}
}

// onlyAutoScalingRole reports whether the launchers share one Auto Scaling
// service-linked role (Auto Scaling groups of one role, EKS managed node
// groups with the default role): the statements before launchers existed.
func onlyAutoScalingRole(ls []launcher.Launcher, grantees []string) bool {
	for _, l := range ls {
		if slr, ok := l.ServiceLinkedRole(); !ok || slr != launcher.AutoScalingSLR {
			return false
		}
	}
	return len(grantees) == 1
}

// granteeNames names the grantees (sorted by ARN) in a Sid, space
// separated (IAM names and paths have no space): a service-linked role by
// its name, a launching role by its path and name (karpenter/Controller),
// which is unique in its account. The Sid is then unique per grantee set.
func granteeNames(ls []launcher.Launcher, grantees []string, partition, account string) string {
	byARN := map[string]string{}
	for _, l := range ls {
		name := l.GranteeName()
		if a, err := awsid.ParseARN(l.RoleARN); l.Kind == launcher.Role && err == nil {
			name = strings.TrimPrefix(a.Resource, "role/")
		}
		byARN[l.Grantee(partition, account)] = name
	}
	names := make([]string, len(grantees))
	for i, g := range grantees {
		names[i] = byARN[g]
	}
	return strings.Join(names, " ")
}

// oneOrList is a policy value: a string for one value (as before
// launchers), a list for several.
func oneOrList(values []string) interface{} {
	if len(values) == 1 {
		return values[0]
	}
	return values
}

func aws(arn interface{}) map[string]interface{} { return map[string]interface{}{"AWS": arn} }

// Organization selects the accounts of an AWS Organization, or of some of
// its organizational units and every OU below them, as destinations.
type Organization struct {
	// Target is the organization and its OUs (or root).
	Target orgtarget.Target
	// SLRSuffixes lists the custom suffixes of service-linked roles in use;
	// the default role is always included.
	SLRSuffixes []string
	// GrantCreatorPattern is an ArnLike pattern (account "*") that matches
	// every grant creator role, e.g. arn:aws:iam::*:role/crossaccountami/*.
	GrantCreatorPattern string
	Partition           string
	// Launchers are the launch paths through a service-linked role that the
	// accounts use (launcher.Kind other than launcher.Role). nil means Auto
	// Scaling only, whose statements are those before launchers existed.
	Launchers []launcher.Kind
	// RoleNames are launching roles present under one path and name in
	// every account, "path/name" or "name" (such as
	// "karpenter/KarpenterController"): each account's role of that name
	// may use the key and receive a grant.
	RoleNames []string
}

// Validate checks the target and the suffixes, naming the field and the
// value received.
func (o Organization) Validate() error {
	if err := o.Target.Validate(); err != nil {
		return err
	}
	for _, s := range o.SLRSuffixes {
		if err := awsid.ValidateSLRSuffix(s); err != nil {
			return fmt.Errorf("ServiceLinkedRoleSuffixes: %v", err)
		}
	}
	return validateLaunchers(o.Launchers, o.SLRSuffixes, o.RoleNames)
}

// validateLaunchers checks the launchers of a style that names no
// destination role (ORGANIZATION, ACCOUNTS), naming the prop and the value.
func validateLaunchers(launchers []launcher.Kind, suffixes, roleNames []string) error {
	seen := map[launcher.Kind]bool{}
	for i, k := range launchers {
		l := launcher.Launcher{Kind: k}
		if k == launcher.Role {
			return fmt.Errorf("Launchers[%d]: roles are named by LauncherRoleNames, got %q", i, k)
		}
		if err := l.Validate(); err != nil {
			return fmt.Errorf("Launchers[%d]: %v", i, err)
		}
		if seen[k] {
			return fmt.Errorf("Launchers[%d]: %q is listed twice", i, k)
		}
		seen[k] = true
	}
	if len(suffixes) > 0 && launchers != nil && !seen[launcher.AutoScaling] {
		return fmt.Errorf("ServiceLinkedRoleSuffixes: only Auto Scaling groups use a custom-suffix role (an EKS managed node group uses the default AWSServiceRoleForAutoScaling), and Launchers %v has no %s; got %q", launchers, launcher.AutoScaling, suffixes)
	}
	seenRole := map[string]bool{}
	for i, n := range roleNames {
		if _, _, err := SplitRoleName(n); err != nil {
			return fmt.Errorf("LauncherRoleNames[%d]: %v", i, err)
		}
		if seenRole[n] {
			return fmt.Errorf("LauncherRoleNames[%d]: %q is listed twice", i, n)
		}
		seenRole[n] = true
	}
	if launchers != nil && len(launchers) == 0 && len(roleNames) == 0 {
		return fmt.Errorf("Launchers: empty and no LauncherRoleNames: nothing could launch the AMI; leave Launchers nil for Auto Scaling groups")
	}
	return nil
}

// roleNameRe is an IAM role name (1 to 64 of A-Z a-z 0-9 + = , . @ _ -).
var roleNameRe = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// pathPartRe is one part of an IAM path.
var pathPartRe = regexp.MustCompile(`^[\x21-\x2e\x30-\x7e]+$`)

// SplitRoleName splits "path/name" (or "name") into the IAM path
// ("/path/", or "/") and the name, naming the value when it is not one.
func SplitRoleName(pathName string) (path, name string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("expected a role's path and name as \"path/name\" or its name (such as \"karpenter/KarpenterController\"), %s, got %q", why, pathName)
	}
	parts := strings.Split(pathName, "/")
	name = parts[len(parts)-1]
	if !roleNameRe.MatchString(name) {
		return bad("the name 1 to 64 of A-Z a-z 0-9 + = , . @ _ -")
	}
	for _, p := range parts[:len(parts)-1] {
		if !pathPartRe.MatchString(p) {
			return bad("no empty path part, no leading or trailing /")
		}
	}
	path = "/"
	if len(parts) > 1 {
		path = "/" + strings.Join(parts[:len(parts)-1], "/") + "/"
	}
	if len(path) > 512 {
		return bad("the path at most 512 characters")
	}
	return path, name, nil
}

// OrganizationStatements returns statements of constant size, however many
// accounts of the organization launch the AMI: aws:PrincipalOrgID (or
// aws:PrincipalOrgPaths) picks the accounts, ArnLike aws:PrincipalArn the
// roles (patternStatements, shared with AccountsStatements).
func OrganizationStatements(o Organization) []Statement {
	// The accounts a StackSet targeting the same OUs reaches: the OUs and
	// every OU below them (orgtarget.Target.PrincipalOrgPaths).
	inOrg := map[string]map[string]interface{}{}
	if paths := o.Target.PrincipalOrgPaths(); len(paths) > 0 {
		inOrg["ForAnyValue:StringLike"] = map[string]interface{}{"aws:PrincipalOrgPaths": paths}
	} else {
		inOrg["StringEquals"] = map[string]interface{}{"aws:PrincipalOrgID": o.Target.OrganizationID}
	}
	useSid := "Allow use of the key by Auto Scaling service-linked roles of the organization"
	if o.Launchers != nil || len(o.RoleNames) > 0 {
		useSid = "Allow use of the key by launchers of the organization"
	}
	return patternStatements(o.rolePatterns(), patternScope{
		principal: map[string]interface{}{"AWS": "*"},
		condition: inOrg,
		useSid:    useSid,
		attachSid: "Allow attachment of persistent resources by grant creators of the organization",
	})
}

// rolePatterns are the roles the styles without per-destination statements
// (ORGANIZATION, ACCOUNTS) let in, by pattern: the Auto Scaling
// service-linked roles (the default one and SLRSuffixes') and the grant
// creators (GrantCreatorPattern, an ArnLike pattern with account "*" that
// matches every grant handler role, e.g. arn:aws:iam::*:role/crossaccountami/*).
type rolePatterns struct {
	Partition           string
	SLRSuffixes         []string
	GrantCreatorPattern string
	// Launchers and RoleNames as in Organization: nil Launchers is Auto
	// Scaling only.
	Launchers []launcher.Kind
	RoleNames []string
}

func (o Organization) rolePatterns() rolePatterns {
	return rolePatterns{Partition: o.Partition, SLRSuffixes: o.SLRSuffixes, GrantCreatorPattern: o.GrantCreatorPattern, Launchers: o.Launchers, RoleNames: o.RoleNames}
}

// patternScope is who a patternStatements pair lets in: its principal
// (everyone, or listed accounts) and the condition that narrows it (the
// organization's), added to both statements; and the two Sids.
type patternScope struct {
	principal         map[string]interface{}
	condition         map[string]map[string]interface{}
	useSid, attachSid string
}

// patternStatements are the two statements of the styles that name no
// destination role, one definition for both so that a change of the
// grantee patterns serves both: the service-linked roles of the scope's
// accounts may use the key; a grant creator may create grants only for its
// own account's service-linked roles (the ${aws:PrincipalAccount} policy
// variable), only with the Auto Scaling operations and only with itself as
// retiring principal (${aws:PrincipalArn}); it gets no ListGrants,
// RevokeGrant or RetireGrant: it retires its own grants, which KMS
// authorizes from the grant.
func patternStatements(r rolePatterns, scope patternScope) []Statement {
	with := func(extra map[string]map[string]interface{}) map[string]map[string]interface{} {
		out := map[string]map[string]interface{}{}
		for _, cond := range []map[string]map[string]interface{}{scope.condition, extra} {
			for op, kv := range cond {
				if out[op] == nil {
					out[op] = map[string]interface{}{}
				}
				for k, v := range kv {
					out[op][k] = v
				}
			}
		}
		return out
	}
	return []Statement{
		{
			Sid: scope.useSid, Effect: "Allow",
			Principal: scope.principal, Action: UseActions, Resource: "*",
			Condition: with(map[string]map[string]interface{}{"ArnLike": {"aws:PrincipalArn": r.grantees("*")}}),
		},
		{
			Sid: scope.attachSid, Effect: "Allow",
			Principal: scope.principal, Action: []string{"kms:CreateGrant"}, Resource: "*",
			Condition: with(map[string]map[string]interface{}{
				"ArnLike": {"aws:PrincipalArn": r.GrantCreatorPattern},
				"StringEquals": {
					"kms:GranteePrincipal":  r.grantees("${aws:PrincipalAccount}"),
					"kms:RetiringPrincipal": "${aws:PrincipalArn}",
				},
				"ForAllValues:StringEquals": {"kms:GrantOperations": grantspec.AutoScalingOperations},
			}),
		},
	}
}

// granteePatterns are the principals of account that the organization's
// statements let use the key (rolePatterns.grantees).
func (o Organization) granteePatterns(account string) []string {
	return o.rolePatterns().grantees(account)
}

// grantees are the principals of account (a literal, "*" or a policy
// variable) that may use the key and receive a grant: each launcher's
// service-linked role (Auto Scaling's default one always with Auto
// Scaling, and each suffix), then each role name.
func (o rolePatterns) grantees(account string) []string {
	kinds := o.Launchers
	if kinds == nil {
		kinds = []launcher.Kind{launcher.AutoScaling}
	}
	out := []string{}
	seen := map[string]bool{}
	add := func(arn string) {
		if !seen[arn] {
			seen[arn] = true
			out = append(out, arn)
		}
	}
	// Auto Scaling first, as before launchers existed.
	for _, k := range kinds {
		if k == launcher.AutoScaling || k == launcher.EKSManagedNodeGroup {
			add(launcher.AutoScalingSLR.ARN(o.Partition, account, ""))
			for _, s := range o.SLRSuffixes {
				if k == launcher.AutoScaling {
					add(launcher.AutoScalingSLR.ARN(o.Partition, account, s))
				}
			}
		}
	}
	for _, k := range kinds {
		if slr, ok := (launcher.Launcher{Kind: k}).ServiceLinkedRole(); ok && slr != launcher.AutoScalingSLR {
			add(slr.ARN(o.Partition, account, ""))
		}
	}
	for _, n := range o.RoleNames {
		path, name, err := SplitRoleName(n)
		if err == nil {
			add(awsid.RoleARN(o.Partition, account, path, name))
		}
	}
	return out
}

// Covers reports whether the organization's statements let launcher l of
// account use the key and receive its grant.
func (o Organization) Covers(l launcher.Launcher, partition, account string) bool {
	want := l.Grantee(partition, account)
	for _, p := range o.granteePatterns(account) {
		if p == want {
			return true
		}
	}
	return false
}

// Package amipolicy writes the source key policy statements that let one
// destination account's Auto Scaling groups launch an AMI encrypted with the
// key. It is plain Go: the constructs turn the statements into CDK policy
// statements, and a source-side handler can merge them into a key it does
// not own.
package amipolicy

import (
	"fmt"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
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

// Destination is one account whose Auto Scaling groups launch the AMI.
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

// Statements returns the statements for one destination. Their Sids name
// the account and the roles, so several destinations, and several stacks of
// one destination, can share a key without a Sid clash.
func Statements(d Destination, style Style) []Statement {
	slr := d.SLRArn()
	slrName := awsid.AutoScalingSLRName(d.SLRSuffix)
	creator := d.GrantCreatorArn
	useSid := fmt.Sprintf("Allow use of the key by %s of %s", slrName, d.Account)
	attachSid := fmt.Sprintf("Allow attachment of persistent resources by %s", creator)
	if style == SeedArticle {
		return []Statement{
			{Sid: useSid, Effect: "Allow", Principal: aws(slr), Action: UseActions, Resource: "*"},
			// No kms:GrantIsForAWSResource: that condition forbids a grant to the service-linked role.
			{Sid: attachSid, Effect: "Allow", Principal: aws(creator),
				Action: []string{"kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"}, Resource: "*"},
		}
	}
	root := aws(awsid.AccountRootARN(d.Partition, d.Account))
	return []Statement{
		{
			Sid: useSid, Effect: "Allow", Principal: root, Action: UseActions, Resource: "*",
			Condition: map[string]map[string]interface{}{
				"StringEquals": {"aws:PrincipalArn": slr},
			},
		},
		{
			// CreateGrant only by the grant creator, only for the
			// service-linked role, only with the operations Auto Scaling
			// needs, only with the creator as retiring principal. No
			// kms:GrantIsForAWSResource: that condition forbids a grant to
			// the service-linked role; the conditions here replace it.
			Sid: attachSid, Effect: "Allow", Principal: root, Action: []string{"kms:CreateGrant"}, Resource: "*",
			Condition: map[string]map[string]interface{}{
				"StringEquals":              {"aws:PrincipalArn": creator, "kms:GranteePrincipal": slr, "kms:RetiringPrincipal": creator},
				"ForAllValues:StringEquals": {"kms:GrantOperations": grantspec.AutoScalingOperations},
			},
		},
	}
}

func aws(arn string) map[string]interface{} { return map[string]interface{}{"AWS": arn} }

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
	return nil
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
	return patternStatements(rolePatterns{Partition: o.Partition, SLRSuffixes: o.SLRSuffixes, GrantCreatorPattern: o.GrantCreatorPattern}, patternScope{
		principal: map[string]interface{}{"AWS": "*"},
		condition: inOrg,
		useSid:    "Allow use of the key by Auto Scaling service-linked roles of the organization",
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
}

// slrs are the service-linked roles of account ("*" or a policy variable).
func (r rolePatterns) slrs(account string) []string {
	names := []string{awsid.AutoScalingSLRName("")}
	for _, s := range r.SLRSuffixes {
		names = append(names, awsid.AutoScalingSLRName(s))
	}
	out := []string{}
	for _, n := range names {
		out = append(out, awsid.RoleARN(r.Partition, account, "/aws-service-role/"+awsid.AutoScalingService+"/", n))
	}
	return out
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
			Condition: with(map[string]map[string]interface{}{"ArnLike": {"aws:PrincipalArn": r.slrs("*")}}),
		},
		{
			Sid: scope.attachSid, Effect: "Allow",
			Principal: scope.principal, Action: []string{"kms:CreateGrant"}, Resource: "*",
			Condition: with(map[string]map[string]interface{}{
				"ArnLike": {"aws:PrincipalArn": r.GrantCreatorPattern},
				"StringEquals": {
					"kms:GranteePrincipal":  r.slrs("${aws:PrincipalAccount}"),
					"kms:RetiringPrincipal": "${aws:PrincipalArn}",
				},
				"ForAllValues:StringEquals": {"kms:GrantOperations": grantspec.AutoScalingOperations},
			}),
		},
	}
}

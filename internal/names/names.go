// Package names is the one definition of the IAM names this library gives
// its handler roles: constructs/internal/provider creates the roles with
// them, and cmd/amicheck looks the grant handler roles up by them. It
// imports neither CDK nor the AWS SDK, so that amicheck's binary carries no
// CDK.
package names

const (
	// GrantHandlerRolePath is the IAM path of every grant handler role (one
	// per destination stack), so that one ArnLike pattern
	// (arn:aws:iam::*:role/crossaccountami/*) names them all in
	// organization-wide key policies.
	GrantHandlerRolePath = "/crossaccountami/"
	// GrantHandlerRolePrefix starts the name of every grant handler role:
	// GrantHandler-<stack name>-<hash>.
	GrantHandlerRolePrefix = "GrantHandler"

	// SourceHandlerRolePath is the IAM path of the source handler roles. It
	// differs from GrantHandlerRolePath so that the organization-wide
	// pattern for grant creators (role/crossaccountami/*) never matches a
	// source handler.
	SourceHandlerRolePath = "/crossaccountami-source/"
	// SourceHandlerRolePrefix starts the name of every source handler role:
	// SourceHandler-<stack name>-<hash>.
	SourceHandlerRolePrefix = "SourceHandler"
)

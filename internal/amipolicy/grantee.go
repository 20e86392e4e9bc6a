package amipolicy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

// Grant is one generic KMS grant (kmsgrant.NewGrant) as its handler creates
// it: the key policy statements GrantStatements writes let that handler
// create exactly this grant, from another account than the key's.
type Grant struct {
	Partition string
	// HandlerAccount is the account of the grant handler's role.
	HandlerAccount string
	// HandlerRoleArn is the grant handler's role, which calls CreateGrant.
	HandlerRoleArn string
	// GranteePrincipal is the ARN of the principal that receives the grant.
	GranteePrincipal string
	// RetiringPrincipal is the grant's retiring principal: HandlerRoleArn
	// when the handler owns the grant, else the user's own.
	RetiringPrincipal string
	// Operations are the grant's operations (Decrypt, CreateGrant, ...).
	Operations []string
	// EncryptionContextEquals or EncryptionContextSubset is the grant's
	// constraint, at most one of them set.
	EncryptionContextEquals map[string]string
	EncryptionContextSubset map[string]string
}

// GrantStatements returns the key policy statements that let g's handler
// create g, and no other grant: kms:CreateGrant for the handler role only
// (the handler's account as principal, pinned with aws:PrincipalArn, so
// the statement is valid before the role exists), only for g's grantee,
// only with g's retiring principal, only within g's operations
// (ForAllValues, so a subset is allowed: the handler never asks for less,
// and KMS documents no way to require the whole set), and, with an
// encryption context constraint, only with that kind of constraint
// (kms:GrantConstraintType) and those pairs (kms:EncryptionContext:<key>,
// which for CreateGrant applies to the grant's constraint):
// https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html
//
// A grant the handler owns needs nothing more: the handler retires it
// (KMS authorizes that from the grant) and finds it with
// kms:ListRetirableGrants, an IAM permission of its own account. A grant
// with a retiring principal of the user's is revoked and looked up through
// the key, so a second statement allows kms:RevokeGrant and kms:ListGrants
// to the handler role; KMS has no condition key that narrows them to one
// grant, so that role may revoke and list every grant on the key.
//
// The Sids name the handler role and carry a hash of the statement's
// conditions: two grants of one handler on one key get statements of
// their own, and one grant placed twice the same statement.
func GrantStatements(g Grant) []Statement {
	root := aws(awsid.AccountRootARN(g.Partition, g.HandlerAccount))
	equals := map[string]interface{}{
		"aws:PrincipalArn":      g.HandlerRoleArn,
		"kms:GranteePrincipal":  g.GranteePrincipal,
		"kms:RetiringPrincipal": g.RetiringPrincipal,
	}
	constraint, pairs := "", g.EncryptionContextEquals
	switch {
	case len(g.EncryptionContextEquals) > 0:
		constraint = "EncryptionContextEquals"
	case len(g.EncryptionContextSubset) > 0:
		constraint, pairs = "EncryptionContextSubset", g.EncryptionContextSubset
	}
	if constraint != "" {
		equals["kms:GrantConstraintType"] = constraint
		for _, k := range slices.Sorted(maps.Keys(pairs)) {
			equals["kms:EncryptionContext:"+k] = pairs[k]
		}
	}
	create := Statement{
		Effect: "Allow", Principal: root, Action: []string{"kms:CreateGrant"}, Resource: "*",
		Condition: map[string]map[string]interface{}{
			"StringEquals":              equals,
			"ForAllValues:StringEquals": {"kms:GrantOperations": slices.Clone(g.Operations)},
		},
	}
	create.Sid = fmt.Sprintf("Allow %s to create a grant for %s (%s)", g.HandlerRoleArn, g.GranteePrincipal, conditionHash(create.Condition))
	out := []Statement{create}
	if g.RetiringPrincipal != g.HandlerRoleArn {
		out = append(out, Statement{
			Sid:       fmt.Sprintf("Allow %s to revoke and list grants", g.HandlerRoleArn),
			Effect:    "Allow",
			Principal: root,
			Action:    []string{"kms:RevokeGrant", "kms:ListGrants"},
			Resource:  "*",
			Condition: map[string]map[string]interface{}{"StringEquals": {"aws:PrincipalArn": g.HandlerRoleArn}},
		})
	}
	return out
}

// conditionHash is 8 hex digits of a condition's JSON (encoding/json sorts
// map keys, so equal conditions hash alike).
func conditionHash(c map[string]map[string]interface{}) string {
	body, _ := json.Marshal(c)
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:4])
}

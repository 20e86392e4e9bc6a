package amipolicy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

// CutOff shuts named destination accounts out of a key for good: an
// explicit Deny in the key policy for every principal of those accounts
// (Principal "*", StringEquals aws:PrincipalAccount), which no Allow can
// override, whether it comes from the key policy (the per-destination or
// organization statements), an IAM policy or a grant. So no scheduled check
// and no grant re-created under its name can undo it: while the statement is
// in the policy, the account's handler cannot create a grant, and its
// service-linked role cannot use one it still holds.
//
// AWS KMS Developer Guide, "Key policies in AWS KMS": "No AWS principal ...
// has any permissions to a KMS key unless they are explicitly allowed, and
// never denied, in a key policy, IAM policy, or grant"; "Grants in AWS KMS":
// "A grant can allow access to a KMS key, but not deny access"
// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html,
// https://docs.aws.amazon.com/kms/latest/developerguide/grants.html).
type CutOff struct {
	// Name tells the statement apart from other cut-offs on the same key
	// (the construct's id): it is part of the Sid.
	Name string
	// Accounts are the 12-digit ids of the accounts shut out.
	Accounts []string
	// KeyAccount is the key's own account, which is never cut off (a Deny
	// for it would shut out the key's administrators too); "" when it is not
	// known at synth time.
	KeyAccount string
}

// CutOffActions are what a cut-off denies: kms:CreateGrant (the handler's
// grant, and the grants Auto Scaling and EC2 create from the
// service-linked role's grant) and every action the destinations' statements
// and grants allow (UseActions covers the grants' operations: Decrypt,
// Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncryptFrom,
// ReEncryptTo, DescribeKey). kms:RetireGrant is left alone on purpose: a
// destination that retires its grants only gives access up.
var CutOffActions = append([]string{"kms:CreateGrant"}, UseActions...)

// CutOffSidPrefix starts the Sid of every cut-off statement.
const CutOffSidPrefix = "Deny all use of the key and new grants to the accounts cut off by "

// Validate checks the accounts: at least one, each 12 digits, none twice,
// not the key's own. Values may be CDK tokens (strings holding "${Token["),
// which are left to deploy time.
func (c CutOff) Validate() error {
	if len(c.Accounts) == 0 {
		return fmt.Errorf("at least one account to cut off, got none")
	}
	seen := map[string]bool{}
	for _, a := range c.Accounts {
		if strings.Contains(a, "${Token[") {
			continue
		}
		if err := awsid.ValidateAccount(a); err != nil {
			return err
		}
		if seen[a] {
			return fmt.Errorf("%q is listed twice", a)
		}
		seen[a] = true
		if a == c.KeyAccount {
			return fmt.Errorf("%q is the key's own account: a Deny for it would shut out the key's own administrators and services, not a destination", a)
		}
	}
	return nil
}

// CutOffStatement is the Deny statement of c, its accounts sorted (the same
// accounts make the same statement, in any order).
func CutOffStatement(c CutOff) Statement {
	accounts := slices.Clone(c.Accounts)
	slices.Sort(accounts)
	return Statement{
		Sid: CutOffSidPrefix + c.Name, Effect: "Deny",
		Principal: map[string]interface{}{"AWS": "*"}, Action: slices.Clone(CutOffActions), Resource: "*",
		Condition: map[string]map[string]interface{}{
			"StringEquals": {"aws:PrincipalAccount": accounts},
		},
	}
}

// Package keybudget keeps the statements this library places on one KMS key
// policy, and checks that the policy stays under KMS's 32 KB limit: one
// budget per key, shared by every construct that adds statements to it
// (encryptedami's destinations, organization access and cut-offs, and
// kmsgrant's grants).
package keybudget

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
)

// MaxKeyPolicyBytes is KMS's limit on the size of a key policy.
const MaxKeyPolicyBytes = 32768

// ReservedPolicyBytes is room kept for the statements this library does not
// write: CDK's default "Enable IAM User Permissions" statement and the
// document's frame take about 200 bytes; the rest is margin for a few
// statements of the key's owner.
const ReservedPolicyBytes = 2048

// budgetID is the construct id of a key's policy budget.
const budgetID = "CrossAccountAmiKeyPolicyBudget"

// Budget is the statements this library places on one key policy, kept as
// the state of a construct: two constructs for the same destination share
// identical statements, a clash of Sids with different content fails when
// it is made, and the policy's size is checked when the app validates
// (Node().AddValidation), once every destination is known.
//
// It lives under the key for a key of this app, and under the app's root
// for a key imported by ARN (one key imported once per stack is still one
// policy: the id carries a hash of the ARN).
type Budget struct {
	constructs.Construct
	bySid  map[string]string
	claims []int // the bytes each claim added, in order: the total, and how many fit
	// accountLists are the AccountsKeyAccess claims among them (ClaimAccountList).
	accountLists []accountList
}

// ToString is the override jsii-runtime-go needs to make Budget a
// construct of its own, found again by TryFindChild as this Go value.
func (b *Budget) ToString() *string { return jsii.String(budgetID) }

// Of returns key's budget, creating it on first use. env is the stack of
// the construct that asks (its root holds an imported key's budget).
func Of(env *provider.StackEnv, key awskms.IKey, keyArn string) *Budget {
	// A key of this app (its ARN is a token) keeps its budget; a key
	// imported by ARN, or any other key jsii hands back as a bare IKey, has
	// it under the root, named by its ARN (or path, while that is a token).
	scope, isConstruct := key.(constructs.Construct)
	id := budgetID
	if !jsiivalue.IsUnresolved(&keyArn) || !isConstruct {
		name := keyArn
		if jsiivalue.IsUnresolved(&name) {
			name = "path:" + *key.Node().Path()
		}
		sum := sha256.Sum256([]byte(name))
		scope, id = env.Node.Root().(constructs.Construct), budgetID+hex.EncodeToString(sum[:4])
	}
	if found, ok := scope.Node().TryFindChild(&id).(*Budget); ok {
		return found
	}
	b := &Budget{bySid: map[string]string{}}
	constructs.NewConstruct_Override(b, scope, &id)
	b.Node().AddValidation(&budgetCheck{b})
	return b
}

// Claim records statements on the budget. It fails on a Sid already placed
// with different content.
func (b *Budget) Claim(statements []amipolicy.Statement) error {
	bodies := make([]string, len(statements))
	added := 0
	for i, s := range statements {
		body, _ := json.Marshal(s)
		bodies[i] = string(body)
		if prev, ok := b.bySid[s.Sid]; ok {
			if prev != bodies[i] {
				return fmt.Errorf("Key: another construct of this library (a CrossAccountEncryptedAmi, a key access, a grant or a copy) already placed a different statement %q on this key: %s; got %s", s.Sid, prev, bodies[i])
			}
			continue
		}
		added += len(body) + 1
	}
	if added == 0 {
		return nil
	}
	for i, s := range statements {
		b.bySid[s.Sid] = bodies[i]
	}
	b.claims = append(b.claims, added)
	return nil
}

// Problem is the budget's validation error, or "".
func (b *Budget) Problem() string {
	total, fit := ReservedPolicyBytes, 0
	for _, n := range b.claims {
		total += n
		if total <= MaxKeyPolicyBytes {
			fit++
		}
	}
	if total <= MaxKeyPolicyBytes {
		return ""
	}
	if advice := b.accountsAdvice(total - MaxKeyPolicyBytes); advice != "" {
		return fmt.Sprintf("the key policy would grow to about %d bytes (plus %d bytes kept for the key's own statements); KMS rejects key policies over %d bytes%s",
			total-ReservedPolicyBytes, ReservedPolicyBytes, MaxKeyPolicyBytes, advice)
	}
	destinations := len(b.claims)
	return fmt.Sprintf("the key policy would grow to about %d bytes with %d destinations (about %d bytes each, plus %d bytes kept for the key's own statements); KMS rejects key policies over %d bytes, so about %d destinations fit. "+
		"Use KeyPolicyStyle_ACCOUNTS with NewAccountsKeyAccess (about 30 bytes per account: hundreds of accounts, no organization needed), or KeyPolicyStyle_ORGANIZATION with NewOrganizationKeyAccess (statements of constant size for every account of an organization or OU)",
		total, destinations, (total-ReservedPolicyBytes)/destinations, ReservedPolicyBytes, MaxKeyPolicyBytes, fit)
}

// budgetCheck is the budget's validation (constructs.IValidation).
type budgetCheck struct{ b *Budget }

func (c *budgetCheck) Validate() *[]*string {
	if p := c.b.Problem(); p != "" {
		return &[]*string{jsii.String(p)}
	}
	return &[]*string{}
}

// ClaimAccountList is Claim for the statements of an account list (an
// encryptedami.AccountsKeyAccess at path, of accounts accounts, perAccount
// bytes each): when they add to the policy, the budget's error can then
// say how many of those accounts fit. Identical statements already placed
// add nothing, and are not recorded again.
func (b *Budget) ClaimAccountList(statements []amipolicy.Statement, path string, accounts, perAccount int) error {
	before := len(b.claims)
	if err := b.Claim(statements); err != nil {
		return err
	}
	if len(b.claims) > before {
		b.accountLists = append(b.accountLists, accountList{path: path, accounts: accounts, perAccount: perAccount})
	}
	return nil
}

// accountList is an encryptedami.AccountsKeyAccess's claim on a key's budget, for the
// budget's error.
type accountList struct {
	path       string
	accounts   int
	perAccount int
}

// accountsAdvice is the part of a key budget's error that speaks of its
// account lists, when the policy is over bytes too big: how many accounts
// the last list could keep next to the key's other statements.
func (b *Budget) accountsAdvice(over int) string {
	if len(b.accountLists) == 0 {
		return ""
	}
	l := b.accountLists[len(b.accountLists)-1]
	fit := l.accounts - (over+l.perAccount-1)/l.perAccount
	if fit < 0 {
		fit = 0
	}
	return fmt.Sprintf(". The AccountsKeyAccess %s lists %d accounts at %d bytes each: about %d of them fit next to the key's other statements; move the others to another key, or remove other statements",
		l.path, l.accounts, l.perAccount, fit)
}

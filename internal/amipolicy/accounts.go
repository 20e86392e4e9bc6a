package amipolicy

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// Accounts selects destination accounts by a list of account ids, without
// an AWS Organization: the ACCOUNTS style. Its two statements are those of
// organization mode (patternStatements: the roles matched by pattern, each
// grant creator limited to its own account's launcher principals and to
// itself as retiring principal), with the listed accounts as principals
// instead of the organization's condition. So the policy grows by the bytes
// of one account id per statement and account, not by two statements per
// destination as in the SCOPED style.
//
// The ids are written bare ("222222222222"), which IAM documents as
// equivalent to the account's ARN (arn:aws:iam::222222222222:root) in a
// resource policy's Principal: "The account ARN and the shortened account ID
// behave the same way. Both delegate permissions to the account." (IAM User
// Guide, "AWS JSON policy elements: Principal", AWS account principals:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts).
// The bare form is 15 bytes per account and statement in compact JSON, the
// ARN form 33.
type Accounts struct {
	// Name tells the statements apart from other account lists on the same
	// key (the construct's id): it is part of the Sids.
	Name string
	// Accounts are the 12-digit ids of the destination accounts.
	Accounts []string
	// SLRSuffixes lists the custom suffixes of service-linked roles in use;
	// the default role is always included.
	SLRSuffixes []string
	// GrantCreatorPattern is an ArnLike pattern (account "*") that matches
	// every grant creator role, e.g. arn:aws:iam::*:role/crossaccountami/*.
	GrantCreatorPattern string
	Partition           string
	// Launchers and RoleNames as in Organization: the launch paths the
	// accounts use; nil Launchers is Auto Scaling only.
	Launchers []launcher.Kind
	RoleNames []string
}

// rolePatterns are the roles a's statements let in.
func (a Accounts) rolePatterns() rolePatterns {
	return rolePatterns{Partition: a.Partition, SLRSuffixes: a.SLRSuffixes, GrantCreatorPattern: a.GrantCreatorPattern, Launchers: a.Launchers, RoleNames: a.RoleNames}
}

// Covers reports whether a's statements let launcher l of account use the
// key and receive its grant (the account itself is checked by the caller).
func (a Accounts) Covers(l launcher.Launcher, partition, account string) bool {
	return slices.Contains(a.rolePatterns().grantees(account), l.Grantee(partition, account))
}

// AccountsSidPrefixes start the Sids of the two ACCOUNTS statements; the
// Name follows.
var AccountsSidPrefixes = [2]string{
	"Allow use of the key by Auto Scaling service-linked roles of the accounts of ",
	"Allow attachment of persistent resources by grant creators of the accounts of ",
}

// Validate checks the accounts (at least one, each 12 digits, none twice)
// and the suffixes, naming the field, the index and the value received.
func (a Accounts) Validate() error {
	if len(a.Accounts) == 0 {
		return fmt.Errorf("Accounts: at least one destination account id, got none")
	}
	first := map[string]int{}
	for i, acct := range a.Accounts {
		if err := awsid.ValidateAccount(acct); err != nil {
			return fmt.Errorf("Accounts[%d]: %v", i, err)
		}
		if j, seen := first[acct]; seen {
			return fmt.Errorf("Accounts[%d]: %q is listed twice (Accounts[%d] too)", i, acct, j)
		}
		first[acct] = i
	}
	for i, s := range a.SLRSuffixes {
		if err := awsid.ValidateSLRSuffix(s); err != nil {
			return fmt.Errorf("ServiceLinkedRoleSuffixes[%d]: %v", i, err)
		}
		if err := awsid.CheckSLRSuffixMistakes(s); err != nil {
			return fmt.Errorf("ServiceLinkedRoleSuffixes[%d]: %v", i, err)
		}
	}
	return validateLaunchers(a.Launchers, a.SLRSuffixes, a.RoleNames)
}

// AccountsStatements returns the two statements of a, its accounts sorted
// (the same accounts make the same statements, in any order).
func AccountsStatements(a Accounts) []Statement {
	accounts := slices.Clone(a.Accounts)
	slices.Sort(accounts)
	var principal interface{} = accounts
	if len(accounts) == 1 {
		principal = accounts[0] // as CDK renders a list of one
	}
	useSid := AccountsSidPrefixes[0] + a.Name
	if a.Launchers != nil || len(a.RoleNames) > 0 {
		useSid = "Allow use of the key by launchers of the accounts of " + a.Name
	}
	return patternStatements(a.rolePatterns(), patternScope{
		principal: map[string]interface{}{"AWS": principal},
		useSid:    useSid,
		attachSid: AccountsSidPrefixes[1] + a.Name,
	})
}

// AccountsCost is what the statements of a take in a key policy, in
// compact JSON as a key policy budget counts them (each statement and its
// separating comma): fixed bytes, and perAccount more for each account. It
// measures the statements themselves, with two accounts and with three, so
// it cannot drift from AccountsStatements.
func AccountsCost(a Accounts) (fixed, perAccount int) {
	size := func(n int) int {
		b := a
		b.Accounts = make([]string, n)
		for i := range b.Accounts {
			b.Accounts[i] = fmt.Sprintf("%012d", 100000000000+i)
		}
		total := 0
		for _, s := range AccountsStatements(b) {
			body, _ := json.Marshal(s)
			total += len(body) + 1
		}
		return total
	}
	two, three := size(2), size(3)
	perAccount = three - two
	return two - 2*perAccount, perAccount
}

// AccountsThatFit is how many accounts a's statements can hold within
// budget bytes.
func AccountsThatFit(a Accounts, budget int) int {
	fixed, per := AccountsCost(a)
	if budget < fixed {
		return 0
	}
	return (budget - fixed) / per
}

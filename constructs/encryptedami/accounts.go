package encryptedami

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keybudget"
	"github.com/crossaccountami/crossaccountami/constructs/internal/keystatements"
	"github.com/crossaccountami/crossaccountami/constructs/internal/provider"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/names"
)

// KeyPolicyStyle_ACCOUNTS adds no statement for this destination: an
// AccountsKeyAccess on the key's side lists the destination accounts in two
// statements that grow by about 30 bytes per account (hundreds of accounts
// fit one key policy), without an AWS Organization.
const KeyPolicyStyle_ACCOUNTS KeyPolicyStyle = "ACCOUNTS"

// AccountsKeyAccessProps configures the ACCOUNTS key policy style.
type AccountsKeyAccessProps struct {
	// The source key.
	Key awskms.IKey `field:"required"`
	// The 12-digit ids of the destination accounts, known at synth time, each
	// once. Every account whose CrossAccountEncryptedAmi names this
	// AccountsKeyAccess must be listed.
	Accounts *[]*string `field:"required"`
	// Custom suffixes of Auto Scaling service-linked roles the destinations use.
	// Default: - only the default role, AWSServiceRoleForAutoScaling.
	ServiceLinkedRoleSuffixes *[]*string `field:"optional"`
	// The launch paths the accounts use, as OrganizationKeyAccessProps.Launchers.
	// Default: - Auto Scaling groups only.
	Launchers *[]LauncherKind `field:"optional"`
	// Launching roles present under one path and name in every account
	// ("path/name", such as "karpenter/KarpenterController"), as
	// OrganizationKeyAccessProps.LauncherRoleNames.
	// Default: - none.
	LauncherRoleNames *[]*string `field:"optional"`
}

// AccountsKeyAccess lets a list of accounts launch the AMI, with two key
// policy statements whose size grows by one account id per statement and
// account: the accounts are the statements' principals, their roles are
// matched by pattern (the launchers' principals: the Auto Scaling
// service-linked roles by default, with Launchers and LauncherRoleNames the
// other service-linked roles and roles; the grant handler roles by their
// path, /crossaccountami/), and a grant handler may create a grant only for
// its own account's launcher principals and only with itself as retiring
// principal, as in organization mode. Place it next
// to the key, as an OrganizationKeyAccess (for a key imported by ARN, in a
// stack of the key's account and region: a keypolicy.ManagedStatements
// there, construct id "KeyPolicy" under it, keeps the statements in the
// key's policy); in each destination of this app, pass it to
// CrossAccountEncryptedAmi as AccountsKeyAccess (destinations of other apps,
// which import the key by ARN, use KeyPolicyStyle_ACCOUNTS).
type AccountsKeyAccess interface {
	constructs.Construct
	// The statements placed on the key (or to place, for an imported key).
	KeyPolicyStatements() *[]awsiam.PolicyStatement
	// Whether the statements were added to the key's policy (false for an
	// imported key placed outside its account and region: a synth warning
	// prints them).
	KeyPolicyManaged() bool
	// The key whose policy holds the statements.
	Key() awskms.IKey
	// The accounts the statements let in, sorted.
	Accounts() *[]*string
}

type accountsKeyAccess struct {
	constructs.Construct
	key        awskms.IKey
	keyArn     string // what CrossAccountEncryptedAmi's AccountsKeyAccess prop is checked against
	accounts   []string
	statements []amipolicy.Statement
	managed    bool
	policy     amipolicy.Accounts // what the statements let in
}

// NewAccountsKeyAccess adds the statements that let props.Accounts in to
// props.Key's policy.
func NewAccountsKeyAccess(scope constructs.Construct, id *string, props *AccountsKeyAccessProps) AccountsKeyAccess {
	path := *scope.Node().Path() + "/" + *id
	fail := func(err error) {
		panic(fmt.Errorf("encryptedami.NewAccountsKeyAccess %s: %w", path, err))
	}
	if props == nil || props.Key == nil || props.Accounts == nil {
		fail(fmt.Errorf("Key and Accounts: required, got props %+v", props))
	}
	if err := refuseAlias(props.Key); err != nil {
		fail(err)
	}
	accounts := jsiivalue.Strings(props.Accounts)
	for i, a := range accounts {
		if jsiivalue.IsUnresolved(&a) {
			fail(fmt.Errorf("Accounts[%d]: must be known at synth time (each destination is checked against the list), got %s", i, jsiivalue.DeployTime))
		}
	}
	keyArn := *props.Key.KeyArn()
	partition := keyPartition(props.Key, keyArn)
	a := amipolicy.Accounts{
		Name:                *id,
		Accounts:            accounts,
		SLRSuffixes:         jsiivalue.Strings(props.ServiceLinkedRoleSuffixes),
		GrantCreatorPattern: awsid.RoleARN(partition, "*", names.GrantHandlerRolePath, "*"),
		Partition:           partition,
		RoleNames:           jsiivalue.Strings(props.LauncherRoleNames),
		Launchers:           launcher.KindsOf(props.Launchers),
	}
	if err := a.Validate(); err != nil {
		fail(err)
	}
	if fit := accountsThatFit(a); len(accounts) > fit {
		fixed, per := amipolicy.AccountsCost(a)
		fail(fmt.Errorf("Accounts: %d accounts make statements of about %d bytes (%d, plus %d per account); with %d bytes kept for the key's own statements, a key policy of at most %d bytes holds about %d accounts. Split the accounts over several keys, or use NewOrganizationKeyAccess (KeyPolicyStyle_ORGANIZATION) if they are in one AWS Organization",
			len(accounts), fixed+per*len(accounts), fixed, per, keybudget.ReservedPolicyBytes, MaxKeyPolicyBytes, fit))
	}
	statements := amipolicy.AccountsStatements(a)
	_, per := amipolicy.AccountsCost(a)
	if err := keybudget.Of(provider.EnvOf(scope), props.Key, keyArn).ClaimAccountList(statements, path, len(accounts), per); err != nil {
		fail(err)
	}
	c := constructs.NewConstruct(scope, id)
	sorted := slices.Clone(accounts)
	slices.Sort(sorted)
	k := &accountsKeyAccess{Construct: c, key: props.Key, keyArn: keyArn, accounts: sorted, statements: statements, policy: a}
	k.managed = placeKeySide(c, props.Key, keyArn, statements, "AccountsKeyAccess")
	return k
}

// accountsThatFit is how many accounts a's statements hold in a key policy
// of their own (MaxKeyPolicyBytes, less what is kept for the key's own
// statements).
func accountsThatFit(a amipolicy.Accounts) int {
	return amipolicy.AccountsThatFit(a, MaxKeyPolicyBytes-keybudget.ReservedPolicyBytes)
}

func (k *accountsKeyAccess) KeyPolicyStatements() *[]awsiam.PolicyStatement {
	out := keystatements.ToCDK(k.statements)
	return &out
}
func (k *accountsKeyAccess) KeyPolicyManaged() bool { return k.managed }
func (k *accountsKeyAccess) Key() awskms.IKey       { return k.key }
func (k *accountsKeyAccess) Accounts() *[]*string   { return jsii.Strings(k.accounts...) }

// checkAccountsKeyAccess checks the typed link of a destination of account
// to an AccountsKeyAccess: the value NewAccountsKeyAccess returned, on the
// destination's key, listing the destination's account.
func checkAccountsKeyAccess(props *CrossAccountEncryptedAmiProps, keyArn, account string) error {
	k, ok := props.AccountsKeyAccess.(*accountsKeyAccess)
	if !ok {
		return fmt.Errorf("AccountsKeyAccess: expected the value NewAccountsKeyAccess returned, got %T", props.AccountsKeyAccess)
	}
	if k.keyArn != keyArn {
		return fmt.Errorf("AccountsKeyAccess: it is on the key %s (%s), but Key is %s; they must be the same key", describeKeyArn(k.keyArn), *k.Node().Path(), describeKey(props.Key, keyArn))
	}
	if _, listed := slices.BinarySearch(k.accounts, account); !listed {
		return fmt.Errorf("AccountsKeyAccess: this destination's account %s is not in the Accounts of %s (%d accounts); add %q there", account, *k.Node().Path(), len(k.accounts), account)
	}
	return nil
}

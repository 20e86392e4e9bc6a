// Command basic is the example app: a source account that owns an encrypted
// AMI's KMS key, and destination accounts whose Auto Scaling groups launch
// that AMI.
//
//	npx cdk synth                                   # placeholder accounts
//	npx cdk deploy --all -c sourceAccount=... -c destinationAccount=...
//
// Context keys (all optional): sourceAccount (default 111111111111),
// destinationAccount (default 222222222222), destinations (how many
// destination accounts, default 1: destinationAccount, +1, +2, ...), region
// (default us-east-1), imageId (default ami-0123456789abcdef0),
// organizationId (default none: per-destination statements; set it to use
// organization mode, whose key policy statements keep a constant size),
// keyAccess (default none; "accounts" lists the destination accounts in two
// key policy statements that grow by 30 bytes per account, without an
// organization).
//
// It uses only the library's public API: copy this directory (main.go and
// fleet.go) into a module of your own.
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
)

func main() {
	defer jsii.Close()
	// A construct rejects a bad prop or context value with a panic that
	// names it: print that as one line, without a Go stack trace, and exit
	// 1 before any cloud assembly is written.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(os.Stderr, "synth failed:", r)
			jsii.Close() // os.Exit skips the deferred Close
			os.Exit(1)
		}
	}()
	app := awscdk.NewApp(nil)
	build(app)
	app.Synth(nil)
}

// build adds the source stack (AmiSource) and one destination stack per
// destination account to app: AmiDestination with one destination,
// AmiDestination-<account> with more.
func build(app awscdk.App) {
	region := context(app, "region", "us-east-1")
	imageID := context(app, "imageId", "ami-0123456789abcdef0")
	accounts := destinationAccounts(app)

	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(context(app, "sourceAccount", "111111111111")), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami example: the source account's AMI key"),
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the shared AMI's snapshots"),
		EnableKeyRotation: jsii.Bool(true),
	})
	// The destinations read the key ARN across accounts, through a role
	// CDK adds to this stack: say why cdk-nag's finding on it is accepted.
	nagsuppress.CrossAccountReference(source)

	// Organization mode: two statements of constant size cover every
	// destination, instead of two statements per destination.
	var access encryptedami.OrganizationKeyAccess
	orgID := context(app, "organizationId", "")
	if orgID != "" {
		access = encryptedami.NewOrganizationKeyAccess(source, jsii.String("OrganizationAccess"), &encryptedami.OrganizationKeyAccessProps{
			Key:    key,
			Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String(orgID)},
		})
	}
	// Accounts mode: the destination accounts listed in two statements, 30
	// bytes more per account; no organization needed.
	var accountsAccess encryptedami.AccountsKeyAccess
	switch keyAccess := context(app, "keyAccess", ""); {
	case keyAccess == "accounts" && orgID == "":
		accountsAccess = encryptedami.NewAccountsKeyAccess(source, jsii.String("DestinationAccounts"), &encryptedami.AccountsKeyAccessProps{
			Key:      key,
			Accounts: jsii.Strings(accounts...),
		})
	case keyAccess == "accounts":
		panic(fmt.Errorf("context keyAccess: %q with organizationId %q: choose one of them", keyAccess, orgID))
	case keyAccess != "":
		panic(fmt.Errorf("context keyAccess: expected \"accounts\" or no value, got %q", keyAccess))
	}

	for _, account := range accounts {
		name := "AmiDestination"
		if len(accounts) > 1 {
			name += "-" + account
		}
		destination := newDestinationStack(app, name, &awscdk.StackProps{
			Env:         &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)},
			Description: jsii.String("crossaccountami example: an Auto Scaling group that launches the shared, encrypted AMI"),
		})
		// The grant, its handler and the service-linked role; the key's
		// policy gets this destination's statements (unless access or
		// accountsAccess covers it), and the destination stack deploys after
		// the key's.
		ami := encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key:                   key,
			ImageId:               jsii.String(imageID),
			OrganizationKeyAccess: access,
			AccountsKeyAccess:     accountsAccess,
		})
		newFleet(destination, ami, region)
	}
}

// context reads a cdk context value (-c key=value, cdk.json) as a string,
// or def when it is not set. JSON numbers and booleans in cdk.json read as
// their text.
func context(scope constructs.IConstruct, key, def string) string {
	switch v := scope.Node().TryGetContext(jsii.String(key)).(type) {
	case string:
		if v != "" {
			return v
		}
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return def
}

// destinationAccounts reads context destinations (how many, default 1)
// consecutive account ids from destinationAccount (default 222222222222).
// A bad value panics with the context key and the value, before any stack
// exists.
func destinationAccounts(scope constructs.IConstruct) []string {
	count := context(scope, "destinations", "1")
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		panic(fmt.Errorf("context destinations: expected a positive integer, got %q", count))
	}
	first := context(scope, "destinationAccount", "222222222222")
	base, err := strconv.ParseInt(first, 10, 64)
	if err != nil || len(first) != 12 {
		panic(fmt.Errorf("context destinationAccount: expected a 12-digit account id, got %q", first))
	}
	accounts := make([]string, n)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%012d", base+int64(i))
	}
	return accounts
}

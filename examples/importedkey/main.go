// Command importedkey is the example app for an AMI and a KMS key that the
// app does not own: an image pipeline's key, created long ago outside CDK,
// imported by ARN. The source stack (in the key's account) keeps the
// destinations' statements in that key's policy and shares the AMI; each
// destination stack launches it. One `cdk deploy --all` deploys everything,
// the source stack first.
//
//	npx cdk synth --app 'go run ./examples/importedkey'
//	npx cdk deploy --all --app 'go run ./examples/importedkey' -c keyArn=arn:aws:kms:... -c imageId=ami-...
//
// Context keys (all optional): keyArn (default a placeholder key in account
// 111111111111, us-east-1; the source stack's account and region are the
// key's), imageId (default ami-0123456789abcdef0), destinationAccount
// (default 222222222222), destinations (default 1: destinationAccount, +1,
// ...), shareSnapshots (default false).
//
// It uses only the library's public API: copy this directory (main.go and
// fleet.go) into a module of your own.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/amipermission"
	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
)

// defaultKeyArn is a placeholder: pass the real key with -c keyArn=...
const defaultKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

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
// destination account (AmiDestination, or AmiDestination-<account> with more
// than one) to app.
func build(app awscdk.App) {
	keyArn := context(app, "keyArn", defaultKeyArn)
	imageID := context(app, "imageId", "ami-0123456789abcdef0")
	// The source stack deploys to the key's account and region:
	// arn:<partition>:kms:<region>:<account>:key/<key id>. (The constructs
	// check the rest: a key ARN, not an alias.)
	arn := strings.Split(keyArn, ":")
	if len(arn) != 6 || arn[2] != "kms" {
		panic(fmt.Errorf("context keyArn: expected a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>), got %q", keyArn))
	}
	region, sourceAccount := arn[3], arn[4]
	accounts := destinationAccounts(app)
	shareSnapshots, err := strconv.ParseBool(context(app, "shareSnapshots", "false"))
	if err != nil {
		panic(fmt.Errorf("context shareSnapshots: expected true or false, got %q", context(app, "shareSnapshots", "")))
	}

	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(sourceAccount), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami example: statements in an existing key's policy, and the AMI shared"),
	})
	// The AMI belongs to the source account: share it with the destinations
	// (and its snapshots, with shareSnapshots).
	amipermission.NewLaunchPermission(source, jsii.String("AmiSharing"), &amipermission.LaunchPermissionProps{
		ImageId:        jsii.String(imageID),
		Accounts:       jsii.Strings(accounts...),
		ShareSnapshots: jsii.Bool(shareSnapshots),
	})

	for _, account := range accounts {
		name := "AmiDestination"
		if len(accounts) > 1 {
			name += "-" + account
		}
		destination := newDestinationStack(app, name, &awscdk.StackProps{
			Env:         &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)},
			Description: jsii.String("crossaccountami example: an Auto Scaling group that launches the shared AMI of an imported key"),
		})
		key := awskms.Key_FromKeyArn(destination, jsii.String("SourceKey"), jsii.String(keyArn))
		// The source stack keeps this destination's statements in the key
		// policy (KeyPolicyScope); the destination deploys after it
		// (KeyPolicyScope adds the dependency, stated here as well for the
		// reader).
		ami := encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
			Key:            key,
			ImageId:        jsii.String(imageID),
			KeyPolicyScope: source,
		})
		destination.AddStackDependency(source, jsii.String("the key policy statements and the launch permission come first"))
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

// Package app builds the importedkey example's stacks: an AMI and a KMS key
// that the app does not own (an image pipeline's key, created long ago
// outside CDK, imported by ARN). The source stack (in the key's account)
// keeps the destinations' statements in that key's policy and shares the
// AMI; each destination stack launches it. examples/importedkey/main.go runs
// it as a CDK app; the tests build it in-process (cdk-nag).
package app

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/amipermission"
	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/examples/internal/fleet"
	"github.com/crossaccountami/crossaccountami/examples/internal/run"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

// DefaultKeyArn is a placeholder: pass the real key with -c keyArn=...
const DefaultKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// Config is what the example can be told through cdk context.
type Config struct {
	KeyArn, ImageId     string
	DestinationAccounts []string
	ShareSnapshots      bool
	// Derived from KeyArn.
	SourceAccount, Region string
}

// ConfigFromContext reads the example's cdk context, with defaults.
func ConfigFromContext(scope constructs.Construct) Config {
	ctx := func(key, def string) string { return run.Context(scope, key, def) }
	cfg := Config{KeyArn: ctx("keyArn", DefaultKeyArn), ImageId: ctx("imageId", "ami-0123456789abcdef0")}
	arn, err := awsid.ParseKeyARN(cfg.KeyArn)
	if err != nil {
		panic(fmt.Errorf("context keyArn: %v", err))
	}
	cfg.SourceAccount, cfg.Region = arn.Account, arn.Region
	cfg.DestinationAccounts = run.DestinationAccounts(scope)
	if cfg.ShareSnapshots, err = strconv.ParseBool(ctx("shareSnapshots", "false")); err != nil {
		panic(fmt.Errorf("context shareSnapshots: expected true or false, got %q", ctx("shareSnapshots", "")))
	}
	return cfg
}

// New adds the source stack (AmiSource) and one destination stack per
// destination account (AmiDestination, or AmiDestination-<account> with more
// than one) to app.
func New(app awscdk.App, cfg Config) {
	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(cfg.SourceAccount), Region: jsii.String(cfg.Region)},
		Description: jsii.String("crossaccountami example: statements in an existing key's policy, and the AMI shared"),
	})
	amipermission.NewLaunchPermission(source, jsii.String("AmiSharing"), &amipermission.LaunchPermissionProps{
		ImageId:        jsii.String(cfg.ImageId),
		Accounts:       jsii.Strings(cfg.DestinationAccounts...),
		ShareSnapshots: jsii.Bool(cfg.ShareSnapshots),
	})
	for _, account := range cfg.DestinationAccounts {
		name := "AmiDestination"
		if len(cfg.DestinationAccounts) > 1 {
			name += "-" + account
		}
		newDestination(app, source, name, account, cfg)
	}
}

func newDestination(app awscdk.App, source awscdk.Stack, name, account string, cfg Config) {
	destination := fleet.NewStack(app, name, &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(cfg.Region)},
		Description: jsii.String("crossaccountami example: an Auto Scaling group that launches the shared AMI of an imported key"),
	})
	key := awskms.Key_FromKeyArn(destination, jsii.String("SourceKey"), jsii.String(cfg.KeyArn))
	// The source stack keeps this destination's statements in the key
	// policy; the destination deploys after it (KeyPolicyScope adds the
	// dependency, stated here as well for the reader).
	ami := encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key:            key,
		ImageId:        jsii.String(cfg.ImageId),
		KeyPolicyScope: source,
	})
	destination.AddStackDependency(source, jsii.String("the key policy statements and the launch permission come first"))

	fleet.New(destination, ami, cfg.Region)
}

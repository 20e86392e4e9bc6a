// Package app builds the basic example's stacks: a source account that owns
// an encrypted AMI's KMS key, and destination accounts whose Auto Scaling
// groups launch that AMI. examples/basic/main.go runs it as a CDK app; the
// tests build it in-process (cdk-nag).
package app

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
	"github.com/crossaccountami/crossaccountami/examples/internal/fleet"
	"github.com/crossaccountami/crossaccountami/examples/internal/run"
)

// Config is what the example can be told through cdk context.
type Config struct {
	Region, SourceAccount, ImageId string
	DestinationAccounts            []string
	OrganizationId                 string
}

// ConfigFromContext reads the example's cdk context, with defaults.
func ConfigFromContext(scope constructs.Construct) Config {
	return Config{
		Region:              run.Context(scope, "region", "us-east-1"),
		SourceAccount:       run.Context(scope, "sourceAccount", "111111111111"),
		ImageId:             run.Context(scope, "imageId", "ami-0123456789abcdef0"),
		DestinationAccounts: run.DestinationAccounts(scope),
		OrganizationId:      run.Context(scope, "organizationId", ""),
	}
}

// New adds the source stack and one destination stack per
// destination account to app. With one destination its stack is named
// AmiDestination; with more, AmiDestination-<account>.
func New(app awscdk.App, cfg Config) {
	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(cfg.SourceAccount), Region: jsii.String(cfg.Region)},
		Description: jsii.String("crossaccountami example: the source account's AMI key"),
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the shared AMI's snapshots"),
		EnableKeyRotation: jsii.Bool(true),
	})
	// The destinations read the key ARN across accounts.
	nagsuppress.CrossAccountReference(source)
	var access encryptedami.OrganizationKeyAccess
	if cfg.OrganizationId != "" {
		access = encryptedami.NewOrganizationKeyAccess(source, jsii.String("OrganizationAccess"), &encryptedami.OrganizationKeyAccessProps{
			Key:            key,
			OrganizationId: jsii.String(cfg.OrganizationId),
		})
	}
	for _, account := range cfg.DestinationAccounts {
		name := "AmiDestination"
		if len(cfg.DestinationAccounts) > 1 {
			name += "-" + account
		}
		newDestination(app, name, account, key, access, cfg)
	}
}

// newDestination adds a destination stack. With access (organization
// mode) the key's statements cover it; without, it adds its own.
func newDestination(app awscdk.App, name, account string, key awskms.IKey, access encryptedami.OrganizationKeyAccess, cfg Config) {
	destination := fleet.NewStack(app, name, &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(cfg.Region)},
		Description: jsii.String("crossaccountami example: an Auto Scaling group that launches the shared, encrypted AMI"),
	})
	ami := encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key:                   key,
		ImageId:               jsii.String(cfg.ImageId),
		OrganizationKeyAccess: access,
	})

	fleet.New(destination, ami, cfg.Region)
}

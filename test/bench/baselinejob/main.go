// Command baselinejob does exactly the job of the hand-written baselines in
// ../shared/baselines (go-baseline, ts-baseline), with one change: the
// destination's hand-written grant (a fixed-name role and an
// AwsCustomResource calling KMS CreateGrant/RevokeGrant) is replaced by
// encryptedami.NewCrossAccountEncryptedAmi. scripts/bench-synth.sh times it
// next to the baselines, and scripts/jsii-calls.sh counts its jsii calls per
// destination. It has no tests: `go test ./...` only compiles it.
//
// The same as the baselines:
//   - N = DESTINATIONS (default 1) destination accounts 222222222222, +1, ...;
//     source account 111111111111; us-east-1.
//   - Source stack AmiShareSource: a KMS key with rotation and a description.
//   - Destination stacks AmiShareDestination-<account>: a public-subnet VPC
//     with 2 AZs and no NAT, a launch template (ami-0123456789abcdef0,
//     t3.micro, 8 GB encrypted gp3 root volume on the source key imported by
//     its literal ARN with awskms.Key_FromKeyArn) and an ASG of 1 to 2
//     instances that depends on the grant (ami.GrantDependency()). That code
//     is copied from go-baseline/destination.go. Each destination stack
//     depends on the source stack, as in the baselines.
//   - Context: read from CDK_CONTEXT_JSON as the baselines' measure.sh gives
//     it (tools/context.py). The App only gets defaults for the keys
//     `availability-zones:account=<destination>:region=us-east-1` (the six
//     zones context.py gives), which CDK_CONTEXT_JSON overrides, so the app
//     also synthesizes offline, with no lookup, without that context.
//
// The construct is given the imported key (the same Key_FromKeyArn object
// as the launch template), so it edits no key policy itself; the source
// stack adds each destination's ami.KeyPolicyStatements() to its key with
// key.AddToResourcePolicy, as the baselines add their hand-written
// statements. Those statements are plain (literal ARNs, no tokens): they need
// nothing of the destination stack. For an imported key the construct also
// records a synth warning (crossaccountami:key-policy-not-managed) in the
// destination stack's metadata; the app prints nothing.
//
// One key policy holds about 23 destinations' scoped statements (KMS limits
// a key policy to 32 KB, and the construct fails synth beyond that), so from
// N = 20 on the app uses organization mode: encryptedami.NewOrganizationKeyAccess
// (organization o-abcdefghij) on the source key and
// encryptedami.KeyPolicyStyle_ORGANIZATION on every destination, whose key
// policy then keeps a constant size.
//
// Unlike the baselines, each destination stack also gets what the construct
// brings: the Auto Scaling service-linked role resource, the grant custom
// resource and one Go Lambda handler (with its role) per stack, built once
// and cached by internal/handlerbuild; warm that cache with one run before
// timing.
//
//	DESTINATIONS=2 CDK_OUTDIR=/tmp/out go run ./test/bench/baselinejob
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
)

// Fixed values, as in go-baseline/shared.go.
const (
	region                  = "us-east-1"
	sourceAccount           = "111111111111"
	firstDestinationAccount = 222222222222

	// The source key as the destination sees it: a literal ARN, no cross-stack reference.
	sourceKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

	amiID = "ami-0123456789abcdef0"

	// From this many destinations on, organization mode (see the package doc).
	organizationModeFrom = 20
	organizationID       = "o-abcdefghij"
)

func main() {
	accounts, err := destinationAccounts()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	organization := len(accounts) >= organizationModeFrom

	defer jsii.Close()
	app := awscdk.NewApp(&awscdk.AppProps{Context: availabilityZoneDefaults(accounts)})

	source, key := newSourceStack(app, "AmiShareSource", organization)
	for _, account := range accounts {
		dest, ami := newDestinationStack(app, "AmiShareDestination-"+account, account, organization)
		dest.AddStackDependency(source, jsii.String("the source key policy must allow the grant first"))
		if !organization {
			for _, statement := range *ami.KeyPolicyStatements() {
				key.AddToResourcePolicy(statement, nil)
			}
		}
	}

	app.Synth(nil)
}

// newSourceStack is the account that owns the encrypted AMI and its KMS key.
func newSourceStack(scope constructs.Construct, id string, organization bool) (awscdk.Stack, awskms.Key) {
	stack := awscdk.NewStack(scope, jsii.String(id), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String(sourceAccount), Region: jsii.String(region)},
	})
	key := awskms.NewKey(stack, jsii.String("AmiKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the shared AMI snapshots"),
		EnableKeyRotation: jsii.Bool(true),
	})
	if organization {
		encryptedami.NewOrganizationKeyAccess(stack, jsii.String("OrganizationAccess"), &encryptedami.OrganizationKeyAccessProps{
			Key:    key,
			Target: &encryptedami.OrganizationTarget{OrganizationId: jsii.String(organizationID)},
		})
	}
	return stack, key
}

// newDestinationStack is an account that launches instances from the shared,
// encrypted AMI. The VPC, launch template and ASG are go-baseline's.
func newDestinationStack(scope constructs.Construct, id, account string, organization bool) (awscdk.Stack, encryptedami.CrossAccountEncryptedAmi) {
	stack := awscdk.NewStack(scope, jsii.String(id), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)},
	})

	sourceKey := awskms.Key_FromKeyArn(stack, jsii.String("SourceKey"), jsii.String(sourceKeyArn))
	style := encryptedami.KeyPolicyStyle_SCOPED
	if organization {
		style = encryptedami.KeyPolicyStyle_ORGANIZATION
	}
	// Replaces the baseline's GrantCreatorRole and Grant (AwsCustomResource).
	ami := encryptedami.NewCrossAccountEncryptedAmi(stack, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key:            sourceKey,
		ImageId:        jsii.String(amiID),
		KeyPolicyStyle: style,
	})

	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		MaxAzs:      jsii.Number(2),
		NatGateways: jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("Public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
		},
	})

	launchTemplate := awsec2.NewLaunchTemplate(stack, jsii.String("LaunchTemplate"), &awsec2.LaunchTemplateProps{
		MachineImage: awsec2.MachineImage_GenericLinux(&map[string]*string{region: jsii.String(amiID)}, nil),
		InstanceType: awsec2.NewInstanceType(jsii.String("t3.micro")),
		BlockDevices: &[]*awsec2.BlockDevice{{
			DeviceName: jsii.String("/dev/xvda"),
			Volume: awsec2.BlockDeviceVolume_Ebs(jsii.Number(8), &awsec2.EbsDeviceOptions{
				Encrypted:  jsii.Bool(true),
				KmsKey:     sourceKey,
				VolumeType: awsec2.EbsDeviceVolumeType_GP3,
			}),
		}},
	})

	asg := awsautoscaling.NewAutoScalingGroup(stack, jsii.String("Asg"), &awsautoscaling.AutoScalingGroupProps{
		Vpc:            vpc,
		VpcSubnets:     &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		LaunchTemplate: launchTemplate,
		MinCapacity:    jsii.Number(1),
		MaxCapacity:    jsii.Number(2),
	})
	// The grant must exist before the ASG launches from the encrypted AMI.
	asg.Node().AddDependency(ami.GrantDependency())

	return stack, ami
}

// destinationAccounts returns DESTINATIONS (default 1) accounts: 222222222222, 222222222223, ...
func destinationAccounts() ([]string, error) {
	raw, ok := os.LookupEnv("DESTINATIONS")
	if !ok {
		raw = "1"
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("DESTINATIONS must be a positive integer, got %q", raw)
	}
	accounts := make([]string, 0, n)
	for i := 0; i < n; i++ {
		accounts = append(accounts, fmt.Sprintf("%012d", firstDestinationAccount+i))
	}
	return accounts, nil
}

// availabilityZoneDefaults is the availability-zone context that
// tools/context.py gives for each destination account. The App takes it as
// defaults, under CDK_CONTEXT_JSON.
func availabilityZoneDefaults(accounts []string) *map[string]interface{} {
	zones := []string{}
	for _, z := range "abcdef" {
		zones = append(zones, region+string(z))
	}
	ctx := make(map[string]interface{}, len(accounts))
	for _, account := range accounts {
		ctx["availability-zones:account="+account+":region="+region] = zones
	}
	return &ctx
}

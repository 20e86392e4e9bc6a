// Command organization is the example app for an AMI factory that serves a
// whole AWS Organization: every account of two OUs, now and later, in two
// regions, may launch the shared, encrypted AMI from its Auto Scaling
// groups, and nobody runs cdk deploy for a new account.
//
//	npx cdk synth --app 'go run ./examples/organization'          # placeholder ids
//	npx cdk deploy --all --app 'go run ./examples/organization' \
//	  -c managementAccount=... -c sourceAccount=... -c organizationId=o-... \
//	  -c organizationalUnits=ou-...,ou-... \
//	  -c keyArns=arn:aws:kms:us-east-1:...:key/...,arn:aws:kms:eu-west-1:...:key/... \
//	  [-c cutOffAccounts=...,...]   # accounts the key owner shuts out
//
// It makes, in the source account (which owns the AMI's keys, one per
// region, imported by ARN from an image pipeline), a stack per region that
// keeps the organization's constant-size statements in that region's key
// policy; and, in the management account (or a delegated administrator,
// -c callAs=DELEGATED_ADMIN), a StackSet that gives every account of the
// OUs and of the OUs below them the grant its Auto Scaling groups need,
// plus a stack per region that holds the handler code the StackSet's
// stacks read. One OrganizationTarget feeds both sides, so the key policies
// let in exactly the accounts the StackSet reaches.
//
// This file uses only the library's public API: copy it into a module of
// your own.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/organization"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	if err := build(app); err != nil {
		fmt.Fprintln(os.Stderr, "organization example:", err)
		os.Exit(1)
	}
	app.Synth(nil)
}

// build adds the example's stacks to app, from its context (or defaults).
func build(app awscdk.App) (err error) {
	// A construct rejects a bad prop with a panic naming it: report it as
	// an error, before anything is written.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	management := context(app, "managementAccount", "999999999999")
	source := context(app, "sourceAccount", "111111111111")
	// The OUs (or the root) whose accounts, and those of every OU below
	// them, launch the AMI.
	target := &encryptedami.OrganizationTarget{
		OrganizationId:        jsii.String(context(app, "organizationId", "o-abcdefghij")),
		OrganizationalUnitIds: jsii.Strings(list(context(app, "organizationalUnits", "ou-ab12-11111111,ou-ab12-22222222"))...),
	}
	keyArns := list(context(app, "keyArns",
		"arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab,"+
			"arn:aws:kms:eu-west-1:111111111111:key/2234abcd-12ab-34cd-56ef-1234567890ab"))

	// The source side: each region's key policy lets the OUs' grant
	// handlers create the Auto Scaling grant, with statements of constant
	// size however many accounts join.
	var regions []string
	var keyAccess []encryptedami.OrganizationKeyAccess
	for _, arn := range keyArns {
		parts := strings.Split(arn, ":")
		if len(parts) < 6 {
			return fmt.Errorf("context keyArns: expected KMS key ARNs, got %q", arn)
		}
		region := parts[3]
		regions = append(regions, region)
		stack := awscdk.NewStack(app, jsii.String("AmiKeyAccess-"+region), &awscdk.StackProps{
			Env:         &awscdk.Environment{Account: jsii.String(source), Region: jsii.String(region)},
			Description: jsii.String("crossaccountami example: the organization's statements in the policy of the AMI key of " + region),
		})
		key := awskms.Key_FromKeyArn(stack, jsii.String("AmiKey"), jsii.String(arn))
		keyAccess = append(keyAccess, encryptedami.NewOrganizationKeyAccess(stack, jsii.String("OrganizationAccess"), &encryptedami.OrganizationKeyAccessProps{
			Key:    key,
			Target: target,
		}))
		// The key owner's durable cut-off (-c cutOffAccounts=...): an
		// explicit Deny for every principal of these accounts, which no
		// scheduled check can undo. Deploy it first, then revoke their
		// grants (SECURITY.md, "Revoking everything").
		if cutOff := list(context(app, "cutOffAccounts", "")); len(cutOff) > 0 {
			encryptedami.NewKeyAccessCutOff(stack, jsii.String("CutOff"), &encryptedami.KeyAccessCutOffProps{
				Key:      key,
				Accounts: jsii.Strings(cutOff...),
			})
		}
	}

	// The destination side, for every account of the OUs: one StackSet.
	// Given the key access, it puts each region's grants on that region's
	// key and deploys after the statements.
	stack := awscdk.NewStack(app, jsii.String("AmiGrants"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(management), Region: jsii.String(regions[0])},
		Description: jsii.String("crossaccountami example: the StackSet that gives every account of the OUs its AMI grant"),
	})
	organization.NewDeployment(stack, jsii.String("AmiGrants"), &organization.DeploymentProps{
		Target:    target,
		Regions:   jsii.Strings(regions...),
		KeyAccess: &keyAccess,
		CallAs:    organization.CallAs(context(app, "callAs", string(organization.CallAs_SELF))),
	})
	return nil
}

// context reads a string from the cdk context (-c key=value, cdk.json), or def.
func context(scope constructs.IConstruct, key, def string) string {
	if v, ok := scope.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}

// list splits a comma-separated context value.
func list(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

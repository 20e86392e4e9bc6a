package test

import (
	"fmt"
	"os"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/organization"
	"github.com/crossaccountami/crossaccountami/internal/testenv/policyeval"
)

// TestOrganizationLauncherPolicy: a StackSet for accounts that launch with
// EC2 Fleets creates, in a target account, the grant for that account's
// AWSServiceRoleForEC2Fleet, and AWS would allow it on a key whose
// organization statements list EC2_FLEET, and deny it on one whose
// statements do not (Auto Scaling only). The second key is given by
// KeyArns, as a key of another app would be: NewDeployment checks the
// Launchers of a KeyAccess at synth, and so would refuse it. One synth;
// the templates pass cfn-lint.
func TestOrganizationLauncherPolicy(t *testing.T) {
	t.Parallel()
	// GIVEN a key per region, whose statements let in EC2 Fleets in
	// us-east-1 and not in eu-west-1
	out, err := os.MkdirTemp(scratch, "orglaunchers")
	if err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
	target := &encryptedami.OrganizationTarget{OrganizationId: jsii.String(exampleOrgID), OrganizationalUnitIds: jsii.Strings("ou-ab12-11111111", "ou-ab12-22222222")}
	withFleet := map[string]bool{"us-east-1": true, "eu-west-1": false}
	keyArns := map[string]*string{}
	for i, r := range []string{"us-east-1", "eu-west-1"} {
		stack := awscdk.NewStack(app, jsii.String("AmiKeyAccess-"+r), &awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String(r)}})
		keyArns[r] = jsii.String(fmt.Sprintf("arn:aws:kms:%s:111111111111:key/%d234abcd-12ab-34cd-56ef-1234567890ab", r, i+1))
		props := &encryptedami.OrganizationKeyAccessProps{Key: awskms.Key_FromKeyArn(stack, jsii.String("Key"), keyArns[r]), Target: target}
		if withFleet[r] {
			props.Launchers = &[]encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EC2_FLEET}
		}
		encryptedami.NewOrganizationKeyAccess(stack, jsii.String("Access"), props)
	}
	// AND a StackSet whose accounts launch with Auto Scaling groups and EC2 Fleets
	management := awscdk.NewStack(app, jsii.String("AmiGrants"), &awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String("999999999999"), Region: jsii.String("us-east-1")}})
	organization.NewDeployment(management, jsii.String("AmiGrants"), &organization.DeploymentProps{
		Target: target, Regions: jsii.Strings("us-east-1", "eu-west-1"), KeyArns: &keyArns,
		Launchers: &[]encryptedami.LauncherKind{encryptedami.LauncherKind_AUTO_SCALING, encryptedami.LauncherKind_EC2_FLEET},
	})
	app.Synth(nil)
	a := readAssembly(t, out)
	d := newDeployment(t, "organization-launchers", a)

	// WHEN the StackSet's template is deployed in a target account of each region
	account := organizationAccounts[0]
	fleetSLR := "arn:aws:iam::" + account.account + ":role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet"
	var cases []policyeval.Case
	sets := d.stackSets(t)
	if len(sets) != 1 {
		t.Fatalf("StackSets %v, want one", sets)
	}
	for set, regions := range sets {
		for _, region := range regions {
			grants := d.grantsIn(t, set, deployEnv{"aws", account.account, region, "StackSet-AmiGrants-0c8a1e5e-7d2b-4f3a-9c61-2b5d8e9f0a14"}, a.StackSets[set])
			var fleet *deployedGrant
			for i, g := range grants {
				if g.grantee == fleetSLR {
					fleet = &grants[i]
				}
			}
			if len(grants) != 2 || fleet == nil {
				t.Fatalf("%s in %s: grants %+v, want the Auto Scaling role's and %s", set, region, grants, fleetSLR)
			}
			kp, err := d.keyPolicyOf(fleet.keyArn)
			if err != nil {
				t.Fatalf("%s: %v", fleet.where, err)
			}
			dest := destination{label: fmt.Sprintf("organization-launchers %s, %s (%s)", region, account.label, account.account), g: *fleet, m: account.member, keyPolicy: kp}
			fleetRole := account.principal(fleetSLR)
			// THEN AWS allows the EC2 Fleet grant, and the role's use of
			// the key, exactly where the key's statements list EC2_FLEET
			if withFleet[region] {
				cases = append(cases,
					dest.newCase("handler creates the EC2 Fleet role's grant", dest.createGrant(dest.handler(), fleet.grantee, fleet.retiring, fleet.operations), fleet.identity, policyeval.Allowed, "the key's statements list EC2_FLEET"),
					dest.keyPolicyCase("the EC2 Fleet role decrypts", dest.kmsRequest(fleetRole, "kms:Decrypt"), policyeval.KeyPolicyAllows, "the key's statements list EC2_FLEET"),
					dest.newCase("handler creates a grant for the Spot Fleet role", dest.createGrant(dest.handler(), "arn:aws:iam::"+account.account+":role/aws-service-role/spotfleet.amazonaws.com/AWSServiceRoleForEC2SpotFleet", fleet.retiring, fleet.operations), fleet.identity, policyeval.Denied, "SPOT_FLEET is not a launcher"),
				)
			} else {
				cases = append(cases,
					dest.newCase("handler creates the EC2 Fleet role's grant", dest.createGrant(dest.handler(), fleet.grantee, fleet.retiring, fleet.operations), fleet.identity, policyeval.Denied, "the key's statements let in Auto Scaling only"),
					dest.keyPolicyCase("the EC2 Fleet role decrypts", dest.kmsRequest(fleetRole, "kms:Decrypt"), policyeval.KeyPolicyDoesNotAllow, "the key's statements let in Auto Scaling only"),
				)
			}
		}
	}
	policyeval.Check(t, cases)
	cfnLint(t, a)
}

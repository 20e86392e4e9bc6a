package test

import (
	"fmt"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
	"github.com/crossaccountami/crossaccountami/internal/testenv/policyeval"
)

// Launcher policy evaluation: the key policy amipolicy writes for a
// destination's launchers, asked by the engine whether AWS would allow each
// launcher's principal to use the key and the grant creator to create
// exactly each launcher's grant, and nothing for the other launchers'
// principals or any other role. Key-policy answers only: the key owner
// cannot rely on the destination's IAM policies (destination.newCase).
// No example app has launchers yet, so the statements come from amipolicy
// directly, as the construct places them (TestManyLaunchers checks the
// construct places exactly these).

const (
	launcherDest    = "222222222222"
	launcherKeyArn  = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	launcherCreator = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-D-0123456789"
)

func slrARN(slr launcher.ServiceLinkedRole, account, suffix string) string {
	return slr.ARN("aws", account, suffix)
}

// launcherKeyPolicy is a key policy with the key owner's default statement
// and stmts.
func launcherKeyPolicy(stmts []amipolicy.Statement) map[string]interface{} {
	doc := defaultKeyPolicy("111111111111")
	list := doc["Statement"].([]interface{})
	for _, s := range stmts {
		list = append(list, s.JSON())
	}
	doc["Statement"] = list
	return doc
}

func keyRequest(p policyeval.Principal, action string, ctx map[string]interface{}) policyeval.Request {
	c := map[string]interface{}{"kms:CallerAccount": p.Account()}
	for k, v := range ctx {
		c[k] = v
	}
	return policyeval.Request{Principal: p, Action: action, Resource: launcherKeyArn, Context: c}
}

func grantRequest(creator policyeval.Principal, grantee string) policyeval.Request {
	return keyRequest(creator, "kms:CreateGrant", map[string]interface{}{
		"kms:GranteePrincipal": grantee, "kms:RetiringPrincipal": creator.RoleArn, "kms:GrantOperations": grantspec.AutoScalingOperations})
}

func TestLauncherPolicyEvaluation(t *testing.T) {
	t.Parallel()
	karpenter := "arn:aws:iam::" + launcherDest + ":role/karpenter/KarpenterController"
	asg := slrARN(launcher.AutoScalingSLR, launcherDest, "")
	fleet := slrARN(launcher.EC2FleetSLR, launcherDest, "")
	// Each launcher alone, and three together (Auto Scaling, EC2 Fleet, a
	// role); every principal a destination could use, to ask about each.
	everyPrincipal := []string{asg, slrARN(launcher.AutoScalingSLR, launcherDest, "team"), fleet,
		slrARN(launcher.SpotFleetSLR, launcherDest, ""), slrARN(launcher.SpotSLR, launcherDest, ""), karpenter,
		"arn:aws:iam::" + launcherDest + ":role/KarpenterController", // same name, other path
		adminOf(launcherDest), slrARN(launcher.EC2FleetSLR, strangerAccount, "")}
	sets := map[string][]launcher.Launcher{
		"AUTO_SCALING":                         {{Kind: launcher.AutoScaling}},
		"AUTO_SCALING team":                    {{Kind: launcher.AutoScaling, SLRSuffix: "team"}},
		"EKS_MANAGED_NODE_GROUP":               {{Kind: launcher.EKSManagedNodeGroup}},
		"EC2_FLEET":                            {{Kind: launcher.EC2Fleet}},
		"SPOT_FLEET":                           {{Kind: launcher.SpotFleet}},
		"SPOT":                                 {{Kind: launcher.Spot}},
		"ROLE karpenter":                       {{Kind: launcher.Role, RoleARN: karpenter}},
		"AUTO_SCALING + EC2_FLEET + karpenter": {{Kind: launcher.AutoScaling}, {Kind: launcher.EC2Fleet}, {Kind: launcher.Role, RoleARN: karpenter}},
	}
	creator := policyeval.Principal{RoleArn: launcherCreator}
	var cases []policyeval.Case
	for _, name := range keys(sets) {
		d := amipolicy.Destination{Partition: "aws", Account: launcherDest, GrantCreatorArn: launcherCreator, Launchers: sets[name]}
		kp := launcherKeyPolicy(amipolicy.Statements(d, amipolicy.Scoped))
		mine := map[string]bool{}
		for _, g := range d.Grantees() {
			mine[g] = true
		}
		for _, p := range everyPrincipal {
			want, why := policyeval.KeyPolicyDoesNotAllow, "not a launcher of this destination"
			if mine[p] {
				want, why = policyeval.KeyPolicyAllows, "a launcher's principal"
			}
			principal := policyeval.Principal{RoleArn: p}
			cases = append(cases,
				policyeval.Case{Name: fmt.Sprintf("%s: %s decrypts", name, p), Request: keyRequest(principal, "kms:Decrypt", nil), KeyPolicy: kp, WantKeyPolicy: want, Why: why},
				policyeval.Case{Name: fmt.Sprintf("%s: %s generates a data key without plaintext", name, p), Request: keyRequest(principal, "kms:GenerateDataKeyWithoutPlaintext", nil), KeyPolicy: kp, WantKeyPolicy: want, Why: why},
				policyeval.Case{Name: fmt.Sprintf("%s: the grant creator creates a grant for %s", name, p), Request: grantRequest(creator, p), KeyPolicy: kp, WantKeyPolicy: want, Why: why},
				// The launcher's principal itself, and any other role of the
				// account, may not create grants by policy.
				policyeval.Case{Name: fmt.Sprintf("%s: %s creates its own grant by policy", name, p), Request: grantRequest(principal, p), KeyPolicy: kp, WantKeyPolicy: policyeval.KeyPolicyDoesNotAllow, Why: "CreateGrant by the grant creator only"},
			)
		}
	}

	// Organization: Auto Scaling, EKS and Spot Fleet, and the role
	// karpenter/KarpenterController of every account.
	org := amipolicy.Organization{Target: orgtarget.Target{OrganizationID: exampleOrgID}, Partition: "aws",
		GrantCreatorPattern: "arn:aws:iam::*:role/crossaccountami/*",
		Launchers:           []launcher.Kind{launcher.AutoScaling, launcher.EKSManagedNodeGroup, launcher.SpotFleet},
		RoleNames:           []string{"karpenter/KarpenterController"}}
	kp := launcherKeyPolicy(amipolicy.OrganizationStatements(org))
	in := member{"333333333333", exampleOrgID, exampleOU1}
	orgCreator := in.principal("arn:aws:iam::333333333333:role/crossaccountami/GrantHandler-D-0123456789")
	for _, tc := range []struct {
		principal string
		want      policyeval.KeyPolicyWant
		why       string
	}{
		{slrARN(launcher.AutoScalingSLR, in.account, ""), policyeval.KeyPolicyAllows, "Auto Scaling (and EKS)"},
		{slrARN(launcher.SpotFleetSLR, in.account, ""), policyeval.KeyPolicyAllows, "Spot Fleet"},
		{"arn:aws:iam::333333333333:role/karpenter/KarpenterController", policyeval.KeyPolicyAllows, "the role name of every account"},
		{slrARN(launcher.EC2FleetSLR, in.account, ""), policyeval.KeyPolicyDoesNotAllow, "EC2 Fleet is not among the organization's launchers"},
		{"arn:aws:iam::333333333333:role/KarpenterController", policyeval.KeyPolicyDoesNotAllow, "the same name on another path"},
		{adminOf(in.account), policyeval.KeyPolicyDoesNotAllow, "any other role"},
	} {
		cases = append(cases,
			policyeval.Case{Name: "organization: " + tc.principal + " decrypts", Request: keyRequest(in.principal(tc.principal), "kms:Decrypt", nil), KeyPolicy: kp, WantKeyPolicy: tc.want, Why: tc.why},
			policyeval.Case{Name: "organization: the grant creator creates a grant for " + tc.principal, Request: grantRequest(orgCreator, tc.principal), KeyPolicy: kp, WantKeyPolicy: tc.want, Why: tc.why})
	}
	// A creator may name only its own account's launcher.
	cases = append(cases,
		policyeval.Case{Name: "organization: the grant creator creates a grant for another account's karpenter role",
			Request: grantRequest(orgCreator, "arn:aws:iam::444444444444:role/karpenter/KarpenterController"), KeyPolicy: kp,
			WantKeyPolicy: policyeval.KeyPolicyDoesNotAllow, Why: "${aws:PrincipalAccount}: its own account only"},
		policyeval.Case{Name: "organization: the karpenter role of an account outside the organization decrypts",
			Request: keyRequest(member{account: strangerAccount}.principal("arn:aws:iam::"+strangerAccount+":role/karpenter/KarpenterController"), "kms:Decrypt", nil), KeyPolicy: kp,
			WantKeyPolicy: policyeval.KeyPolicyDoesNotAllow, Why: "not in the organization"})
	t.Logf("%d cases", len(cases))
	policyeval.Check(t, cases)
}

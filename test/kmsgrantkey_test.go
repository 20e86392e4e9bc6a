package test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/kmsgrant"
	"github.com/crossaccountami/crossaccountami/internal/testenv/policyeval"
)

// karpenterController is the grantee of TestGrantOnAKeyOfAnotherAccount:
// the role Karpenter launches instances as (CreateFleet type instant).
const karpenterController = "arn:aws:iam::222222222222:role/karpenter/KarpenterController"

// karpenterOperations are the operations such a grant gives: what EC2 asks
// of the key when it launches an instance from an AMI encrypted with it.
var karpenterOperations = []string{"Decrypt", "DescribeKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"}

// TestGrantOnAKeyOfAnotherAccount (issue 19): kmsgrant.NewGrant, tried as a
// new user would for a Karpenter controller role, on a key of another stack
// and account of the app. The key's policy gets exactly the statement the
// grant's handler needs, the grant's stack deploys after the key's, and, as
// AWS would evaluate the policies, the handler may create exactly that
// grant and no other. One synth.
func TestGrantOnAKeyOfAnotherAccount(t *testing.T) {
	t.Parallel()
	// GIVEN a key in account 111111111111 and a grant on it in 222222222222
	out, err := os.MkdirTemp(scratch, "kmsgrantkey")
	if err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
	env := func(account string) *awscdk.Environment {
		return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String("us-east-1")}
	}
	source := awscdk.NewStack(app, jsii.String("KarpenterKey"), &awscdk.StackProps{Env: env("111111111111")})
	key := awskms.NewKey(source, jsii.String("Key"), nil)
	nodes := awscdk.NewStack(app, jsii.String("KarpenterNodes"), &awscdk.StackProps{Env: env("222222222222")})
	kmsgrant.NewGrant(nodes, jsii.String("KarpenterGrant"), &kmsgrant.GrantProps{
		Key: key, Grantee: awsiam.NewArnPrincipal(jsii.String(karpenterController)), Operations: jsii.Strings(karpenterOperations...),
	})
	app.Synth(nil)
	a := readAssembly(t, out)

	// THEN the key's policy holds the statement, literally
	d := newDeployment(t, "kmsgrant", a)
	grants := d.grantsIn(t, "KarpenterNodes", deployEnv{"aws", "222222222222", "us-east-1", "KarpenterNodes"}, a.Templates["KarpenterNodes"])
	if len(grants) != 1 {
		t.Fatalf("%d grants, want 1", len(grants))
	}
	g := grants[0]
	const handler = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-KarpenterNodes-8295ffae0f"
	if g.handler != handler || g.retiring != handler || g.grantee != karpenterController || !slices.Equal(g.operations, karpenterOperations) {
		t.Fatalf("the grant is %+v, want %s for %v, retired by %s", g, karpenterController, karpenterOperations, handler)
	}
	policy, err := d.keyPolicyOf(g.keyArn)
	if err != nil {
		t.Fatal(err)
	}
	var placed []string
	for _, st := range policy.(map[string]interface{})["Statement"].([]interface{}) {
		if sid, _ := st.(map[string]interface{})["Sid"].(string); sid != "" && sid != "Enable IAM User Permissions" {
			body, _ := json.Marshal(st)
			placed = append(placed, string(body))
		}
	}
	want := `{"Action":"kms:CreateGrant","Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","DescribeKey","GenerateDataKeyWithoutPlaintext","ReEncryptFrom","ReEncryptTo","CreateGrant"]},` +
		`"StringEquals":{"aws:PrincipalArn":"` + handler + `","kms:GranteePrincipal":"` + karpenterController + `","kms:RetiringPrincipal":"` + handler + `"}},` +
		`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Resource":"*","Sid":"Allow ` + handler + ` to create a grant for ` + karpenterController + ` (8cce8996)"}`
	if len(placed) != 1 || placed[0] != want {
		t.Errorf("the key policy's statements besides CDK's default:\n%v\nwant exactly\n%s", placed, want)
	}
	// AND the grant's stack deploys after the key's
	deps := strs(a.Manifest["artifacts"].(map[string]interface{})["KarpenterNodes"].(map[string]interface{})["dependencies"])
	if !slices.Contains(deps, "KarpenterKey") {
		t.Errorf("KarpenterNodes depends on %v, want KarpenterKey: the key policy must allow the grant before it is created", deps)
	}

	// AND AWS would let the handler create exactly that grant
	dest := destination{label: "kmsgrant on a key of another account", g: g, m: member{account: "222222222222"}, keyPolicy: policy}
	with := func(extra ...string) []string { return append(slices.Clone(g.operations), extra...) }
	policyeval.Check(t, []policyeval.Case{
		dest.newCase("handler creates the grant", dest.createGrant(dest.handler(), g.grantee, g.retiring, g.operations), g.identity, policyeval.Allowed, "the key policy statement and the handler's own policy"),
		dest.newCase("handler creates the grant for another grantee", dest.createGrant(dest.handler(), adminOf("222222222222"), g.retiring, g.operations), g.identity, policyeval.Denied, "kms:GranteePrincipal"),
		dest.newCase("handler creates the grant for a role of a third account", dest.createGrant(dest.handler(), "arn:aws:iam::"+strangerAccount+":role/karpenter/KarpenterController", g.retiring, g.operations), g.identity, policyeval.Denied, "kms:GranteePrincipal"),
		dest.newCase("handler creates the grant retired by another principal", dest.createGrant(dest.handler(), g.grantee, adminOf("222222222222"), g.operations), g.identity, policyeval.Denied, "kms:RetiringPrincipal"),
		dest.newCase("handler creates the grant with the extra operation Encrypt", dest.createGrant(dest.handler(), g.grantee, g.retiring, with("Encrypt")), g.identity, policyeval.Denied, "ForAllValues kms:GrantOperations"),
		dest.newCase("handler creates the grant with the extra operation RetireGrant", dest.createGrant(dest.handler(), g.grantee, g.retiring, with("RetireGrant")), g.identity, policyeval.Denied, "ForAllValues kms:GrantOperations"),
		dest.newCase("handler revokes a grant", dest.kmsRequest(dest.handler(), "kms:RevokeGrant"), g.identity, policyeval.Denied, "a grant the handler owns needs no RevokeGrant"),
		dest.newCase("another role of the account, allowed kms:* by IAM, creates the grant", dest.createGrant(dest.m.principal(adminOf("222222222222")), g.grantee, g.retiring, g.operations), anyKMS, policyeval.Denied, "aws:PrincipalArn is the handler role only"),
	})
}

package keypolicy_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/keypolicylifecycle"
)

// onePolicy is a key with one policy, as KMS keeps it.
type onePolicy struct{ policy string }

func (k *onePolicy) GetKeyPolicy(context.Context, *kms.GetKeyPolicyInput, ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	return &kms.GetKeyPolicyOutput{Policy: aws.String(k.policy)}, nil
}

func (k *onePolicy) PutKeyPolicy(_ context.Context, in *kms.PutKeyPolicyInput, _ ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	k.policy = aws.ToString(in.Policy)
	return &kms.PutKeyPolicyOutput{}, nil
}

// A person applied a destination's statements by hand, from the synth
// warning of an imported key (KeyPolicyStatements() returns the same), and
// then set KeyPolicyScope. The Custom::KmsKeyPolicyStatements the template
// carries writes its own, marked copies beside them, and its Delete (the
// stack's rollback after a successful Create, or its removal) leaves the
// hand-applied statements as they were: the template's Sids are not theirs.
func TestHandAppliedStatementsSurviveTheManagedResource(t *testing.T) {
	// GIVEN the destination's statements, as the synth warning prints them
	// when the key is imported and KeyPolicyScope is not set
	warnApp := awscdk.NewApp(nil)
	warnDest := awscdk.NewStack(warnApp, jsii.String("Dest"), &awscdk.StackProps{Env: env("222222222222")})
	encryptedami.NewCrossAccountEncryptedAmi(warnDest, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: awskms.Key_FromKeyArn(warnDest, jsii.String("Key"), jsii.String(keyArn)), ImageId: jsii.String("ami-0123456789abcdef0"),
	})
	warnings := assertions.Annotations_FromStack(warnDest).FindWarning(jsii.String("/Dest/SharedAmi"), assertions.Match_StringLikeRegexp(jsii.String("is imported")))
	if len(*warnings) != 1 {
		t.Fatalf("%d warnings", len(*warnings))
	}
	// The test needs the warning's text (the statements a user applies by
	// hand), which only FindWarning's SynthesisMessage carries.
	//lint:ignore SA1019 aws-cdk-go 2.276 has no other type that returns an annotation's text
	text, _ := (*warnings)[0].Entry.Data.(string)
	var handApplied []string
	var printed []json.RawMessage
	// (the JSON is followed by CDK's " [ack: <id>]")
	if err := json.NewDecoder(strings.NewReader(text[strings.Index(text, "returns them): ")+len("returns them): "):])).Decode(&printed); err != nil {
		t.Fatalf("the warning's statements: %v: %s", err, text)
	}
	for _, s := range printed {
		handApplied = append(handApplied, string(s))
	}

	// AND the same destination with KeyPolicyScope, in an app of its own
	app := awscdk.NewApp(nil)
	source := awscdk.NewStack(app, jsii.String("Source"), &awscdk.StackProps{Env: env("111111111111")})
	dest := awscdk.NewStack(app, jsii.String("Dest"), &awscdk.StackProps{Env: env("222222222222")})
	ami := encryptedami.NewCrossAccountEncryptedAmi(dest, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key: awskms.Key_FromKeyArn(dest, jsii.String("Key"), jsii.String(keyArn)), ImageId: jsii.String("ami-0123456789abcdef0"),
		KeyPolicyScope: source,
	})
	owner := `{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}`
	before := `{"Version":"2012-10-17","Statement":[` + owner + "," + strings.Join(handApplied, ",") + `]}`

	// AND the source stack's resource, as CloudFormation sends it
	tmpl := assertions.Template_FromStack(source, nil)
	var logicalID string
	var props map[string]interface{}
	for id, r := range *tmpl.FindResources(jsii.String("Custom::KmsKeyPolicyStatements"), nil) {
		logicalID, props = id, (*r)["Properties"].(map[string]interface{})
	}
	// (the mark is the first 8 hex digits of sha256("111111111111\x00us-east-1\x00Source"))
	if props["SidSuffix"] != " [crossaccountami 7cdacd29]" {
		t.Errorf("SidSuffix %v", props["SidSuffix"])
	}
	for _, sid := range *ami.ManagedKeyPolicy().Sids() {
		if !strings.HasSuffix(*sid, " [crossaccountami 7cdacd29]") || !strings.Contains(props["Statements"].(string), `"Sid":"`+*sid+`"`) {
			t.Errorf("Sids() has %q, the template's Statements %s", *sid, props["Statements"])
		}
	}

	// WHEN the handler creates the resource, and the stack then rolls back
	k := &onePolicy{policy: before}
	h := keypolicylifecycle.New(k)
	request := func(rt cfn.RequestType, physical string) customresource.Request {
		return customresource.Request{RequestType: rt, ResourceType: "Custom::KmsKeyPolicyStatements", RequestID: "r",
			StackID: "arn:aws:cloudformation:us-east-1:111111111111:stack/Source/8c3e5d20-0000-4000-8000-000000000001", LogicalResourceID: logicalID,
			PhysicalResourceID: physical, Properties: props}
	}
	res, err := h.Create(context.Background(), request(cfn.RequestCreate, ""))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(k.policy, `"Sid":`); n != 1+2*len(handApplied) {
		t.Errorf("after the Create the policy has %d statements, want the owner's, the hand-applied ones and their marked copies: %s", n, k.policy)
	}
	if err := h.Delete(context.Background(), request(cfn.RequestDelete, res.PhysicalResourceID)); err != nil {
		t.Fatal(err)
	}

	// THEN the policy is what it was, the hand-applied statements included
	if k.policy != before {
		t.Errorf("after the Delete\n%s\nwant\n%s", k.policy, before)
	}
}

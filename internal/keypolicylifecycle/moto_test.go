package keypolicylifecycle_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/keypolicylifecycle"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

// readBackFails passes calls to KMS, except the GetKeyPolicy that follows
// the first PutKeyPolicy: the read-back of a write that KMS made.
type readBackFails struct {
	*kms.Client
	wrote, failed bool
}

func (c *readBackFails) PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	out, err := c.Client.PutKeyPolicy(ctx, in, optFns...)
	c.wrote = c.wrote || err == nil
	return out, err
}

func (c *readBackFails) GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	if c.wrote && !c.failed {
		c.failed = true
		return nil, apiErr("KMSInternalException", "injected: the read-back failed")
	}
	return c.Client.GetKeyPolicy(ctx, in, optFns...)
}

// Against moto's KMS: a key policy holds a statement applied by hand from
// the synth warning (unmarked Sid A); a Create of the marked A and B fails
// after its write; the rollback Delete of the id it answers leaves the
// policy as it was, the hand-applied statement included.
func TestFailedCreateIsRolledBackAgainstMoto(t *testing.T) {
	m := moto.Start(t)
	ctx := context.Background()
	client := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	key, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(key.KeyMetadata.Arn)
	// GIVEN a policy with the owner's statements and A, applied by hand
	before := `{"Version":"2012-10-17","Id":"key-default-1","Statement":[` + strings.Join([]string{stmt("Enable IAM User Permissions", "123456789012"), handApplied}, ",") + `]}`
	if _, err := client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default"), Policy: aws.String(before)}); err != nil {
		t.Fatal(err)
	}
	policy := func() string {
		out, err := client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Policy)
	}
	if got := policy(); got != before {
		t.Fatalf("moto returns the policy as\n%s\nnot as written\n%s", got, before)
	}
	serveWith := func(api keypolicylifecycle.KMS, ev cfn.Event) (string, error) {
		router := customresource.NewRouter()
		router.SafetyMargin = 2 * time.Second
		router.Handle(keypolicyspec.ResourceType, keypolicylifecycle.New(api))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		id, _, err := router.Serve(ctx, ev)
		return id, err
	}
	p := props(arn, mine("A", "222222222222"), mine("B", "333333333333"))

	// WHEN the Create writes A and B and its read-back fails
	id, err := serveWith(&readBackFails{Client: client}, event(cfn.RequestCreate, "", p))
	// THEN it answers its physical id, and the marked copies sit beside the hand-applied A
	want := keypolicyspec.NewPhysicalID(arn, stackID, "KeyPolicy").String()
	if err == nil || id != want {
		t.Fatalf("answer %q, %v; want FAILED with %q", id, err, want)
	}
	if got := sids(t, policy()); strings.Join(got, ",") != "Enable IAM User Permissions,A,A"+mark+",B"+mark {
		t.Fatalf("Sids after the failed Create: %q", got)
	}

	// WHEN CloudFormation rolls back with a Delete of that id
	if _, err := serveWith(client, event(cfn.RequestDelete, id, p)); err != nil {
		t.Fatalf("rollback Delete: %v", err)
	}
	// THEN the policy is what it was before the Create, byte for byte
	if got := policy(); got != before {
		t.Errorf("after the rollback\n%s\nwant\n%s", got, before)
	}
	if t.Failed() {
		t.Logf("moto:\n%s", m.Log())
	}
}

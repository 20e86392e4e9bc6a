package check

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

// expect checks a result's status and that detail and fix contain the
// given fragments.
func expect(t *testing.T, got Result, status Status, detail, fix []string) {
	t.Helper()
	if got.Status != status {
		t.Errorf("status = %s, want %s\ndetail: %s\nfix: %s", got.Status, status, got.Detail, got.Fix)
	}
	for _, d := range detail {
		if !strings.Contains(got.Detail, d) {
			t.Errorf("detail does not contain %q:\n%s", d, got.Detail)
		}
	}
	for _, f := range fix {
		if !strings.Contains(got.Fix, f) {
			t.Errorf("fix does not contain %q:\n%s", f, got.Fix)
		}
	}
}

func describeKeyOK(md kmstypes.KeyMetadata) func(*kms.DescribeKeyInput, string) (*kms.DescribeKeyOutput, error) {
	return func(*kms.DescribeKeyInput, string) (*kms.DescribeKeyOutput, error) {
		return &kms.DescribeKeyOutput{KeyMetadata: &md}, nil
	}
}

func metadata(mod func(*kmstypes.KeyMetadata)) kmstypes.KeyMetadata {
	md := kmstypes.KeyMetadata{
		Arn: aws.String(keyARN), KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab"),
		KeyManager: kmstypes.KeyManagerTypeCustomer, KeyState: kmstypes.KeyStateEnabled, Enabled: true,
		KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt, KeySpec: kmstypes.KeySpecSymmetricDefault,
	}
	if mod != nil {
		mod(&md)
	}
	return md
}

func TestCheckKey(t *testing.T) {
	denied := func(*kms.DescribeKeyInput, string) (*kms.DescribeKeyOutput, error) {
		return nil, apiErr("AccessDeniedException")
	}
	cases := []struct {
		name         string
		dest, source KMSAPI
		ref, region  string
		status       Status
		detail, fix  []string
	}{
		{
			name: "cross-account key described from the destination",
			dest: fakeKMS{describeKey: describeKeyOK(metadata(nil))}, ref: keyARN, region: region,
			status: Pass, detail: []string{"customer-managed, enabled", "account 222222222222", "from the destination account"},
		},
		{
			name: "denied in the destination, described by the source profile",
			dest: fakeKMS{describeKey: denied}, source: fakeKMS{describeKey: describeKeyOK(metadata(nil))}, ref: keyARN, region: region,
			status: Pass, detail: []string{"from the source profile"},
		},
		{
			name: "denied, no source profile",
			dest: fakeKMS{describeKey: denied}, ref: keyARN, region: region,
			status: Skip, detail: []string{"denied to arn:aws:iam::111111111111:user/ops"}, fix: []string{"--source-profile", "aws kms describe-key --key-id " + keyARN},
		},
		{
			name: "AWS managed key (aws/ebs)",
			dest: fakeKMS{describeKey: describeKeyOK(metadata(func(m *kmstypes.KeyMetadata) { m.KeyManager = kmstypes.KeyManagerTypeAws }))}, ref: keyARN, region: region,
			status: Fail, detail: []string{"AWS managed key"}, fix: []string{"aws ec2 copy-image", "--encrypted --kms-key-id"},
		},
		{
			name: "disabled key",
			dest: fakeKMS{describeKey: describeKeyOK(metadata(func(m *kmstypes.KeyMetadata) {
				m.KeyState, m.Enabled = kmstypes.KeyStateDisabled, false
			}))}, ref: keyARN, region: region,
			status: Fail, detail: []string{"it is disabled"}, fix: []string{"aws kms enable-key --key-id " + keyARN},
		},
		{
			name: "pending deletion",
			dest: fakeKMS{describeKey: describeKeyOK(metadata(func(m *kmstypes.KeyMetadata) {
				m.KeyState, m.Enabled = kmstypes.KeyStatePendingDeletion, false
			}))}, ref: keyARN, region: region,
			status: Fail, detail: []string{"scheduled for deletion"}, fix: []string{"aws kms cancel-key-deletion"},
		},
		{
			name: "asymmetric key",
			dest: fakeKMS{describeKey: describeKeyOK(metadata(func(m *kmstypes.KeyMetadata) {
				m.KeySpec, m.KeyUsage = kmstypes.KeySpecRsa2048, kmstypes.KeyUsageTypeSignVerify
			}))}, ref: keyARN, region: region,
			status: Fail, detail: []string{"RSA_2048 SIGN_VERIFY key"},
		},
		{
			name: "key in another region",
			dest: fakeKMS{describeKey: func(in *kms.DescribeKeyInput, r string) (*kms.DescribeKeyOutput, error) {
				if r != "eu-west-1" {
					t.Errorf("DescribeKey went to region %q, want the key's region eu-west-1", r)
				}
				md := metadata(nil)
				md.Arn = aws.String(strings.Replace(keyARN, region, "eu-west-1", 1))
				return &kms.DescribeKeyOutput{KeyMetadata: &md}, nil
			}}, ref: strings.Replace(keyARN, region, "eu-west-1", 1), region: region,
			status: Fail, detail: []string{"the key is in eu-west-1 but the group runs in us-east-1"}, fix: []string{"copy-image"},
		},
		{
			name: "deleted key",
			dest: fakeKMS{describeKey: func(*kms.DescribeKeyInput, string) (*kms.DescribeKeyOutput, error) {
				return nil, &kmstypes.NotFoundException{Message: aws.String("Key not found")}
			}}, ref: keyARN, region: region,
			status: Fail, detail: []string{"does not exist"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, got := checkKey(context.Background(), tc.dest, tc.source, tc.ref, tc.region, who)
			expect(t, got, tc.status, tc.detail, tc.fix)
			if k.Account == "" || k.Region == "" {
				t.Errorf("keyInfo %+v: account and region should come from the ARN", k)
			}
		})
	}
}

func TestCheckServiceLinkedRole(t *testing.T) {
	customARN := "arn:aws:iam::111111111111:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_team"
	roleExists := func(arn string) func(*iam.GetRoleInput) (*iam.GetRoleOutput, error) {
		return func(in *iam.GetRoleInput) (*iam.GetRoleOutput, error) {
			if want := arn[strings.LastIndex(arn, "/")+1:]; aws.ToString(in.RoleName) != want {
				return nil, &iamtypes.NoSuchEntityException{Message: aws.String("no role " + aws.ToString(in.RoleName))}
			}
			return &iam.GetRoleOutput{Role: &iamtypes.Role{Arn: aws.String(arn), RoleName: in.RoleName}}, nil
		}
	}
	noRole := func(*iam.GetRoleInput) (*iam.GetRoleOutput, error) {
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("The role cannot be found")}
	}
	group := func(slr *string) fakeASG {
		return fakeASG{describe: func(in *autoscaling.DescribeAutoScalingGroupsInput) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
			if in.AutoScalingGroupNames[0] != "web" {
				return &autoscaling.DescribeAutoScalingGroupsOutput{}, nil
			}
			return &autoscaling.DescribeAutoScalingGroupsOutput{AutoScalingGroups: []astypes.AutoScalingGroup{{AutoScalingGroupName: aws.String("web"), ServiceLinkedRoleARN: slr}}}, nil
		}}
	}
	cases := []struct {
		name        string
		iam         fakeIAM
		asg         fakeASG
		in          Input
		wantARN     string
		status      Status
		detail, fix []string
	}{
		{name: "default role exists", iam: fakeIAM{getRole: roleExists(slrARN)}, wantARN: slrARN, status: Pass},
		{name: "default role missing", iam: fakeIAM{getRole: noRole}, wantARN: slrARN, status: Fail,
			detail: []string{"AWSServiceRoleForAutoScaling does not exist in account 111111111111"},
			fix:    []string{"aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com"}},
		{name: "custom suffix missing", iam: fakeIAM{getRole: noRole}, in: Input{SLRSuffix: "team"}, wantARN: customARN, status: Fail,
			fix: []string{"--custom-suffix team"}},
		{name: "the group's custom role", iam: fakeIAM{getRole: roleExists(customARN)}, asg: group(aws.String(customARN)),
			in: Input{ASGName: "web"}, wantARN: customARN, status: Pass, detail: []string{`service-linked role of group "web"`}},
		{name: "group not found", asg: group(nil), in: Input{ASGName: "nope", Region: region}, wantARN: slrARN, status: Fail,
			detail: []string{`no Auto Scaling group named "nope"`}},
		{name: "GetRole denied", iam: fakeIAM{getRole: func(*iam.GetRoleInput) (*iam.GetRoleOutput, error) { return nil, apiErr("AccessDenied") }},
			wantARN: slrARN, status: Skip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			arn, got := checkServiceLinkedRole(context.Background(), tc.iam, tc.asg, tc.in, who)
			expect(t, got, tc.status, tc.detail, tc.fix)
			if arn != tc.wantARN {
				t.Errorf("role ARN = %s, want %s", arn, tc.wantARN)
			}
		})
	}
}

// policy builds a key policy from an owner statement and more statements.
func policy(t *testing.T, statements ...interface{}) string {
	t.Helper()
	all := []interface{}{map[string]interface{}{
		"Sid": "Enable IAM User Permissions", "Effect": "Allow",
		"Principal": map[string]interface{}{"AWS": "arn:aws:iam::222222222222:root"}, "Action": "kms:*", "Resource": "*",
	}}
	for _, s := range statements {
		switch s := s.(type) {
		case amipolicy.Statement:
			all = append(all, s.JSON())
		case []amipolicy.Statement:
			for _, x := range s {
				all = append(all, x.JSON())
			}
		case string:
			var m interface{}
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				t.Fatalf("bad statement %s: %v", s, err)
			}
			all = append(all, m)
		default:
			t.Fatalf("unsupported statement %T", s)
		}
	}
	b, err := json.Marshal(map[string]interface{}{"Version": "2012-10-17", "Statement": all})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCheckKeyPolicy(t *testing.T) {
	dest := amipolicy.Destination{Partition: "aws", Account: destAccount, GrantCreatorArn: creatorARN}
	scoped := amipolicy.Statements(dest, amipolicy.Scoped)
	seed := amipolicy.Statements(dest, amipolicy.SeedArticle)
	// The scoped CreateGrant statement, but for grants retired by someone else.
	otherRetirer := amipolicy.Statements(dest, amipolicy.Scoped)[1]
	otherRetirer.Condition["StringEquals"]["kms:RetiringPrincipal"] = "arn:aws:iam::" + destAccount + ":role/someone-else"
	org := amipolicy.OrganizationStatements(amipolicy.Organization{
		Target: orgtarget.Target{OrganizationID: "o-abcdefghij"}, GrantCreatorPattern: "arn:aws:iam::*:role/crossaccountami/*", Partition: "aws",
	})
	// What the KMS console writes when an external account is added to a key.
	console := []string{
		`{"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},
		  "Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"}`,
		`{"Sid":"Allow attachment of persistent resources","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},
		  "Action":["kms:CreateGrant","kms:ListGrants","kms:RevokeGrant"],"Resource":"*",
		  "Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}`,
	}
	fewerOps := scoped[1]
	fewerOps.Condition = map[string]map[string]interface{}{
		"StringEquals":              {"aws:PrincipalArn": creatorARN, "kms:GranteePrincipal": slrARN},
		"ForAllValues:StringEquals": {"kms:GrantOperations": []string{"Decrypt", "Encrypt", "GenerateDataKey"}},
	}
	denyDecrypt := `{"Sid":"No decrypt outside","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
		"Condition":{"StringNotEquals":{"aws:PrincipalAccount":"222222222222"}}}`
	// What a Custom::KmsKeyPolicyStatements writes for KeyPolicyScope: the
	// same statements, each Sid ending with its stack's mark.
	marked := amipolicy.Statements(dest, amipolicy.Scoped)
	for i := range marked {
		marked[i].Sid += " [crossaccountami 7cdacd29]"
	}
	otherAccount := amipolicy.Statements(amipolicy.Destination{Partition: "aws", Account: "333333333333",
		GrantCreatorArn: "arn:aws:iam::333333333333:role/crossaccountami/GrantHandler-X-0123456789"}, amipolicy.Scoped)

	serve := func(doc string) KMSAPI {
		return fakeKMS{getKeyPolicy: func(in *kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
			if aws.ToString(in.KeyId) != keyARN || aws.ToString(in.PolicyName) != "default" {
				t.Errorf("GetKeyPolicy(%s, %s), want (%s, default)", aws.ToString(in.KeyId), aws.ToString(in.PolicyName), keyARN)
			}
			return &kms.GetKeyPolicyOutput{Policy: aws.String(doc), PolicyName: aws.String("default")}, nil
		}}
	}
	type want struct {
		status      Status
		detail, fix []string
	}
	cases := []struct {
		name        string
		api         KMSAPI
		creators    []string
		use, create want
	}{
		{name: "this library's scoped statements", api: serve(policy(t, scoped)), creators: []string{creatorARN},
			use:    want{status: Pass, detail: []string{"Allow use of the key by AWSServiceRoleForAutoScaling of 111111111111"}},
			create: want{status: Pass, detail: []string{creatorARN}}},
		{name: "the scoped statements a KeyPolicyScope writes, with marked Sids", api: serve(policy(t, marked)), creators: []string{creatorARN},
			use:    want{status: Pass, detail: []string{"Allow use of the key by AWSServiceRoleForAutoScaling of 111111111111 [crossaccountami 7cdacd29]"}},
			create: want{status: Pass, detail: []string{creatorARN}}},
		{name: "scoped, grant creator unknown: the policy names it", api: serve(policy(t, scoped)),
			use:    want{status: Pass},
			create: want{status: Pass, detail: []string{"lets " + creatorARN}}},
		{name: "CreateGrant only with another retiring principal", api: serve(policy(t, scoped[0], otherRetirer)), creators: []string{creatorARN},
			use: want{status: Pass}, create: want{status: Fail}},
		{name: "the article's statements", api: serve(policy(t, seed)), creators: []string{creatorARN},
			use: want{status: Pass}, create: want{status: Pass}},
		{name: "organization statements", api: serve(policy(t, org)), creators: []string{creatorARN},
			use:    want{status: Warn, detail: []string{"aws:PrincipalOrgID", "belongs to that organization"}},
			create: want{status: Warn, detail: []string{"aws:PrincipalOrgID"}}},
		{name: "console policy with kms:GrantIsForAWSResource", api: serve(policy(t, console[0], console[1])), creators: []string{creatorARN},
			use: want{status: Warn, detail: []string{"allows account 111111111111 as a whole"}},
			create: want{status: Fail, detail: []string{`"Allow attachment of persistent resources"`, "kms:GrantIsForAWSResource", "classic cause"},
				fix: []string{"remove the kms:GrantIsForAWSResource condition", `"kms:GranteePrincipal"`}}},
		{name: "statements for another account only", api: serve(policy(t, otherAccount)), creators: []string{creatorARN},
			use: want{status: Fail, detail: []string{"kms:Decrypt", "kms:ReEncryptFrom", "kms:DescribeKey"},
				fix: []string{`"aws:PrincipalArn": "` + slrARN + `"`}},
			create: want{status: Fail, fix: []string{`"aws:PrincipalArn": "` + creatorARN + `"`}}},
		{name: "CreateGrant with too few operations", api: serve(policy(t, scoped[0], fewerOps)), creators: []string{creatorARN},
			use: want{status: Pass}, create: want{status: Fail}},
		{name: "a Deny statement", api: serve(policy(t, scoped, denyDecrypt)), creators: []string{creatorARN},
			use:    want{status: Fail, detail: []string{"kms:Decrypt", `"No decrypt outside" denies`}},
			create: want{status: Pass}},
		{name: "GetKeyPolicy denied", api: fakeKMS{getKeyPolicy: func(*kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
			return nil, apiErr("AccessDeniedException")
		}}, creators: []string{creatorARN},
			use:    want{status: Skip, detail: []string{"GetKeyPolicy on " + keyARN + " is denied"}, fix: []string{"aws kms get-key-policy"}},
			create: want{status: Skip}},
		{name: "no source profile", api: nil,
			use:    want{status: Skip, detail: []string{"only from the key's account 222222222222"}, fix: []string{"--source-profile"}},
			create: want{status: Skip}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := checkKeyPolicy(context.Background(), tc.api, srcKey, asgPrincipal, tc.creators, "", who)
			if len(got) != 2 || got[0].Check != CheckKeyPolicyUse || got[1].Check != CheckKeyPolicyGrant {
				t.Fatalf("got %+v, want the use and create-grant results", got)
			}
			t.Run("use", func(t *testing.T) { expect(t, got[0], tc.use.status, tc.use.detail, tc.use.fix) })
			t.Run("create-grant", func(t *testing.T) { expect(t, got[1], tc.create.status, tc.create.detail, tc.create.fix) })
		})
	}
}

func grant(id, grantee string, ops ...string) kmstypes.GrantListEntry {
	g := kmstypes.GrantListEntry{GrantId: aws.String(id), GranteePrincipal: aws.String(grantee), KeyId: aws.String(keyARN)}
	for _, op := range ops {
		g.Operations = append(g.Operations, kmstypes.GrantOperation(op))
	}
	return g
}

func TestCheckGrant(t *testing.T) {
	all := grantspec.AutoScalingOperations
	pages := func(pages ...[]kmstypes.GrantListEntry) func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
		return func(in *kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
			i := 0
			if in.Marker != nil {
				i = int(aws.ToString(in.Marker)[0] - '0')
			}
			out := &kms.ListGrantsOutput{Grants: pages[i]}
			if i+1 < len(pages) {
				out.NextMarker, out.Truncated = aws.String(string(rune('0'+i+1))), true
			}
			return out, nil
		}
	}
	denied := func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) { return nil, apiErr("AccessDeniedException") }
	withConstraint := grant("c0ffee", slrARN, all...)
	withConstraint.Constraints = &kmstypes.GrantConstraints{EncryptionContextEquals: map[string]string{"aws:ebs:id": "vol-1"}}
	cases := []struct {
		name         string
		dest, source KMSAPI
		status       Status
		detail, fix  []string
	}{
		{name: "complete grant", dest: fakeKMS{listGrants: pages([]kmstypes.GrantListEntry{grant("abc123", slrARN, all...)})},
			status: Pass, detail: []string{"grant abc123"}},
		{name: "grant on the second page", dest: fakeKMS{listGrants: pages(
			[]kmstypes.GrantListEntry{grant("1111", "arn:aws:iam::111111111111:role/other", all...)},
			[]kmstypes.GrantListEntry{grant("2222", slrARN, all...)})},
			status: Pass, detail: []string{"grant 2222"}},
		{name: "grant missing operations", dest: fakeKMS{listGrants: pages([]kmstypes.GrantListEntry{grant("abc123", slrARN, "Decrypt", "Encrypt", "GenerateDataKey", "DescribeKey")})},
			status: Fail, detail: []string{"lacks GenerateDataKeyWithoutPlaintext, ReEncryptFrom, ReEncryptTo, CreateGrant"},
			fix: []string{"aws kms create-grant --key-id " + keyARN + " --grantee-principal " + slrARN + " --operations Decrypt Encrypt GenerateDataKey GenerateDataKeyWithoutPlaintext ReEncryptFrom ReEncryptTo CreateGrant DescribeKey"}},
		{name: "the best of two grants", dest: fakeKMS{listGrants: pages(
			[]kmstypes.GrantListEntry{grant("a", slrARN, "Decrypt")},
			[]kmstypes.GrantListEntry{grant("b", slrARN, all...)})},
			status: Pass, detail: []string{"grant b "}},
		{name: "grants for other principals only", dest: fakeKMS{listGrants: pages([]kmstypes.GrantListEntry{grant("1", "arn:aws:iam::111111111111:role/other", all...)})},
			status: Fail, detail: []string{"no grant on " + keyARN + " for " + slrARN}, fix: []string{"aws kms create-grant"}},
		{name: "grant limited to an encryption context", dest: fakeKMS{listGrants: pages([]kmstypes.GrantListEntry{withConstraint})},
			status: Warn, detail: []string{"encryption context"}},
		{name: "denied, no source profile", dest: fakeKMS{listGrants: denied},
			status: Skip, detail: []string{"ListGrants on " + keyARN + " is denied"},
			fix: []string{"aws kms list-grants --key-id " + keyARN, "--source-profile"}},
		{name: "denied in the destination, listed by the source profile", dest: fakeKMS{listGrants: denied},
			source: fakeKMS{listGrants: pages(nil, []kmstypes.GrantListEntry{grant("abc123", slrARN, all...)})},
			status: Pass, detail: []string{"grant abc123"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := checkGrant(context.Background(), tc.dest, tc.source, srcKey, asgPrincipal, who)
			expect(t, got, tc.status, tc.detail, tc.fix)
		})
	}
}

func image(state ec2types.ImageState, encrypted *bool) *ec2types.Image {
	return &ec2types.Image{
		ImageId: aws.String(imageID), OwnerId: aws.String(srcAccount), State: state,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(snapshotID), Encrypted: encrypted}}},
	}
}

func TestCheckImage(t *testing.T) {
	cases := []struct {
		name        string
		api         fakeEC2
		status      Status
		detail, fix []string
	}{
		{name: "shared and available", api: fakeEC2{describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
			return &ec2.DescribeImagesOutput{Images: []ec2types.Image{*image(ec2types.ImageStateAvailable, nil)}}, nil
		}}, status: Pass, detail: []string{"shared by account 222222222222"}},
		{name: "not shared", api: fakeEC2{describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
			return nil, apiErr("InvalidAMIID.NotFound")
		}}, status: Fail, detail: []string{"not visible to account 111111111111"},
			fix: []string{"aws ec2 modify-image-attribute --region us-east-1 --image-id " + imageID + " --launch-permission 'Add=[{UserId=111111111111}]'"}},
		{name: "empty answer", api: fakeEC2{describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
			return &ec2.DescribeImagesOutput{}, nil
		}}, status: Fail, fix: []string{"modify-image-attribute"}},
		{name: "pending", api: fakeEC2{describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
			return &ec2.DescribeImagesOutput{Images: []ec2types.Image{*image(ec2types.ImageStatePending, nil)}}, nil
		}}, status: Fail, detail: []string{`"pending"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got := checkImage(context.Background(), tc.api, imageID, who, region)
			expect(t, got, tc.status, tc.detail, tc.fix)
		})
	}
}

func TestCheckSnapshots(t *testing.T) {
	visible := func(encrypted bool, key string) fakeEC2 {
		return fakeEC2{describeSnapshots: func(in *ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
			s := ec2types.Snapshot{SnapshotId: aws.String(in.SnapshotIds[0]), Encrypted: aws.Bool(encrypted)}
			if key != "" {
				s.KmsKeyId = aws.String(key)
			}
			return &ec2.DescribeSnapshotsOutput{Snapshots: []ec2types.Snapshot{s}}, nil
		}}
	}
	hidden := fakeEC2{describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
		return nil, apiErr("InvalidSnapshot.NotFound")
	}}
	cases := []struct {
		name         string
		dest, source EC2API
		img          *ec2types.Image
		keyFlag      string
		wantKeys     []string
		status       Status
		detail, fix  []string
	}{
		{name: "visible, encrypted", dest: visible(true, keyARN), img: image(ec2types.ImageStateAvailable, nil),
			wantKeys: []string{keyARN}, status: Pass, detail: []string{snapshotID + " (/dev/xvda) encrypted with " + keyARN}},
		{name: "hidden, seen by the source profile", dest: hidden, source: visible(true, keyARN), img: image(ec2types.ImageStateAvailable, aws.Bool(true)),
			wantKeys: []string{keyARN}, status: Pass, detail: []string{"seen from the source account"}},
		{name: "hidden, no source profile", dest: hidden, img: image(ec2types.ImageStateAvailable, aws.Bool(true)),
			status: Warn, detail: []string{"not visible to account 111111111111 (InvalidSnapshot.NotFound)", "encrypted, key not visible"},
			fix: []string{"--source-profile", "account 222222222222", "--key-arn"}},
		{name: "hidden, --key-arn", dest: hidden, img: image(ec2types.ImageStateAvailable, aws.Bool(true)), keyFlag: keyARN,
			wantKeys: []string{keyARN}, status: Pass, detail: []string{"--key-arn"}},
		{name: "not encrypted", dest: visible(false, ""), img: image(ec2types.ImageStateAvailable, nil),
			status: Pass, detail: []string{"not encrypted", "KMS is not what stops the launch"}},
		{name: "not encrypted, --key-arn", dest: visible(false, ""), img: image(ec2types.ImageStateAvailable, nil), keyFlag: keyARN,
			wantKeys: []string{keyARN}, status: Warn, detail: []string{"checking the key given with --key-arn anyway"}},
		{name: "the snapshots' key wins over --key-arn", dest: visible(true, keyARN), img: image(ec2types.ImageStateAvailable, nil),
			keyFlag: strings.Replace(keyARN, "1234abcd", "9999abcd", 1), wantKeys: []string{keyARN}, status: Warn, detail: []string{"is not the snapshots' key"}},
		{name: "image not visible", img: nil, status: Skip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, got := checkSnapshots(context.Background(), tc.dest, tc.source, tc.img, Input{ImageID: imageID, KeyARN: tc.keyFlag}, who)
			expect(t, got, tc.status, tc.detail, tc.fix)
			if strings.Join(keys, ",") != strings.Join(tc.wantKeys, ",") {
				t.Errorf("keys = %v, want %v", keys, tc.wantKeys)
			}
		})
	}
}

// TestRun wires every check over fakes of a working cross-account setup,
// then breaks one piece at a time.
func TestRun(t *testing.T) {
	dest := amipolicy.Destination{Partition: "aws", Account: destAccount, GrantCreatorArn: creatorARN}
	goodPolicy := policy(t, amipolicy.Statements(dest, amipolicy.Scoped))
	clients := func(mod func(*Clients)) Clients {
		c := Clients{
			STS: fakeSTS{getCallerIdentity: func() (*sts.GetCallerIdentityOutput, error) {
				return &sts.GetCallerIdentityOutput{Account: aws.String(destAccount), Arn: aws.String(who.ARN)}, nil
			}},
			EC2: fakeEC2{
				describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
					return &ec2.DescribeImagesOutput{Images: []ec2types.Image{*image(ec2types.ImageStateAvailable, aws.Bool(true))}}, nil
				},
				describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
					return nil, apiErr("InvalidSnapshot.NotFound")
				},
			},
			KMS: fakeKMS{
				describeKey: describeKeyOK(metadata(nil)),
				listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
					return nil, apiErr("AccessDeniedException")
				},
			},
			IAM: fakeIAM{
				getRole: func(in *iam.GetRoleInput) (*iam.GetRoleOutput, error) {
					return &iam.GetRoleOutput{Role: &iamtypes.Role{Arn: aws.String(slrARN), RoleName: in.RoleName}}, nil
				},
				listRoles: func(in *iam.ListRolesInput) (*iam.ListRolesOutput, error) {
					// The path constructs/internal/provider gives the roles.
					if got, want := aws.ToString(in.PathPrefix), "/crossaccountami/"; got != want {
						t.Errorf("ListRoles PathPrefix = %q, want %q", got, want)
					}
					return &iam.ListRolesOutput{Roles: []iamtypes.Role{{Arn: aws.String(creatorARN), RoleName: aws.String("GrantHandler-Dest-0123456789")}}}, nil
				},
			},
			SourceEC2: fakeEC2{describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
				return &ec2.DescribeSnapshotsOutput{Snapshots: []ec2types.Snapshot{{SnapshotId: aws.String(snapshotID), Encrypted: aws.Bool(true), KmsKeyId: aws.String(keyARN)}}}, nil
			}},
			SourceKMS: fakeKMS{
				getKeyPolicy: func(*kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
					return &kms.GetKeyPolicyOutput{Policy: aws.String(goodPolicy)}, nil
				},
				listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
					return &kms.ListGrantsOutput{Grants: []kmstypes.GrantListEntry{grant("abc", slrARN, grantspec.AutoScalingOperations...)}}, nil
				},
			},
		}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	statuses := func(rs []Result) string {
		var parts []string
		for _, r := range rs {
			parts = append(parts, r.Check+"="+string(r.Status))
		}
		return strings.Join(parts, " ")
	}
	cases := []struct {
		name string
		mod  func(*Clients)
		want string
	}{
		{name: "everything in place", want: "caller=PASS image=PASS snapshots=PASS key=PASS service-linked-role=PASS key-policy-use=PASS key-policy-create-grant=PASS grant=PASS"},
		{name: "no source profile", mod: func(c *Clients) { c.SourceEC2, c.SourceKMS = nil, nil },
			want: "caller=PASS image=PASS snapshots=WARN key=SKIP service-linked-role=PASS key-policy-use=SKIP key-policy-create-grant=SKIP grant=SKIP"},
		{name: "no credentials", mod: func(c *Clients) {
			c.STS = fakeSTS{getCallerIdentity: func() (*sts.GetCallerIdentityOutput, error) { return nil, apiErr("InvalidClientTokenId") }}
		}, want: "caller=FAIL image=SKIP snapshots=SKIP key=SKIP service-linked-role=SKIP key-policy-use=SKIP key-policy-create-grant=SKIP grant=SKIP"},
		{name: "missing role, and everything after it still checked", mod: func(c *Clients) {
			c.IAM = fakeIAM{
				getRole:   func(*iam.GetRoleInput) (*iam.GetRoleOutput, error) { return nil, &iamtypes.NoSuchEntityException{} },
				listRoles: func(*iam.ListRolesInput) (*iam.ListRolesOutput, error) { return &iam.ListRolesOutput{}, nil },
			}
			c.SourceKMS = fakeKMS{
				getKeyPolicy: func(*kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
					return &kms.GetKeyPolicyOutput{Policy: aws.String(goodPolicy)}, nil
				},
				listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) { return &kms.ListGrantsOutput{}, nil },
			}
		}, want: "caller=PASS image=PASS snapshots=PASS key=PASS service-linked-role=FAIL key-policy-use=PASS key-policy-create-grant=PASS grant=FAIL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Run(context.Background(), clients(tc.mod), Input{ImageID: imageID, Region: region})
			if s := statuses(got); s != tc.want {
				t.Errorf("got  %s\nwant %s", s, tc.want)
				for _, r := range got {
					t.Logf("%s %s: %s", r.Status, r.Check, r.Detail)
				}
			}
		})
	}
}

// The principals of the other launch paths in the destination account,
// written out as AWS's pages give them (README, "Launch paths").
const (
	fleetSLRARN     = "arn:aws:iam::111111111111:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet"
	spotFleetSLRARN = "arn:aws:iam::111111111111:role/aws-service-role/spotfleet.amazonaws.com/AWSServiceRoleForEC2SpotFleet"
	karpenterARN    = "arn:aws:iam::111111111111:role/karpenter/KarpenterController"
)

// rolesOf answers GetRole for the roles given (name → ARN) and
// NoSuchEntity for every other.
func rolesOf(arns ...string) func(*iam.GetRoleInput) (*iam.GetRoleOutput, error) {
	return func(in *iam.GetRoleInput) (*iam.GetRoleOutput, error) {
		for _, arn := range arns {
			if arn[strings.LastIndex(arn, "/")+1:] == aws.ToString(in.RoleName) {
				return &iam.GetRoleOutput{Role: &iamtypes.Role{Arn: aws.String(arn), RoleName: in.RoleName}}, nil
			}
		}
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("The role with name " + aws.ToString(in.RoleName) + " cannot be found.")}
	}
}

func TestCheckLaunchPrincipal(t *testing.T) {
	cases := []struct {
		name        string
		in          Input
		roles       []string
		wantARN     string
		check       string
		status      Status
		detail, fix []string
	}{
		{name: "EC2 Fleet, its role missing", in: Input{Launcher: launcher.EC2Fleet}, roles: []string{slrARN},
			wantARN: fleetSLRARN, check: CheckServiceLinkedRole, status: Fail,
			detail: []string{"AWSServiceRoleForEC2Fleet does not exist in account 111111111111"},
			fix:    []string{"aws iam create-service-linked-role --aws-service-name ec2fleet.amazonaws.com ("}},
		{name: "Spot Fleet, its role there", in: Input{Launcher: launcher.SpotFleet}, roles: []string{spotFleetSLRARN},
			wantARN: spotFleetSLRARN, check: CheckServiceLinkedRole, status: Pass, detail: []string{spotFleetSLRARN + " exists"}},
		{name: "Spot, its role missing", in: Input{Launcher: launcher.Spot},
			wantARN: "arn:aws:iam::111111111111:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot", check: CheckServiceLinkedRole, status: Fail,
			fix: []string{"--aws-service-name spot.amazonaws.com"}},
		{name: "EKS managed node group: the default Auto Scaling role", in: Input{Launcher: launcher.EKSManagedNodeGroup}, roles: []string{slrARN},
			wantARN: slrARN, check: CheckServiceLinkedRole, status: Pass, detail: []string{"EKS managed node groups launch with"}},
		{name: "a role at its path", in: Input{Launcher: launcher.Role, LauncherRoleARN: karpenterARN}, roles: []string{karpenterARN},
			wantARN: karpenterARN, check: CheckLauncherRole, status: Pass, detail: []string{karpenterARN + " exists, the role that launches the instances"}},
		{name: "a role missing", in: Input{Launcher: launcher.Role, LauncherRoleARN: karpenterARN},
			wantARN: karpenterARN, check: CheckLauncherRole, status: Fail, detail: []string{"KarpenterController does not exist in account 111111111111"},
			fix: []string{"--launcher-role-arn"}},
		{name: "a role of another account", in: Input{Launcher: launcher.Role, LauncherRoleARN: "arn:aws:iam::999999999999:role/ci"},
			wantARN: "arn:aws:iam::999999999999:role/ci", check: CheckLauncherRole, status: Fail,
			detail: []string{"is in account 999999999999, not in the destination account 111111111111"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, got := checkLaunchPrincipal(context.Background(), fakeIAM{getRole: rolesOf(tc.roles...)}, fakeASG{}, tc.in, who)
			if got.Check != tc.check {
				t.Errorf("check %q, want %q", got.Check, tc.check)
			}
			expect(t, got, tc.status, tc.detail, tc.fix)
			if p.ARN != tc.wantARN {
				t.Errorf("principal %s, want %s", p.ARN, tc.wantARN)
			}
		})
	}
}

// TestRunLaunchers: a named launcher is checked through its own
// principal, from the role to the grant, and a destination set up for
// Auto Scaling alone fails every check of an EC2 Fleet that concerns it.
func TestRunLaunchers(t *testing.T) {
	ops := `["Decrypt","Encrypt","GenerateDataKey","GenerateDataKeyWithoutPlaintext","ReEncryptFrom","ReEncryptTo","CreateGrant","DescribeKey"]`
	// The two statements of this library's SCOPED style, for grantee.
	statementsFor := func(name, grantee string) []interface{} {
		return []interface{}{
			`{"Sid":"Allow use of the key by ` + name + ` of 111111111111","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},
			  "Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*",
			  "Condition":{"StringEquals":{"aws:PrincipalArn":"` + grantee + `"}}}`,
			`{"Sid":"Allow attachment of persistent resources by ` + creatorARN + `","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},
			  "Action":["kms:CreateGrant"],"Resource":"*",
			  "Condition":{"StringEquals":{"aws:PrincipalArn":"` + creatorARN + `","kms:GranteePrincipal":"` + grantee + `","kms:RetiringPrincipal":"` + creatorARN + `"},
			  "ForAllValues:StringEquals":{"kms:GrantOperations":` + ops + `}}}`,
		}
	}
	autoScalingOnly := policy(t, statementsFor("AWSServiceRoleForAutoScaling", slrARN)...)
	clients := func(keyPolicy string, roles []string, grantees ...string) Clients {
		var grants []kmstypes.GrantListEntry
		for i, g := range grantees {
			grants = append(grants, grant(fmt.Sprintf("g%d", i), g, grantspec.AutoScalingOperations...))
		}
		return Clients{
			STS: fakeSTS{getCallerIdentity: func() (*sts.GetCallerIdentityOutput, error) {
				return &sts.GetCallerIdentityOutput{Account: aws.String(destAccount), Arn: aws.String(who.ARN)}, nil
			}},
			EC2: fakeEC2{
				describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
					return &ec2.DescribeImagesOutput{Images: []ec2types.Image{*image(ec2types.ImageStateAvailable, aws.Bool(true))}}, nil
				},
				describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
					return nil, apiErr("InvalidSnapshot.NotFound")
				},
			},
			// The key policy lets the destination list no grant: the
			// source profile lists them.
			KMS: fakeKMS{describeKey: describeKeyOK(metadata(nil)), listGrants: func(*kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
				return nil, apiErr("AccessDeniedException")
			}},
			IAM: fakeIAM{getRole: rolesOf(roles...), listRoles: func(*iam.ListRolesInput) (*iam.ListRolesOutput, error) {
				return &iam.ListRolesOutput{Roles: []iamtypes.Role{{Arn: aws.String(creatorARN), RoleName: aws.String("GrantHandler-Dest-0123456789")}}}, nil
			}},
			SourceKMS: fakeKMS{
				getKeyPolicy: func(*kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
					return &kms.GetKeyPolicyOutput{Policy: aws.String(keyPolicy)}, nil
				},
				listGrants: func(in *kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
					return &kms.ListGrantsOutput{Grants: grants}, nil
				},
			},
		}
	}
	cases := []struct {
		name    string
		clients Clients
		in      Input
		want    string
		// details holds, per check, fragments its detail or fix must contain.
		details map[string][]string
	}{
		{name: "EC2 Fleet in place",
			clients: clients(policy(t, statementsFor("AWSServiceRoleForEC2Fleet", fleetSLRARN)...), []string{fleetSLRARN}, fleetSLRARN),
			in:      Input{Launcher: launcher.EC2Fleet},
			want:    "caller=PASS image=PASS snapshots=PASS key=PASS service-linked-role=PASS key-policy-use=PASS key-policy-create-grant=PASS grant=PASS",
			details: map[string][]string{CheckGrant: {"gives " + fleetSLRARN + " every operation EC2 Fleet needs"}}},
		{name: "EC2 Fleet on a destination set up for Auto Scaling only",
			clients: clients(autoScalingOnly, []string{slrARN}, slrARN),
			in:      Input{Launcher: launcher.EC2Fleet},
			want:    "caller=PASS image=PASS snapshots=PASS key=PASS service-linked-role=FAIL key-policy-use=FAIL key-policy-create-grant=FAIL grant=FAIL",
			details: map[string][]string{
				CheckServiceLinkedRole: {"AWSServiceRoleForEC2Fleet does not exist", "--aws-service-name ec2fleet.amazonaws.com"},
				CheckKeyPolicyUse:      {"does not let " + fleetSLRARN + " call kms:Decrypt", `"Sid": "Allow use of the key by AWSServiceRoleForEC2Fleet of 111111111111"`, `"aws:PrincipalArn": "` + fleetSLRARN + `"`},
				CheckKeyPolicyGrant:    {"create a grant for " + fleetSLRARN + " with the EC2 Fleet operations", `"kms:GranteePrincipal": "` + fleetSLRARN + `"`},
				CheckGrant:             {"no grant on " + keyARN + " for " + fleetSLRARN, "--grantee-principal " + fleetSLRARN},
			}},
		{name: "the controller role of a Karpenter cluster in place",
			clients: clients(policy(t, statementsFor("KarpenterController", karpenterARN)...), []string{karpenterARN}, karpenterARN),
			in:      Input{Launcher: launcher.Role, LauncherRoleARN: karpenterARN},
			want:    "caller=PASS image=PASS snapshots=PASS key=PASS launcher-role=PASS key-policy-use=PASS key-policy-create-grant=PASS grant=PASS",
			details: map[string][]string{CheckGrant: {"gives " + karpenterARN + " every operation a launch by the role needs"}}},
		{name: "an EKS managed node group uses the Auto Scaling role's statements and grant",
			clients: clients(autoScalingOnly, []string{slrARN}, slrARN),
			in:      Input{Launcher: launcher.EKSManagedNodeGroup},
			want:    "caller=PASS image=PASS snapshots=PASS key=PASS service-linked-role=PASS key-policy-use=PASS key-policy-create-grant=PASS grant=PASS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.ImageID, tc.in.Region, tc.in.KeyARN = imageID, region, keyARN
			got := Run(context.Background(), tc.clients, tc.in)
			var parts []string
			for _, r := range got {
				parts = append(parts, r.Check+"="+string(r.Status))
				for _, d := range tc.details[r.Check] {
					if !strings.Contains(r.Detail, d) && !strings.Contains(r.Fix, d) {
						t.Errorf("%s: neither detail nor fix contains %q\ndetail: %s\nfix: %s", r.Check, d, r.Detail, r.Fix)
					}
				}
			}
			if s := strings.Join(parts, " "); s != tc.want {
				t.Errorf("got  %s\nwant %s", s, tc.want)
				for _, r := range got {
					t.Logf("%s %s: %s", r.Status, r.Check, r.Detail)
				}
			}
		})
	}
}

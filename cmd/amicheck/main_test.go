package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/crossaccountami/crossaccountami/cmd/amicheck/internal/check"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

func TestRunUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no image", nil, "--image-id is required"},
		{"bad image id", []string{"--image-id", "ami-XYZ"}, `"ami-XYZ" is not an AMI id`},
		{"group and suffix", []string{"--image-id", "ami-12345678", "--asg", "web", "--slr-suffix", "team"}, `--asg "web" and --slr-suffix "team"`},
		{"bad suffix", []string{"--image-id", "ami-12345678", "--slr-suffix", "a b"}, "--slr-suffix"},
		{"alias as key", []string{"--image-id", "ami-12345678", "--key-arn", "arn:aws:kms:us-east-1:111111111111:alias/ebs"}, "alias ARN"},
		{"unknown flag", []string{"--image", "ami-12345678"}, "flag provided but not defined"},
		{"stray argument", []string{"--image-id", "ami-12345678", "extra"}, `unexpected arguments ["extra"]`},
		{"unknown launcher", []string{"--image-id", "ami-12345678", "--launcher", "ASG"},
			`--launcher: expected one of AUTO_SCALING, EKS_MANAGED_NODE_GROUP, EC2_FLEET, SPOT_FLEET, SPOT, ROLE, got "ASG"`},
		{"role launcher without its role", []string{"--image-id", "ami-12345678", "--launcher", "ROLE"}, "--launcher ROLE needs --launcher-role-arn"},
		{"launcher role that is not a role", []string{"--image-id", "ami-12345678", "--launcher", "ROLE", "--launcher-role-arn", "arn:aws:iam::111111111111:user/ci"},
			"--launcher-role-arn: expected an IAM role ARN"},
		{"launcher role without ROLE", []string{"--image-id", "ami-12345678", "--launcher-role-arn", "arn:aws:iam::111111111111:role/ci"},
			`--launcher-role-arn "arn:aws:iam::111111111111:role/ci": only with --launcher ROLE`},
		{"launcher role with another launcher", []string{"--image-id", "ami-12345678", "--launcher", "SPOT", "--launcher-role-arn", "arn:aws:iam::111111111111:role/ci"},
			"only with --launcher ROLE, got --launcher SPOT"},
		{"suffix with an EKS managed node group", []string{"--image-id", "ami-12345678", "--launcher", "EKS_MANAGED_NODE_GROUP", "--slr-suffix", "team"},
			`--slr-suffix "team": only with --launcher AUTO_SCALING; with --launcher EKS_MANAGED_NODE_GROUP the Auto Scaling group EKS creates launches with the default AWSServiceRoleForAutoScaling`},
		{"group with an EC2 Fleet", []string{"--image-id", "ami-12345678", "--launcher", "EC2_FLEET", "--asg", "web"},
			`--asg "web": only with --launcher AUTO_SCALING, got --launcher EC2_FLEET`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("a usage error wrote a report:\n%s", stdout.String())
			}
		})
	}
}

type jsonReport struct {
	OK     bool           `json:"ok"`
	Checks []check.Result `json:"checks"`
}

func statuses(r jsonReport) map[string]check.Status {
	out := map[string]check.Status{}
	for _, c := range r.Checks {
		out[c.Check] = c.Status
	}
	return out
}

// TestAgainstMoto runs the command with real SDK clients against
// moto_server, configured only through the environment, in one account
// (moto's KMS grants do not work across accounts).
func TestAgainstMoto(t *testing.T) {
	server := moto.Start(t)
	server.SetEnv(t)
	dir := t.TempDir()
	// A profile for --source-profile; in moto it is the same account.
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte("[profile source]\naws_access_key_id = testing\naws_secret_access_key = testing\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The helper points KMS, IAM and STS at moto; this command also uses
	// EC2 and Auto Scaling.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_EC2": server.URL, "AWS_ENDPOINT_URL_AUTO_SCALING": server.URL,
		"AWS_CONFIG_FILE": cfgFile, "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kmsc, iamc, ec2c, asc := kms.NewFromConfig(cfg), iam.NewFromConfig(cfg), ec2.NewFromConfig(cfg), autoscaling.NewFromConfig(cfg)
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, nil)
	if err != nil {
		t.Fatalf("moto GetCallerIdentity: %v", err)
	}
	account := aws.ToString(id.Account)

	// GIVEN the pieces the construct deploys: the service-linked role, the
	// grant handler role, a key whose policy has this library's statements,
	// and a grant for the role.
	slr, err := iamc.CreateServiceLinkedRole(ctx, &iam.CreateServiceLinkedRoleInput{AWSServiceName: aws.String(awsid.AutoScalingService)})
	if err != nil {
		t.Fatalf("CreateServiceLinkedRole: %v", err)
	}
	slrArn := aws.ToString(slr.Role.Arn)
	if want := awsid.AutoScalingSLRARN("aws", account, ""); slrArn != want {
		t.Fatalf("moto created the service-linked role %s, want %s", slrArn, want)
	}
	creator, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String("GrantHandler-Dest-0123456789"), Path: aws.String("/crossaccountami/"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
	})
	if err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	statements := []interface{}{map[string]interface{}{
		"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": map[string]interface{}{"AWS": awsid.AccountRootARN("aws", account)},
		"Action": "kms:*", "Resource": "*",
	}}
	for _, s := range amipolicy.Statements(amipolicy.Destination{Partition: "aws", Account: account, GrantCreatorArn: aws.ToString(creator.Role.Arn)}, amipolicy.Scoped) {
		statements = append(statements, s.JSON())
	}
	doc, _ := json.Marshal(map[string]interface{}{"Version": "2012-10-17", "Statement": statements})
	key, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(string(doc)), Description: aws.String("amicheck test")})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keyArn := aws.ToString(key.KeyMetadata.Arn)
	ops := make([]kmstypes.GrantOperation, 0, len(grantspec.AutoScalingOperations))
	for _, op := range grantspec.AutoScalingOperations {
		ops = append(ops, kmstypes.GrantOperation(op))
	}
	grant, err := kmsc.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(keyArn), GranteePrincipal: aws.String(slrArn), Operations: ops})
	if err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}

	// An image and a group that launches it. moto's RegisterImage ignores
	// block device mappings: the image's snapshot is never encrypted, so
	// the key is given with --key-arn.
	img, err := ec2c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("amicheck-test")})
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	imageID := aws.ToString(img.ImageId)
	if _, err := asc.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("lc"), ImageId: aws.String(imageID), InstanceType: aws.String("t3.micro"),
	}); err != nil {
		t.Fatalf("CreateLaunchConfiguration: %v", err)
	}
	if _, err := asc.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
		ServiceLinkedRoleARN: aws.String(slrArn),
	}); err != nil {
		t.Fatalf("CreateAutoScalingGroup: %v", err)
	}

	runJSON := func(t *testing.T, args ...string) (jsonReport, int) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(ctx, append([]string{"--json"}, args...), &stdout, &stderr)
		var r jsonReport
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			t.Fatalf("output is not the JSON report: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
		for _, c := range r.Checks {
			t.Logf("%s %s: %s", c.Status, c.Check, c.Detail)
		}
		return r, code
	}
	args := []string{"--image-id", imageID, "--asg", "web", "--key-arn", keyArn}
	want := map[string]check.Status{
		check.CheckCaller: check.Pass, check.CheckImage: check.Pass,
		// moto: the image's snapshot is not encrypted (see above).
		check.CheckSnapshots: check.Warn,
		check.CheckKey:       check.Pass, check.CheckServiceLinkedRole: check.Pass,
		check.CheckKeyPolicyUse: check.Pass, check.CheckKeyPolicyGrant: check.Pass, check.CheckGrant: check.Pass,
	}

	t.Run("everything in place", func(t *testing.T) {
		r, code := runJSON(t, args...)
		if code != exitOK || !r.OK {
			t.Errorf("exit code %d, ok %v; want 0, true", code, r.OK)
		}
		if got := statuses(r); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("statuses\ngot  %v\nwant %v", got, want)
		}
		for _, c := range r.Checks {
			if c.Check == check.CheckGrant && !strings.Contains(c.Detail, aws.ToString(grant.GrantId)) {
				t.Errorf("the grant check does not name grant %s: %s", aws.ToString(grant.GrantId), c.Detail)
			}
			if c.Check == check.CheckKeyPolicyGrant && !strings.Contains(c.Detail, aws.ToString(creator.Role.Arn)) {
				t.Errorf("the create-grant check does not name the grant handler role: %s", c.Detail)
			}
		}
	})

	t.Run("with a source profile", func(t *testing.T) {
		r, code := runJSON(t, append(args, "--source-profile", "source")...)
		if code != exitOK || fmt.Sprint(statuses(r)) != fmt.Sprint(want) {
			t.Errorf("exit code %d, statuses %v; want 0, %v", code, statuses(r), want)
		}
	})

	// WHEN the grant is revoked
	if _, err := kmsc.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyArn), GrantId: grant.GrantId}); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}

	t.Run("grant revoked", func(t *testing.T) {
		r, code := runJSON(t, args...)
		if code != exitFail || r.OK {
			t.Errorf("exit code %d, ok %v; want 1, false", code, r.OK)
		}
		failed := map[string]check.Status{}
		for k, v := range want {
			failed[k] = v
		}
		failed[check.CheckGrant] = check.Fail
		if got := statuses(r); fmt.Sprint(got) != fmt.Sprint(failed) {
			t.Errorf("statuses\ngot  %v\nwant %v", got, failed)
		}
	})

	t.Run("grant revoked, text output", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := run(ctx, args, &stdout, &stderr)
		out := stdout.String()
		t.Logf("text output:\n%s", out)
		if code != exitFail {
			t.Errorf("exit code %d, want 1\n%s%s", code, out, stderr.String())
		}
		for _, line := range []string{
			"FAIL  grant ", "no grant on " + keyArn + " for " + slrArn,
			"      fix: as the grant creator in account " + account + " (the principal the key policy allows kms:CreateGrant): aws kms create-grant --key-id " + keyArn,
			"PASS  key-policy-create-grant ", "1 check(s) failed",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("text output does not contain %q:\n%s", line, out)
			}
		}
	})

	t.Run("key disabled", func(t *testing.T) {
		// moto's DisableKey takes the key id only, not the ARN.
		if _, err := kmsc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
			t.Fatalf("DisableKey: %v", err)
		}
		r, code := runJSON(t, args...)
		if code != exitFail || statuses(r)[check.CheckKey] != check.Fail {
			t.Errorf("exit code %d, key check %s; want 1, FAIL", code, statuses(r)[check.CheckKey])
		}
	})
}

package amipolicy

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

var copier = CopySource{Partition: "aws", Account: "222222222222",
	CopierArn: "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-AmiCopy-0123456789"}

// The source statements pin the copier role, give it only reads on the
// source key, and CreateGrant only for an AWS resource.
func TestCopySourceStatements(t *testing.T) {
	stmts := CopySourceStatements(copier)
	body, _ := json.Marshal(stmts)
	t.Logf("%d bytes: %s", len(body), body)
	if len(stmts) != 2 {
		t.Fatalf("got %d statements, want 2", len(stmts))
	}
	for _, s := range stmts {
		if s.Principal["AWS"] != "arn:aws:iam::222222222222:root" {
			t.Errorf("%s: principal %v, want the destination account (valid before the role exists)", s.Sid, s.Principal)
		}
		if s.Condition["StringEquals"]["aws:PrincipalArn"] != copier.CopierArn {
			t.Errorf("%s: aws:PrincipalArn %v, want the copier role", s.Sid, s.Condition["StringEquals"]["aws:PrincipalArn"])
		}
	}
	read, grant := stmts[0], stmts[1]
	if got := strings.Join(read.Action, " "); got != "kms:DescribeKey kms:Decrypt kms:ReEncryptFrom" {
		t.Errorf("read actions %q", got)
	}
	if got := strings.Join(grant.Action, " "); got != "kms:CreateGrant" {
		t.Errorf("grant actions %q", got)
	}
	if grant.Condition["Bool"]["kms:GrantIsForAWSResource"] != "true" {
		t.Errorf("CreateGrant without kms:GrantIsForAWSResource: %v", grant.Condition)
	}
	for _, forbidden := range []string{"kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "kms:ReEncryptTo", "kms:ListGrants", "kms:RevokeGrant", "kms:*", "AWSServiceRoleForAutoScaling"} {
		if strings.Contains(string(body), `"`+forbidden) {
			t.Errorf("the source statements name %s", forbidden)
		}
	}
	other := copier
	other.Account, other.CopierArn = "333333333333", strings.Replace(copier.CopierArn, "222222222222", "333333333333", 1)
	if o := CopySourceStatements(other); o[0].Sid == read.Sid || o[1].Sid == grant.Sid {
		t.Error("two destinations share a Sid")
	}
}

func TestCopierStatements(t *testing.T) {
	c := Copier{Partition: "aws", Region: "us-east-1", StackId: "arn:aws:cloudformation:us-east-1:222222222222:stack/AmiCopy/uuid",
		FunctionArn: "arn:aws:lambda:us-east-1:222222222222:function:f"}
	source, dest := "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000", "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	got, _ := json.Marshal(append(CopierSharedStatements(c), CopierKeyStatements(source, dest)...))
	want := `[{"Action":"ec2:CopyImage","Effect":"Allow","Resource":["arn:aws:ec2:us-east-1::image/*","arn:aws:ec2:us-east-1::snapshot/*"]},` +
		`{"Action":"ec2:CreateTags","Condition":{"StringEquals":{"ec2:CreateAction":"CopyImage"}},"Effect":"Allow","Resource":["arn:aws:ec2:us-east-1::image/*","arn:aws:ec2:us-east-1::snapshot/*"]},` +
		`{"Action":["ec2:DeregisterImage","ec2:DeleteSnapshot"],"Condition":{"StringEquals":{"aws:ResourceTag/crossaccountami:stack-id":"arn:aws:cloudformation:us-east-1:222222222222:stack/AmiCopy/uuid"}},"Effect":"Allow","Resource":["arn:aws:ec2:us-east-1::image/*","arn:aws:ec2:us-east-1::snapshot/*"]},` +
		`{"Action":"lambda:InvokeFunction","Effect":"Allow","Resource":"arn:aws:lambda:us-east-1:222222222222:function:f"},` +
		`{"Action":["kms:DescribeKey","kms:Decrypt","kms:ReEncryptFrom"],"Effect":"Allow","Resource":"arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000"},` +
		`{"Action":"kms:CreateGrant","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}},"Effect":"Allow","Resource":"arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000"},` +
		`{"Action":["kms:DescribeKey","kms:GenerateDataKeyWithoutPlaintext","kms:ReEncryptTo","kms:Decrypt"],"Effect":"Allow","Resource":"arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"},` +
		`{"Action":"kms:CreateGrant","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}},"Effect":"Allow","Resource":"arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"}]`
	if string(got) != want {
		t.Errorf("statements\n%s\nwant\n%s", got, want)
	}
	// The account's aws/ebs key: no KMS statement on it (its AWS managed
	// policy lets the account's principals use it through EBS).
	if body, _ := json.Marshal(CopierKeyStatements(source, "")); strings.Contains(string(body), ":222222222222:key/") {
		t.Errorf("KMS statements for the default key: %s", body)
	}
}

func TestLauncherKeyStatements(t *testing.T) {
	slr := "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	got, _ := json.Marshal(LauncherKeyStatements("aws", "222222222222", []string{slr}))
	want := `[{"Sid":"Allow use of the key by the launchers of 222222222222","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*","Condition":{"StringEquals":{"aws:PrincipalArn":"` + slr + `"}}},` +
		`{"Sid":"Allow attachment of persistent resources by the launchers of 222222222222","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":["kms:CreateGrant"],"Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"},"StringEquals":{"aws:PrincipalArn":"` + slr + `"}}}]`
	if string(got) != want {
		t.Errorf("statements\n%s\nwant\n%s", got, want)
	}
}

func TestCopySourcePatternStatements(t *testing.T) {
	pattern := "arn:aws:iam::*:role/crossaccountami/*"
	accounts := CopierScope{Name: "Copiers", Partition: "aws", Accounts: []string{"333333333333", "222222222222"}, CopierPattern: pattern}
	got, _ := json.Marshal(CopySourcePatternStatements(accounts))
	want := `[{"Sid":"Allow the copiers of Copiers to read the snapshots of the AMIs they copy","Effect":"Allow","Principal":{"AWS":["222222222222","333333333333"]},"Action":["kms:DescribeKey","kms:Decrypt","kms:ReEncryptFrom"],"Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/crossaccountami/*"}}},` +
		`{"Sid":"Allow the copiers of Copiers to let EBS read the snapshots of the AMIs they copy","Effect":"Allow","Principal":{"AWS":["222222222222","333333333333"]},"Action":["kms:CreateGrant"],"Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/crossaccountami/*"},"Bool":{"kms:GrantIsForAWSResource":"true"}}}]`
	if string(got) != want {
		t.Errorf("accounts statements\n%s\nwant\n%s", got, want)
	}
	org := CopierScope{Name: "Org", Partition: "aws", OrganizationID: "o-abcdefghij", CopierPattern: pattern}
	got, _ = json.Marshal(CopySourcePatternStatements(org))
	for _, w := range []string{`"Principal":{"AWS":"*"}`, `"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}`, `"Bool":{"kms:GrantIsForAWSResource":"true"}`} {
		if !strings.Contains(string(got), w) {
			t.Errorf("organization statements lack %s: %s", w, got)
		}
	}
	for _, tc := range []struct {
		s    CopierScope
		want string
	}{
		{CopierScope{}, "Accounts or OrganizationId: one is required, got neither"},
		{CopierScope{Accounts: []string{"1"}, OrganizationID: "o-abcdefghij"}, "give one, got both"},
		{CopierScope{OrganizationID: "org"}, `OrganizationId: expected o- and 10 to 32 lower-case letters or digits, got "org"`},
		{CopierScope{Accounts: []string{"222222222222", "2222"}}, `Accounts[1]: "2222"`},
		{CopierScope{Accounts: []string{"222222222222", "222222222222"}}, `Accounts[1]: "222222222222" is listed twice (Accounts[0] too)`},
	} {
		if err := tc.s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.s, err, tc.want)
		}
	}
}

// TestPolicyChars: the compact JSON's characters, white space inside
// strings counted, "<" as one character, and each placeholder as its
// allowance.
func TestPolicyChars(t *testing.T) {
	doc := map[string]interface{}{"Statement": []interface{}{map[string]interface{}{"Action": "a <b>", "Resource": "x${T1}y"}}, "Version": "2012-10-17"}
	// {"Statement":[{"Action":"a <b>","Resource":"x${T1}y"}],"Version":"2012-10-17"}
	const literal = 78 // echo -n '…' | wc -c
	if got := PolicyChars(doc, nil, nil); got != literal {
		t.Errorf("without placeholders: %d characters, want %d", got, literal)
	}
	re := regexp.MustCompile(`\$\{T[0-9]+\}`)
	if got := PolicyChars(doc, re, func(string) int { return 100 }); got != literal-5+100 {
		t.Errorf("with a placeholder of 100: %d characters, want %d", got, literal-5+100)
	}
}

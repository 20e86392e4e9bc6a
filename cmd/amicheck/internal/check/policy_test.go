package check

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"kms:*", "kms:decrypt", true},
		{"kms:reencrypt*", "kms:reencryptfrom", true},
		{"kms:generatedatakey*", "kms:generatedatakey", true},
		{"kms:generatedatakey*", "kms:decrypt", false},
		{"arn:aws:iam::*:role/crossaccountami/*", "arn:aws:iam::111111111111:role/crossaccountami/GrantHandler-A-1", true},
		{"arn:aws:iam::*:role/crossaccountami/*", "arn:aws:iam::111111111111:role/other/GrantHandler-A-1", false},
		{"ami-????????", "ami-12345678", true},
		{"ami-????????", "ami-1234567", false},
		{"*", "", true},
		{"", "x", false},
	}
	for _, tc := range cases {
		if got := glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestEvaluate asks single-statement policies about the service-linked
// role's kms:Decrypt through EC2.
func TestEvaluate(t *testing.T) {
	slrUse := request{
		action: "kms:Decrypt", principal: slrARN, account: destAccount, partition: "aws", exactPrincipal: true,
		context: map[string][]string{
			"aws:principalarn": {slrARN}, "aws:principalaccount": {destAccount}, "kms:viaservice": {"ec2.us-east-1.amazonaws.com"},
		},
		absent: []string{"kms:granteeprincipal"},
	}
	cases := []struct {
		name      string
		statement string
		want      tri
		note      string
	}{
		{"role as principal", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Decrypt"}`, yes, ""},
		{"role in a list, wildcard action", `{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:user/x","` + slrARN + `"]},"Action":["kms:*"]}`, yes, ""},
		{"another role", `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/other"},"Action":"kms:*"}`, no, ""},
		{"another action", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Encrypt"}`, no, ""},
		{"NotAction", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"NotAction":"kms:Encrypt"}`, yes, ""},
		{"account root, pinned by ArnLike", `{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"kms:Decrypt",
			"Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling*"}}}`, yes, ""},
		{"account root, unpinned", `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:Decrypt"}`, maybe, "as a whole"},
		{"anyone, organization", `{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt",
			"Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij","aws:PrincipalArn":"` + slrARN + `"}}}`, maybe, "organization"},
		{"via EC2 in this region", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Decrypt",
			"Condition":{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}}`, yes, ""},
		{"via S3 only", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Decrypt",
			"Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}`, no, ""},
		{"IfExists on an absent key", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Decrypt",
			"Condition":{"StringEqualsIfExists":{"kms:GranteePrincipal":"x"}}}`, yes, ""},
		{"Null on an absent key", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Decrypt",
			"Condition":{"Null":{"kms:GranteePrincipal":"true"}}}`, yes, ""},
		{"unknown condition", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Decrypt",
			"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}`, maybe, "not evaluated"},
		{"a deleted role's unique id", `{"Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEID123"},"Action":"kms:Decrypt"}`, no, "deleted IAM principal"},
		{"unconditional Deny", `{"Effect":"Deny","Principal":"*","Action":"kms:*"}`, no, "denies kms:Decrypt"},
		{"a single statement, not a list", ``, yes, ""},
		{"Allow, and a Deny that may apply", `{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Decrypt"},
			{"Sid":"Outside the org","Effect":"Deny","Principal":"*","Action":"kms:*","Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}}}`, maybe, "Deny statement \"Outside the org\" may apply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"Statement":[` + tc.statement + `]}`
			if tc.statement == "" {
				doc = `{"Statement":{"Effect":"Allow","Principal":{"AWS":"` + slrARN + `"},"Action":"kms:Decrypt"}}`
			}
			d, err := parsePolicy(doc)
			if err != nil {
				t.Fatal(err)
			}
			o := d.evaluate(slrUse)
			if o.v != tc.want {
				t.Errorf("verdict %d, want %d (notes %q)", o.v, tc.want, o.notes)
			}
			if tc.note != "" && !strings.Contains(strings.Join(o.notes, "\n"), tc.note) {
				t.Errorf("notes %q do not mention %q", o.notes, tc.note)
			}
		})
	}
}

func TestParsePolicyRejectsGarbage(t *testing.T) {
	if _, err := parsePolicy(`{"Statement": 7`); err == nil {
		t.Fatal("no error for a broken policy")
	}
}

// TestReportJSONSchema pins the JSON field names scripts rely on.
func TestReportJSONSchema(t *testing.T) {
	r := NewReport([]Result{
		{Check: CheckImage, Status: Pass, Resource: imageID, Detail: "visible"},
		{Check: CheckGrant, Status: Fail, Resource: keyARN, Detail: "no grant", Fix: "create it"},
	})
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]interface{}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["ok"] != false {
		t.Errorf("ok = %v, want false with a FAIL", got["ok"])
	}
	checks := got["checks"].([]interface{})
	first := checks[0].(map[string]interface{})
	for _, k := range []string{"check", "status", "resource", "detail", "fix"} {
		if _, ok := first[k]; !ok {
			t.Errorf("a check has no %q field: %v", k, first)
		}
	}
	if len(first) != 5 {
		t.Errorf("a check has fields %v, want exactly check, status, resource, detail, fix", first)
	}
	if r.ExitCode() != 1 || NewReport([]Result{{Status: Warn}, {Status: Skip}}).ExitCode() != 0 {
		t.Error("exit code: want 1 with a FAIL, 0 with only WARN and SKIP")
	}
}

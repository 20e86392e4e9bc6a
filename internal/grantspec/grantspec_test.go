package grantspec

import (
	"strings"
	"testing"
)

const keyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
const slr = "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

func valid() Properties {
	return Properties{KeyArn: keyArn, GranteePrincipal: slr, Operations: AutoScalingOperations}
}

func TestDecodeRoundTrip(t *testing.T) {
	// GIVEN properties with every optional field set
	p := valid()
	p.RetiringPrincipal = "arn:aws:iam::222222222222:role/retirer"
	p.EncryptionContextSubset = map[string]string{"aws:ebs:id": "vol-1"}
	p.Name = "my-grant"
	p.VerifyToken = "2"
	// WHEN they pass through the template as CloudFormation delivers them (JSON, scalars as strings)
	raw := map[string]interface{}{"ServiceToken": "arn:aws:lambda:us-east-1:222222222222:function:f"}
	for k, v := range p.CfnProperties() {
		switch v := v.(type) {
		case []string:
			l := []interface{}{}
			for _, s := range v {
				l = append(l, s)
			}
			raw[k] = l
		case map[string]string:
			m := map[string]interface{}{}
			for a, b := range v {
				m[a] = b
			}
			raw[k] = m
		default:
			raw[k] = v
		}
	}
	got, err := Decode(raw)
	// THEN they decode to the same grant
	if err != nil {
		t.Fatal(err)
	}
	if !SameGrant(got, p) || got.VerifyToken != p.VerifyToken {
		t.Errorf("decoded %+v, want %+v", got, p)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name string
		mod  func(m map[string]interface{})
		want []string
	}{
		{"unknown operation", func(m map[string]interface{}) { m[PropOperations] = []interface{}{"Decrypt", "Explode"} }, []string{PropOperations, `"Explode"`}},
		{"empty operations", func(m map[string]interface{}) { m[PropOperations] = []interface{}{} }, []string{PropOperations, "got none"}},
		{"alias key", func(m map[string]interface{}) { m[PropKeyArn] = "arn:aws:kms:us-east-1:111111111111:alias/x" }, []string{PropKeyArn, "alias"}},
		{"malformed grantee", func(m map[string]interface{}) { m[PropGranteePrincipal] = "role/x" }, []string{PropGranteePrincipal, `"role/x"`}},
		{"retiring principal not an ARN", func(m map[string]interface{}) { m[PropRetiringPrincipal] = "bob" }, []string{PropRetiringPrincipal, `"bob"`}},
		{"both constraints", func(m map[string]interface{}) {
			m[PropEncryptionContextEquals] = map[string]interface{}{"a": "b"}
			m[PropEncryptionContextSubset] = map[string]interface{}{"a": "b"}
		}, []string{PropEncryptionContextEquals, PropEncryptionContextSubset}},
		{"operations not a list", func(m map[string]interface{}) { m[PropOperations] = "Decrypt" }, []string{PropOperations, `"Decrypt"`}},
		{"bad name", func(m map[string]interface{}) { m[PropName] = "has space" }, []string{PropName, `"has space"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := map[string]interface{}{PropKeyArn: keyArn, PropGranteePrincipal: slr, PropOperations: []interface{}{"Decrypt"}}
			tc.mod(raw)
			_, err := Decode(raw)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSameGrant(t *testing.T) {
	a := valid()
	b := valid()
	b.Operations = []string{"DescribeKey", "CreateGrant", "ReEncryptTo", "ReEncryptFrom", "GenerateDataKeyWithoutPlaintext", "GenerateDataKey", "Encrypt", "Decrypt"}
	b.VerifyToken = "changed"
	if !SameGrant(a, b) {
		t.Error("reordered operations and a new VerifyToken should not define a new grant")
	}
	c := valid()
	c.EncryptionContextEquals = map[string]string{"k": "v"}
	if SameGrant(a, c) {
		t.Error("a new constraint defines a new grant")
	}
	d := valid()
	d.GranteePrincipal = "arn:aws:iam::222222222222:role/other"
	if SameGrant(a, d) {
		t.Error("a new grantee defines a new grant")
	}
}

func TestPhysicalID(t *testing.T) {
	id := PhysicalID{KeyArn: keyArn, GrantId: "0123abcd"}
	got, ok := ParsePhysicalID(id.String())
	if !ok || got != id {
		t.Errorf("round trip: got %+v %v", got, ok)
	}
	for _, notGrant := range []string{"", "c7a1c2b0-1234-4cde-9f00-aaaaaaaaaaaa", "2026/11/28/[$LATEST]abc", keyArn, "arn:aws:kms:us-east-1:111111111111:alias/x:0123"} {
		if _, ok := ParsePhysicalID(notGrant); ok {
			t.Errorf("%q parsed as a grant id", notGrant)
		}
	}
}

func TestDefaultName(t *testing.T) {
	stack := "arn:aws:cloudformation:us-east-1:222222222222:stack/AmiDestination/6f0d6d00-8d8d-11ef-9c5f-0a1b2c3d4e5f"
	n1 := DefaultName(stack, "SharedAmiGrant1234")
	if n1 != DefaultName(stack, "SharedAmiGrant1234") {
		t.Error("not deterministic")
	}
	if n1 == DefaultName(strings.Replace(stack, "6f0d", "7f0d", 1), "SharedAmiGrant1234") {
		t.Error("two stack instances share a name")
	}
	if !nameRe.MatchString(n1) {
		t.Errorf("%q is not a valid grant name", n1)
	}
	if long := DefaultName(stack, strings.Repeat("L", 300)); !nameRe.MatchString(long) {
		t.Errorf("long name %q is not valid", long)
	}
}

func TestDecodeIgnoresTheRetiredRetireOnDelete(t *testing.T) {
	// GIVEN the properties of a 0.1 template, which carried RetireOnDelete
	raw := map[string]interface{}{PropKeyArn: keyArn, PropGranteePrincipal: slr, PropOperations: []interface{}{"Decrypt"}, "RetireOnDelete": "true"}
	// WHEN the handler decodes them
	got, err := Decode(raw)
	// THEN they still define the same grant: how a grant is removed now
	// follows from its RetiringPrincipal alone
	if err != nil {
		t.Fatal(err)
	}
	if !SameGrant(got, Properties{KeyArn: keyArn, GranteePrincipal: slr, Operations: []string{"Decrypt"}}) {
		t.Errorf("decoded %+v", got)
	}
}

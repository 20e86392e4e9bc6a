package keypolicyspec_test

import (
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

const keyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestRoundTrip(t *testing.T) {
	stmts, err := keypolicyspec.ParseStatements(`[ {"Sid":"A", "Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"},{"Sid":"B","Effect":"Deny","Action":"kms:*","Resource":"*","Principal":"*"}]`)
	if err != nil {
		t.Fatal(err)
	}
	p := keypolicyspec.Properties{KeyArn: keyArn, Statements: stmts}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	raw := p.CfnProperties()
	raw["ServiceToken"] = "arn:aws:lambda:us-east-1:111111111111:function:f"
	got, err := keypolicyspec.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyArn != keyArn || strings.Join(keypolicyspec.Sids(got.Statements), ",") != "A,B" || string(got.Statements[0].JSON) != `{"Sid":"A","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}` {
		t.Errorf("Decode = %+v", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  map[string]interface{}
		want []string
	}{
		{"missing", map[string]interface{}{}, []string{"KeyArn: required", "Statements: required"}},
		{"alias", map[string]interface{}{"KeyArn": "arn:aws:kms:us-east-1:111111111111:alias/x", "Statements": `[{"Sid":"A","Effect":"Allow"}]`}, []string{"KeyArn:", "alias"}},
		{"not json", map[string]interface{}{"KeyArn": keyArn, "Statements": `{`}, []string{"Statements: expected a JSON array"}},
		{"empty", map[string]interface{}{"KeyArn": keyArn, "Statements": `[]`}, []string{"at least one"}},
		{"no sid", map[string]interface{}{"KeyArn": keyArn, "Statements": `[{"Effect":"Allow"}]`}, []string{"a Sid is required"}},
		{"dup sid", map[string]interface{}{"KeyArn": keyArn, "Statements": `[{"Sid":"A","Effect":"Allow"},{"Sid":"A","Effect":"Allow"}]`}, []string{`"A" is used twice`}},
		{"effect", map[string]interface{}{"KeyArn": keyArn, "Statements": `[{"Sid":"A","Effect":"allow"}]`}, []string{"Effect must be Allow or Deny"}},
		{"not a string", map[string]interface{}{"KeyArn": keyArn, "Statements": []interface{}{}}, []string{"Statements: expected a string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keypolicyspec.Decode(tc.raw)
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

func TestPhysicalID(t *testing.T) {
	id := keypolicyspec.NewPhysicalID(keyArn, "arn:aws:cloudformation:us-east-1:111111111111:stack/S/uuid", "Stmts")
	got, ok := keypolicyspec.ParsePhysicalID(id.String())
	if !ok || got != id {
		t.Errorf("ParsePhysicalID(%q) = %+v, %v", id, got, ok)
	}
	if other := keypolicyspec.NewPhysicalID(keyArn, "arn:aws:cloudformation:us-east-1:111111111111:stack/S/uuid", "Other"); other == id {
		t.Error("two logical ids give one physical id")
	}
	for _, bad := range []string{"", "00000000-0000-4000-8000-000000000001", keyArn, keyArn + "/xyz"} {
		if _, ok := keypolicyspec.ParsePhysicalID(bad); ok {
			t.Errorf("ParsePhysicalID(%q) ok", bad)
		}
	}
}

package grantspec

import (
	"encoding/json"
	"strings"
	"testing"
)

const handlerRole = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-dest-0123456789"

func owned() Properties {
	p := valid()
	p.Operations = []string{"Decrypt", "CreateGrant"}
	p.RetiringPrincipal = handlerRole
	p.Name = "dest/AmiGrant/0f2a3c40"
	return p
}

func TestEncodeHealEventExactJSON(t *testing.T) {
	p := owned()
	p.VerifyToken = "2026-11-28"

	b, err := EncodeHealEvent(p)

	if err != nil {
		t.Fatal(err)
	}
	// The Input the EventBridge rule carries, exactly: the properties as the
	// template has them, without VerifyToken.
	want := `{"ResourceProperties":{"GranteePrincipal":"` + slr + `","KeyArn":"` + keyArn + `","Name":"dest/AmiGrant/0f2a3c40","Operations":["Decrypt","CreateGrant"],"RetiringPrincipal":"` + handlerRole + `"},"crossaccountami":"heal-grant"}`
	if string(b) != want {
		t.Errorf("Input\n%s\nwant\n%s", b, want)
	}
}

func TestHealEventRoundTrip(t *testing.T) {
	p := owned()
	p.EncryptionContextEquals = map[string]string{"aws:ebs:id": "vol-1"}
	b, err := EncodeHealEvent(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHealEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if !SameGrant(got, p) {
		t.Errorf("decoded %+v, want %+v", got, p)
	}
	if HealEventName(b) != p.Name {
		t.Errorf("HealEventName %q", HealEventName(b))
	}
}

func TestHealEventMapKeysAreTheConstants(t *testing.T) {
	// The struct tags cannot name the constants: the map and the JSON must
	// agree with them all the same.
	e, err := NewHealEvent(owned())
	if err != nil {
		t.Fatal(err)
	}
	var viaJSON map[string]interface{}
	b, _ := json.Marshal(e)
	_ = json.Unmarshal(b, &viaJSON)
	m := e.Map()
	for _, k := range []string{HealEventKey, HealEventProperties} {
		if _, ok := viaJSON[k]; !ok {
			t.Errorf("the JSON of a HealEvent lacks %s: %s", k, b)
		}
		if _, ok := m[k]; !ok {
			t.Errorf("Map lacks %s: %v", k, m)
		}
	}
	if m[HealEventKey] != HealEventKind || len(m) != 2 {
		t.Errorf("Map %v", m)
	}
}

func TestHealEventInputKeepsTokens(t *testing.T) {
	// The constructs pass unresolved values (CDK tokens): the map carries
	// them as they are, unvalidated.
	p := Properties{KeyArn: "${Token[TOKEN.123]}", GranteePrincipal: "${Token[TOKEN.124]}", Operations: AutoScalingOperations, RetiringPrincipal: "${Token[TOKEN.125]}", Name: "${Token[TOKEN.126]}"}
	m, err := HealEventInput(p)
	if err != nil {
		t.Fatal(err)
	}
	props := m[HealEventProperties].(map[string]interface{})
	if props[PropKeyArn] != p.KeyArn || props[PropName] != p.Name || props[PropRetiringPrincipal] != p.RetiringPrincipal {
		t.Errorf("properties %v", props)
	}
	p.Name = ""
	if _, err := HealEventInput(p); err == nil || !strings.Contains(err.Error(), "needs the grant's name") {
		t.Errorf("an Input without a name: %v", err)
	}
}

func TestDecodeHealEventRejects(t *testing.T) {
	good, _ := EncodeHealEvent(owned())
	for _, tc := range []struct {
		name string
		mod  func(m map[string]interface{})
		want string
	}{
		{"other kind", func(m map[string]interface{}) { m[HealEventKey] = "heal-everything" }, `crossaccountami: expected "heal-grant", got "heal-everything"`},
		{"no properties", func(m map[string]interface{}) { delete(m, HealEventProperties) }, "ResourceProperties: expected the grant's properties, got none"},
		{"no name", func(m map[string]interface{}) { delete(m[HealEventProperties].(map[string]interface{}), PropName) }, "Name: the check needs the grant's name, got none"},
		{"bad operation", func(m map[string]interface{}) {
			m[HealEventProperties].(map[string]interface{})[PropOperations] = []interface{}{"Fly"}
		}, `Operations: unknown grant operation "Fly"`},
		{"properties not an object", func(m map[string]interface{}) { m[HealEventProperties] = "KeyArn=x" }, "invalid heal-grant event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]interface{}
			_ = json.Unmarshal(good, &m)
			tc.mod(m)
			raw, _ := json.Marshal(m)
			_, err := DecodeHealEvent(raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

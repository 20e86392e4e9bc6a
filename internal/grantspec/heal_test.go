package grantspec

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

const handlerRole = "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-dest-0123456789"

// resource is the grant's Custom::KmsGrant, as the rule's Input names it.
var resource = HealResource{
	StackID:            "arn:aws:cloudformation:us-east-1:222222222222:stack/dest/0f2a3c40-ad8f-11ef-9a5b-0affd3c1d2e1",
	LogicalResourceID:  "AmiGrant1A2B3C4D",
	PhysicalResourceID: keyArn + ":0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60",
}

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

	b, err := EncodeHealEvent(p, resource)

	if err != nil {
		t.Fatal(err)
	}
	// The Input the EventBridge rule carries, exactly: the grant's resource,
	// and the properties as the template has them, without VerifyToken.
	want := `{"LogicalResourceId":"AmiGrant1A2B3C4D","PhysicalResourceId":"` + keyArn + `:0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60",` +
		`"ResourceProperties":{"GranteePrincipal":"` + slr + `","KeyArn":"` + keyArn + `","Name":"dest/AmiGrant/0f2a3c40","Operations":["Decrypt","CreateGrant"],"RetiringPrincipal":"` + handlerRole + `"},` +
		`"StackId":"arn:aws:cloudformation:us-east-1:222222222222:stack/dest/0f2a3c40-ad8f-11ef-9a5b-0affd3c1d2e1","crossaccountami":"heal-grant"}`
	if string(b) != want {
		t.Errorf("Input\n%s\nwant\n%s", b, want)
	}
}

func TestHealEventRoundTrip(t *testing.T) {
	p := owned()
	p.EncryptionContextEquals = map[string]string{"aws:ebs:id": "vol-1"}
	b, err := EncodeHealEvent(p, resource)
	if err != nil {
		t.Fatal(err)
	}
	got, r, err := DecodeHealEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if !SameGrant(got, p) || r != resource {
		t.Errorf("decoded %+v of %+v, want %+v of %+v", got, r, p, resource)
	}
	if HealEventName(b) != p.Name {
		t.Errorf("HealEventName %q", HealEventName(b))
	}
}

func TestHealEventMapKeysAreTheConstants(t *testing.T) {
	// The struct tags cannot name the constants: the map and the JSON must
	// agree with them all the same.
	e, err := NewHealEvent(owned(), resource)
	if err != nil {
		t.Fatal(err)
	}
	var viaJSON map[string]interface{}
	b, _ := json.Marshal(e)
	_ = json.Unmarshal(b, &viaJSON)
	m := e.Map()
	for _, k := range []string{HealEventKey, HealEventProperties, HealEventStackID, HealEventLogicalID, HealEventPhysicalID} {
		if _, ok := viaJSON[k]; !ok {
			t.Errorf("the JSON of a HealEvent lacks %s: %s", k, b)
		}
		if _, ok := m[k]; !ok {
			t.Errorf("Map lacks %s: %v", k, m)
		}
	}
	if m[HealEventKey] != HealEventKind || len(m) != 5 || len(viaJSON) != 5 {
		t.Errorf("Map %v", m)
	}
}

func TestHealEventInputKeepsTokens(t *testing.T) {
	// The constructs pass unresolved values (CDK tokens): the map carries
	// them as they are, unvalidated.
	p := Properties{KeyArn: "${Token[TOKEN.123]}", GranteePrincipal: "${Token[TOKEN.124]}", Operations: AutoScalingOperations, RetiringPrincipal: "${Token[TOKEN.125]}", Name: "${Token[TOKEN.126]}"}
	r := HealResource{StackID: "${Token[AWS.StackId.1]}", LogicalResourceID: "${Token[TOKEN.127]}", PhysicalResourceID: "${Token[TOKEN.128]}"}
	m, err := HealEventInput(p, r)
	if err != nil {
		t.Fatal(err)
	}
	props := m[HealEventProperties].(map[string]interface{})
	if props[PropKeyArn] != p.KeyArn || props[PropName] != p.Name || props[PropRetiringPrincipal] != p.RetiringPrincipal {
		t.Errorf("properties %v", props)
	}
	if m[HealEventStackID] != r.StackID || m[HealEventLogicalID] != r.LogicalResourceID || m[HealEventPhysicalID] != r.PhysicalResourceID {
		t.Errorf("resource members %v", m)
	}
	if _, err := HealEventInput(p, HealResource{StackID: r.StackID, LogicalResourceID: r.LogicalResourceID}); err == nil || !strings.Contains(err.Error(), "needs the grant's resource") || !strings.Contains(err.Error(), "PhysicalResourceId") {
		t.Errorf("an Input without the physical id: %v", err)
	}
	p.Name = ""
	if _, err := HealEventInput(p, r); err == nil || !strings.Contains(err.Error(), "needs the grant's name") {
		t.Errorf("an Input without a name: %v", err)
	}
}

func TestDecodeHealEventRejects(t *testing.T) {
	good, _ := EncodeHealEvent(owned(), resource)
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
		{"stack id not an ARN", func(m map[string]interface{}) { m[HealEventStackID] = "dest" }, `StackId: expected the stack's unique id (arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>), got "dest"`},
		{"physical id empty", func(m map[string]interface{}) { m[HealEventPhysicalID] = "" }, "it lacks PhysicalResourceId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]interface{}
			_ = json.Unmarshal(good, &m)
			tc.mod(m)
			raw, _ := json.Marshal(m)
			_, _, err := DecodeHealEvent(raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// An event of a rule made before the check asked CloudFormation (no
// StackId, LogicalResourceId, PhysicalResourceId) could be a late delivery
// after the grant's Delete: it is refused, with an error the handler can
// tell apart, and its name can still be read for the metric.
func TestDecodeHealEventRefusesAnEventThatNamesNoResource(t *testing.T) {
	old := `{"crossaccountami":"heal-grant","ResourceProperties":{"KeyArn":"` + keyArn + `","GranteePrincipal":"` + slr + `","Operations":["Decrypt"],"RetiringPrincipal":"` + handlerRole + `","Name":"dest/AmiGrant/0f2a3c40"}}`

	_, _, err := DecodeHealEvent([]byte(old))

	var noResource *NoResourceError
	if !errors.As(err, &noResource) || !slices.Equal(noResource.Missing, []string{"StackId", "LogicalResourceId", "PhysicalResourceId"}) {
		t.Fatalf("error %v, want a *NoResourceError naming the three members", err)
	}
	for _, w := range []string{"invalid heal-grant event: the event names no Custom::KmsGrant resource (it lacks StackId, LogicalResourceId, PhysicalResourceId)", "made by an older version of this library", "deploy the stack again"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if HealEventName([]byte(old)) != "dest/AmiGrant/0f2a3c40" {
		t.Errorf("HealEventName %q", HealEventName([]byte(old)))
	}
}

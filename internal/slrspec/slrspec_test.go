package slrspec_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/slrspec"
)

// raw is what the handler receives for p: the construct's properties as
// CloudFormation sends them (strings), with the ServiceToken it adds.
func raw(p slrspec.Properties) map[string]interface{} {
	out := map[string]interface{}{"ServiceToken": "arn:aws:lambda:us-east-1:222222222222:function:h"}
	for k, v := range p.CfnProperties() {
		out[k] = v
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, p := range []slrspec.Properties{{}, {CustomSuffix: "team-a"}, {CustomSuffix: "a.b@c_d+e=f,g"}} {
		got, err := slrspec.Decode(raw(p))
		if err != nil || got != p {
			t.Errorf("Decode(CfnProperties(%+v)) = %+v, %v", p, got, err)
		}
	}
}

func TestCfnPropertiesLeaveOutTheDefaultRole(t *testing.T) {
	// The default role has no suffix: the property is absent, not "".
	if got := (slrspec.Properties{}).CfnProperties(); len(got) != 0 {
		t.Errorf("CfnProperties of the default role = %v, want no property", got)
	}
	if got, want := (slrspec.Properties{CustomSuffix: "team"}).CfnProperties(), map[string]interface{}{"CustomSuffix": "team"}; !reflect.DeepEqual(got, want) {
		t.Errorf("CfnProperties = %v, want %v", got, want)
	}
}

func TestDecodeTreatsNullAsTheDefaultRole(t *testing.T) {
	got, err := slrspec.Decode(map[string]interface{}{"CustomSuffix": nil})
	if err != nil || got != (slrspec.Properties{}) {
		t.Errorf("Decode(CustomSuffix: null) = %+v, %v, want the default role", got, err)
	}
}

// A bad suffix names the property and the value, in Validate (the
// construct, at synth time) and in Decode (the handler, at deploy time).
func TestBadSuffixes(t *testing.T) {
	for _, suffix := range []string{"has space", "semi;colon", "slash/", strings.Repeat("a", 36)} {
		t.Run(suffix, func(t *testing.T) {
			p := slrspec.Properties{CustomSuffix: suffix}
			for name, err := range map[string]error{"Validate": p.Validate(), "Decode": second(slrspec.Decode(raw(p)))} {
				if err == nil {
					t.Errorf("%s: no error", name)
					continue
				}
				for _, want := range []string{"CustomSuffix", `"` + suffix + `"`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s: %q does not name %s", name, err, want)
					}
				}
			}
		})
	}
}

func TestDecodeRejectsANonString(t *testing.T) {
	_, err := slrspec.Decode(map[string]interface{}{"CustomSuffix": 42.0})
	if err == nil || !strings.Contains(err.Error(), "CustomSuffix") || !strings.Contains(err.Error(), "42") {
		t.Errorf("Decode(CustomSuffix: 42) = %v, want an error naming the property and the value", err)
	}
}

func second[T any](_ T, err error) error { return err }

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

// TestOtherServices: the other launchers' services round-trip under their
// own resource type; Auto Scaling's name, written or not, is the default
// (never written, so templates before other services stay the same).
func TestOtherServices(t *testing.T) {
	for _, tc := range []struct {
		p        slrspec.Properties
		wantType string
		wantRole string
	}{
		{slrspec.Properties{}, "Custom::AutoScalingServiceLinkedRole", "AWSServiceRoleForAutoScaling"},
		{slrspec.Properties{AWSServiceName: "ec2fleet.amazonaws.com"}, "Custom::ServiceLinkedRole", "AWSServiceRoleForEC2Fleet"},
		{slrspec.Properties{AWSServiceName: "spotfleet.amazonaws.com"}, "Custom::ServiceLinkedRole", "AWSServiceRoleForEC2SpotFleet"},
		{slrspec.Properties{AWSServiceName: "spot.amazonaws.com"}, "Custom::ServiceLinkedRole", "AWSServiceRoleForEC2Spot"},
	} {
		got, err := slrspec.Decode(raw(tc.p))
		if err != nil || got != tc.p {
			t.Errorf("Decode(CfnProperties(%+v)) = %+v, %v", tc.p, got, err)
		}
		if tc.p.ResourceType() != tc.wantType || tc.p.Role().BaseName != tc.wantRole {
			t.Errorf("%+v: type %s role %s, want %s %s", tc.p, tc.p.ResourceType(), tc.p.Role().BaseName, tc.wantType, tc.wantRole)
		}
	}
	if got := (slrspec.Properties{AWSServiceName: "autoscaling.amazonaws.com"}).CfnProperties(); len(got) != 0 {
		t.Errorf("Auto Scaling named explicitly: CfnProperties %v, want none", got)
	}
	if got, err := slrspec.Decode(map[string]interface{}{"AWSServiceName": "autoscaling.amazonaws.com"}); err != nil || got != (slrspec.Properties{}) {
		t.Errorf("Decode(AWSServiceName: autoscaling) = %+v, %v, want the default", got, err)
	}
	for _, tc := range []struct {
		p    slrspec.Properties
		want string
	}{
		{slrspec.Properties{AWSServiceName: "ec2.amazonaws.com"}, `AWSServiceName: expected one of [autoscaling.amazonaws.com ec2fleet.amazonaws.com spot.amazonaws.com spotfleet.amazonaws.com], got "ec2.amazonaws.com"`},
		{slrspec.Properties{AWSServiceName: "ec2fleet.amazonaws.com", CustomSuffix: "x"}, `CustomSuffix: AWSServiceRoleForEC2Fleet takes no custom suffix (only autoscaling.amazonaws.com does), got "x"`},
	} {
		if err := tc.p.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("Validate(%+v) = %v, want %s", tc.p, err, tc.want)
		}
	}
}

package amipermissionspec_test

import (
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/amipermissionspec"
)

const (
	orgArn = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
	ouArn  = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefghij"
)

func TestRoundTrip(t *testing.T) {
	p := amipermissionspec.Properties{ImageId: "ami-0123456789abcdef0", AccountIds: []string{"222222222222"}, OrganizationArns: []string{orgArn}, OrganizationalUnitArns: []string{ouArn}, ShareSnapshots: true}
	raw := map[string]interface{}{}
	for k, v := range p.CfnProperties() {
		if l, ok := v.([]string); ok {
			var items []interface{}
			for _, s := range l {
				items = append(items, s)
			}
			v = items
		}
		raw[k] = v
	}
	got, err := amipermissionspec.Decode(raw)
	if err != nil || got.ImageId != p.ImageId || !got.ShareSnapshots || got.OrganizationalUnitArns[0] != ouArn || got.AccountIds[0] != "222222222222" || got.OrganizationArns[0] != orgArn {
		t.Errorf("Decode = %+v, %v", got, err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    amipermissionspec.Properties
		want []string
	}{
		{"image", amipermissionspec.Properties{ImageId: "ami-1", AccountIds: []string{"222222222222"}}, []string{"ImageId", `"ami-1"`}},
		{"account", amipermissionspec.Properties{ImageId: "ami-01234567", AccountIds: []string{"2222"}}, []string{"AccountIds", `"2222"`}},
		{"org", amipermissionspec.Properties{ImageId: "ami-01234567", OrganizationArns: []string{"o-abcdefghij"}}, []string{"OrganizationArns", `"o-abcdefghij"`}},
		{"ou", amipermissionspec.Properties{ImageId: "ami-01234567", OrganizationalUnitArns: []string{orgArn}}, []string{"OrganizationalUnitArns", orgArn}},
		{"nothing", amipermissionspec.Properties{ImageId: "ami-01234567"}, []string{"at least one"}},
		{"snapshots need accounts", amipermissionspec.Properties{ImageId: "ami-01234567", OrganizationArns: []string{orgArn}, ShareSnapshots: true}, []string{"ShareSnapshots", "accounts only"}},
		{"twice", amipermissionspec.Properties{ImageId: "ami-01234567", AccountIds: []string{"222222222222", "222222222222"}}, []string{"listed twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPhysicalID(t *testing.T) {
	id := amipermissionspec.NewPhysicalID("ami-0123456789abcdef0", "stack", "Sharing")
	if got, ok := amipermissionspec.ParsePhysicalID(id.String()); !ok || got != id {
		t.Errorf("ParsePhysicalID(%q) = %+v %v", id, got, ok)
	}
	if _, ok := amipermissionspec.ParsePhysicalID("00000000-0000-4000-8000-000000000001"); ok {
		t.Error("request id parsed")
	}
}

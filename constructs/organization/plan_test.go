package organization

import (
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

func validInput() planInput {
	return planInput{
		target:            orgtarget.Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-11111111", "r-ab12"}},
		regions:           []string{"us-east-1", "eu-west-1"},
		multiRegionKeyArn: "arn:aws:kms:us-east-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab",
		deployAccount:     "999999999999",
	}
}

func TestPlanDefaults(t *testing.T) {
	p, err := newPlan(validInput())
	if err != nil {
		t.Fatal(err)
	}
	if p.maxConcurrent != 25 || p.failureTolerance != 10 || p.callAs != "SELF" || strings.Join(p.regionOrder, ",") != "us-east-1,eu-west-1" {
		t.Errorf("defaults: %+v", p)
	}
	if got := p.keyArns["eu-west-1"]; got != "arn:aws:kms:eu-west-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab" {
		t.Errorf("eu-west-1 replica: %s", got)
	}
}

// access is a KeyAccess item on a key of this app in region.
func access(region string, target orgtarget.Target) accessKey {
	return accessKey{path: "Keys/" + region + "/Access", keyArn: "${Token[TOKEN." + region + "]}", region: region, target: target}
}

// TestPlanKeyAccess: the keys of KeyAccess, tokens included, are the keys of
// their regions; their target may list the same OUs in another order.
func TestPlanKeyAccess(t *testing.T) {
	in := validInput()
	in.multiRegionKeyArn = ""
	same := orgtarget.Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"r-ab12", "ou-ab12-11111111"}}
	in.keyAccess = []accessKey{access("eu-west-1", same), access("us-east-1", in.target)}
	p, err := newPlan(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.keyArns["us-east-1"] != "${Token[TOKEN.us-east-1]}" || p.keyArns["eu-west-1"] != "${Token[TOKEN.eu-west-1]}" || len(p.keyArns) != 2 {
		t.Errorf("keys %v", p.keyArns)
	}
}

func TestPlanBadInput(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name string
		mod  func(*planInput)
		want []string
	}{
		{"org id", func(in *planInput) { in.target.OrganizationID = "org-1" }, []string{"Target.OrganizationId:", `"org-1"`}},
		{"no OU", func(in *planInput) { in.target.UnitIDs = nil }, []string{"Target.OrganizationalUnitIds:", "which a StackSet deploys to, got none"}},
		{"account id instead of an OU", func(in *planInput) { in.target.UnitIDs = []string{"123456789012"} }, []string{"Target.OrganizationalUnitIds:", `"123456789012"`}},
		{"OU of another root", func(in *planInput) { in.target.UnitIDs = []string{"r-ab12", "ou-cd34-22222222"} }, []string{"Target.OrganizationalUnitIds:", "two roots", `"ou-cd34-22222222"`}},
		{"no region", func(in *planInput) { in.regions = nil }, []string{"Regions:", "got none"}},
		{"bad region", func(in *planInput) { in.regions = []string{"us-east-1", "mars-1"} }, []string{"Regions:", `"mars-1"`}},
		{"single-region key as multi-region", func(in *planInput) {
			in.multiRegionKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, []string{"MultiRegionKeyArn:", "key/mrk-", "KeyArns"}},
		{"both key props", func(in *planInput) { in.keyArns = map[string]string{"us-east-1": in.multiRegionKeyArn} }, []string{"KeyArns, MultiRegionKeyArn and KeyAccess: expected one of the three, got 2"}},
		{"key access and a key ARN", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyArns = map[string]string{"us-east-1": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
			in.keyAccess = []accessKey{access("us-east-1", in.target)}
		}, []string{"KeyArns, MultiRegionKeyArn and KeyAccess: expected one of the three, got 2"}},
		{"no key", func(in *planInput) { in.multiRegionKeyArn = "" }, []string{"KeyArns, MultiRegionKeyArn or KeyAccess: required"}},
		// A key of this app in KeyArns used to fail as "not a KMS key ARN".
		{"key of this app in KeyArns", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyArns = map[string]string{"us-east-1": "${Token[TOKEN.123]}", "eu-west-1": "${Token[TOKEN.124]}"}
		}, []string{"KeyArns[", "got the ARN of a key of this app (a value known only at deploy time)", "pass the key's OrganizationKeyAccess in KeyAccess instead"}},
		{"key access for another target", func(in *planInput) {
			in.multiRegionKeyArn = ""
			other := orgtarget.Target{OrganizationID: "o-abcdefghij", UnitIDs: []string{"ou-ab12-11111111"}}
			in.keyAccess = []accessKey{access("us-east-1", in.target), access("eu-west-1", other)}
		}, []string{"KeyAccess[1] (Keys/eu-west-1/Access)", "o-abcdefghij (ou-ab12-11111111)", "but Target is o-abcdefghij (ou-ab12-11111111, r-ab12)", "the same OrganizationTarget"}},
		{"key access missing a region", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyAccess = []accessKey{access("us-east-1", in.target)}
		}, []string{"KeyAccess: no key for the region eu-west-1", "got keys for us-east-1"}},
		{"two key accesses for a region", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyAccess = []accessKey{access("us-east-1", in.target), access("eu-west-1", in.target), access("us-east-1", in.target)}
		}, []string{"KeyAccess[2] (Keys/us-east-1/Access): a second key for us-east-1, after Keys/us-east-1/Access"}},
		{"key access in a region not deployed", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyAccess = []accessKey{access("us-east-1", in.target), access("eu-west-1", in.target), access("us-west-2", in.target)}
		}, []string{"KeyAccess[2] (Keys/us-west-2/Access): its key is in us-west-2, which is not in Regions (us-east-1, eu-west-1)"}},
		{"key access of a key in an unknown region", func(in *planInput) {
			in.multiRegionKeyArn = ""
			a := access("us-east-1", in.target)
			a.region = ""
			in.keyAccess = []accessKey{a}
		}, []string{"KeyAccess[0] (Keys/us-east-1/Access): the region of its key", "unknown"}},
		{"region without a key", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyArns = map[string]string{"us-east-1": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
		}, []string{"KeyArns: no key for the region eu-west-1", "got keys for us-east-1"}},
		{"key of another region", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyArns = map[string]string{
				"us-east-1": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
				"eu-west-1": "arn:aws:kms:us-east-1:111111111111:key/2234abcd-12ab-34cd-56ef-1234567890ab",
			}
		}, []string{"KeyArns[eu-west-1]:", "is in region us-east-1"}},
		{"key of a region not deployed", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyArns = map[string]string{
				"us-east-1": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
				"eu-west-1": "arn:aws:kms:eu-west-1:111111111111:key/2234abcd-12ab-34cd-56ef-1234567890ab",
				"us-west-2": "arn:aws:kms:us-west-2:111111111111:key/3234abcd-12ab-34cd-56ef-1234567890ab",
			}
		}, []string{"KeyArns: a key for us-west-2, which is not in Regions"}},
		{"alias instead of a key", func(in *planInput) {
			in.multiRegionKeyArn = ""
			in.keyArns = map[string]string{"us-east-1": "arn:aws:kms:us-east-1:111111111111:alias/ami", "eu-west-1": "arn:aws:kms:eu-west-1:111111111111:alias/ami"}
		}, []string{"KeyArns[", "alias/ami"}},
		{"region order of other regions", func(in *planInput) { in.regionOrder = []string{"us-east-1"} }, []string{"RegionOrder:", "us-east-1, eu-west-1"}},
		{"concurrency 0", func(in *planInput) { in.maxConcurrent = f(0) }, []string{"MaxConcurrentPercentage:", "got 0"}},
		{"tolerance over 100", func(in *planInput) { in.failureTolerance = f(150) }, []string{"FailureTolerancePercentage:", "got 150"}},
		{"fractional percentage", func(in *planInput) { in.maxConcurrent = f(12.5) }, []string{"MaxConcurrentPercentage:", "got 12.5"}},
		{"call as", func(in *planInput) { in.callAs = "ADMIN" }, []string{"CallAs:", `"ADMIN"`}},
		{"deploying account unknown", func(in *planInput) { in.deployAccount = "${Token[AWS.AccountId.1]}" }, []string{"concrete account", "got a value known only at deploy time"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := validInput()
			tc.mod(&in)
			_, err := newPlan(in)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "${Token[") {
				t.Errorf("error %q shows token text", err)
			}
		})
	}
}

func TestBucketPrefix(t *testing.T) {
	if err := validateBucketPrefix(DefaultCodeBucketPrefix, "999999999999", []string{"ap-southeast-2"}); err != nil {
		t.Errorf("default prefix: %v", err)
	}
	for _, bad := range []string{"Upper", "under_score", strings.Repeat("a", 40)} {
		if err := validateBucketPrefix(bad, "999999999999", []string{"ap-southeast-2"}); err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("prefix %q: %v", bad, err)
		}
	}
}

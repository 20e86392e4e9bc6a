package organization

import (
	"strings"
	"testing"
)

func validInput() planInput {
	return planInput{
		orgID:             "o-abcdefghij",
		ouIDs:             []string{"ou-ab12-11111111", "r-ab12"},
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

func TestPlanBadInput(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name string
		mod  func(*planInput)
		want []string
	}{
		{"org id", func(in *planInput) { in.orgID = "org-1" }, []string{"OrganizationId:", `"org-1"`}},
		{"no OU", func(in *planInput) { in.ouIDs = nil }, []string{"OrganizationalUnitIds:", "got none"}},
		{"account id instead of an OU", func(in *planInput) { in.ouIDs = []string{"123456789012"} }, []string{"OrganizationalUnitIds:", `"123456789012"`}},
		{"no region", func(in *planInput) { in.regions = nil }, []string{"Regions:", "got none"}},
		{"bad region", func(in *planInput) { in.regions = []string{"us-east-1", "mars-1"} }, []string{"Regions:", `"mars-1"`}},
		{"single-region key as multi-region", func(in *planInput) {
			in.multiRegionKeyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, []string{"MultiRegionKeyArn:", "key/mrk-", "KeyArns"}},
		{"both key props", func(in *planInput) { in.keyArns = map[string]string{"us-east-1": in.multiRegionKeyArn} }, []string{"KeyArns and MultiRegionKeyArn", "got both"}},
		{"no key", func(in *planInput) { in.multiRegionKeyArn = "" }, []string{"KeyArns or MultiRegionKeyArn: required"}},
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

package awsid

import (
	"strings"
	"testing"
)

func TestParseKeyARN(t *testing.T) {
	cases := []struct {
		in      string
		wantErr string // empty: valid
	}{
		{"arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", ""},
		{"arn:aws-cn:kms:cn-north-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab", ""},
		{"arn:aws:kms:us-east-1:111111111111:alias/ami", "alias ARN"},
		{"arn:aws:s3:::bucket", "service"},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", "expected a KMS key ARN"},
		{"arn:aws:kms:us-east-1:11111:key/1234abcd-12ab-34cd-56ef-1234567890ab", "12 digits"},
		{"arn:aws:kms:useast:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", "region"},
		{"arn:aws:kms:us-east-1:111111111111:key/not-a-key", "key/<key-id>"},
		{"", "expected a KMS key ARN"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseKeyARN(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("error = %v, want it to contain %q and the value", err, tc.wantErr)
			}
		})
	}
}

func TestValidators(t *testing.T) {
	cases := []struct {
		name  string
		check func(string) error
		good  []string
		bad   []string
	}{
		{"account", ValidateAccount, []string{"123456789012"}, []string{"", "12345678901", "1234567890123", "12345678901a"}},
		{"image", ValidateImageID, []string{"ami-0123456789abcdef0", "ami-12345678"}, []string{"ami-XYZ", "ami-0123", "i-0123456789abcdef0", ""}},
		{"slr suffix", ValidateSLRSuffix, []string{"team-a", "a.b@c", "under_score"}, []string{"", "has space", "semi;colon", strings.Repeat("a", 36)}},
		{"principal", ValidatePrincipalARN, []string{"arn:aws:iam::123456789012:role/x", "arn:aws:iam::123456789012:root"}, []string{"role/x", "arn:aws:s3:::b", "arn:aws:iam::1:role/x"}},
		{"role path", ValidateRolePath, []string{"/", "/a/b/"}, []string{"", "a/", "/a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range tc.good {
				if err := tc.check(v); err != nil {
					t.Errorf("%q: unexpected error %v", v, err)
				}
			}
			for _, v := range tc.bad {
				err := tc.check(v)
				if err == nil {
					t.Errorf("%q: no error", v)
				} else if !strings.Contains(err.Error(), `"`+v+`"`) {
					t.Errorf("%q: error %q does not show the value", v, err)
				}
			}
		})
	}
}

func TestAutoScalingSLRARN(t *testing.T) {
	if got, want := AutoScalingSLRARN("aws", "222222222222", ""), "arn:aws:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := AutoScalingSLRARN("aws-cn", "222222222222", "team"), "arn:aws-cn:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_team"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for region, want := range map[string]string{"us-east-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"} {
		if got := PartitionOfRegion(region); got != want {
			t.Errorf("PartitionOfRegion(%s) = %s, want %s", region, got, want)
		}
	}
}

// TestCheckSLRSuffixMistakes: suffixes IAM accepts but that name a role
// nobody means are refused with the role they would name and the suffix
// meant; ordinary suffixes pass.
func TestCheckSLRSuffixMistakes(t *testing.T) {
	for _, tc := range []struct {
		suffix string
		want   []string // substrings of the error; none: no error
	}{
		{"myapp", nil},
		{"my_app", nil},
		{"app_", nil},
		{"AWSServiceRoleForAutoScaling_myapp", []string{`"AWSServiceRoleForAutoScaling_myapp"`, "repeats the role name's prefix",
			"AWSServiceRoleForAutoScaling_AWSServiceRoleForAutoScaling_myapp", `"myapp"`}},
		{"awsservicerolefor" + "autoscalingMyApp", []string{"repeats the role name's prefix", `"MyApp"`}},
		{"AWSServiceRoleForAutoScaling", []string{"repeats the role name's prefix", "leave it unset for the default role"}},
		{"_myapp", []string{`"_myapp"`, `starts with the "_"`, "AWSServiceRoleForAutoScaling__myapp", `"myapp"`}},
		{"__", []string{`"__"`, "leave it unset for the default role"}},
	} {
		err := CheckSLRSuffixMistakes(tc.suffix)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%q: unexpected error %v", tc.suffix, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q: no error", tc.suffix)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not contain %q", tc.suffix, err, w)
			}
		}
	}
}

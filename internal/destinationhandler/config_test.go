package destinationhandler_test

import (
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/destinationhandler"
)

func TestLoadConfig(t *testing.T) {
	base := map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "tok",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_KMS": "", "AWS_ENDPOINT_URL_IAM": "", "AWS_ENDPOINT_URL_CLOUDFORMATION": "", "AWS_ENDPOINT_URL_EC2": "", "AWS_ENDPOINT_URL_LAMBDA": "", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
	}
	for _, tc := range []struct {
		name          string
		env           map[string]string
		wantKMS       string
		wantIAM       string
		wantCFN       string
		wantEC2       string
		wantLambda    string
		wantRegion    string
		wantErrSubstr string
	}{
		{name: "Lambda defaults", wantRegion: "eu-west-1"},
		{name: "service endpoints", env: map[string]string{"AWS_ENDPOINT_URL_KMS": "http://k", "AWS_ENDPOINT_URL_IAM": "http://i", "AWS_ENDPOINT_URL_CLOUDFORMATION": "http://c", "AWS_ENDPOINT_URL_EC2": "http://e", "AWS_ENDPOINT_URL_LAMBDA": "http://l"}, wantKMS: "http://k", wantIAM: "http://i", wantCFN: "http://c", wantEC2: "http://e", wantLambda: "http://l", wantRegion: "eu-west-1"},
		{name: "global endpoint", env: map[string]string{"AWS_ENDPOINT_URL": "http://g", "AWS_ENDPOINT_URL_KMS": "http://k"}, wantKMS: "http://k", wantIAM: "http://g", wantCFN: "http://g", wantEC2: "http://g", wantLambda: "http://g", wantRegion: "eu-west-1"},
		{name: "endpoints ignored", env: map[string]string{"AWS_ENDPOINT_URL": "http://g", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, wantRegion: "eu-west-1"},
		{name: "default region", env: map[string]string{"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-west-2"}, wantRegion: "us-west-2"},
		{name: "no region", env: map[string]string{"AWS_REGION": ""}, wantErrSubstr: "AWS_REGION is not set"},
		{name: "no credentials", env: map[string]string{"AWS_SECRET_ACCESS_KEY": ""}, wantErrSubstr: "AWS_SECRET_ACCESS_KEY are not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range base {
				t.Setenv(k, v)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}

			cfg, err := destinationhandler.LoadConfig()

			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Errorf("error %v, want %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AWS.Region != tc.wantRegion || cfg.KMSEndpoint != tc.wantKMS || cfg.IAMEndpoint != tc.wantIAM || cfg.CloudFormationEndpoint != tc.wantCFN || cfg.EC2Endpoint != tc.wantEC2 || cfg.LambdaEndpoint != tc.wantLambda || cfg.AWS.Retryer == nil {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

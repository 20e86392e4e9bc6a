package lambdaenv_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/crossaccountami/crossaccountami/internal/lambdaenv"
)

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		service string
		want    string
	}{
		{"none", nil, "EC2", ""},
		{"service variable", map[string]string{"AWS_ENDPOINT_URL_EC2": "http://e"}, "ec2", "http://e"},
		{"global fallback", map[string]string{"AWS_ENDPOINT_URL": "http://g", "AWS_ENDPOINT_URL_KMS": "http://k"}, "EC2", "http://g"},
		{"service wins", map[string]string{"AWS_ENDPOINT_URL": "http://g", "AWS_ENDPOINT_URL_KMS": "http://k"}, "KMS", "http://k"},
		{"ignored", map[string]string{"AWS_ENDPOINT_URL_KMS": "http://k", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "KMS", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_EC2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if got := lambdaenv.Endpoint(tc.service); got != tc.want {
				t.Errorf("Endpoint(%q) = %q, want %q", tc.service, got, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	cfg, err := lambdaenv.Load()
	if err != nil || cfg.Region != "eu-west-1" || cfg.Retryer == nil {
		t.Fatalf("Load() = %+v, %v", cfg, err)
	}
	t.Setenv("AWS_DEFAULT_REGION", "")
	if _, err := lambdaenv.Load(); err == nil || !strings.Contains(err.Error(), "AWS_REGION is not set") {
		t.Errorf("Load() without a region: %v", err)
	}
}

func TestFailingRouterAnswersEveryType(t *testing.T) {
	router := lambdaenv.FailingRouter(errors.New("no region"), "Custom::A", "Custom::B")
	for _, typ := range []string{"Custom::A", "Custom::B"} {
		for _, rt := range []cfn.RequestType{cfn.RequestCreate, cfn.RequestUpdate, cfn.RequestDelete} {
			_, _, err := router.Serve(context.Background(), cfn.Event{RequestType: rt, ResourceType: typ, PhysicalResourceID: "p", RequestID: "r"})
			if err == nil || !strings.Contains(err.Error(), "could not load its AWS configuration: no region") {
				b, _ := json.Marshal(err)
				t.Errorf("%s %s: %v %s", rt, typ, err, b)
			}
		}
	}
}

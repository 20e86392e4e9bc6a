package awserr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
)

func TestCodeAndText(t *testing.T) {
	api := &smithy.GenericAPIError{Code: "NotFoundException", Message: "Key 'k' does not exist"}
	tests := []struct {
		name           string
		err            error
		code, wantText string
	}{
		{"service error", api, "NotFoundException", "NotFoundException: Key 'k' does not exist"},
		{"wrapped service error", fmt.Errorf("operation error KMS: DescribeKey: %w", api), "NotFoundException", "NotFoundException: Key 'k' does not exist"},
		{"not from the service", errors.New("dial tcp: connection refused"), "", "dial tcp: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := awserr.Code(tt.err); got != tt.code {
				t.Errorf("Code = %q, want %q", got, tt.code)
			}
			if got := awserr.Text(tt.err); got != tt.wantText {
				t.Errorf("Text = %q, want %q", got, tt.wantText)
			}
		})
	}
}

func TestRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"modeled client fault", &smithy.GenericAPIError{Code: "NotFoundException", Fault: smithy.FaultClient}, true},
		{"server fault", &smithy.GenericAPIError{Code: "KMSInternalException", Fault: smithy.FaultServer}, false},
		{"unmodeled 400", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 400}}, Err: errors.New("AccessDeniedException")}, true},
		{"unmodeled 500", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}}, Err: errors.New("unavailable")}, false},
		{"timeout", context.DeadlineExceeded, false},
	} {
		if got := awserr.Rejected(tc.err); got != tc.want {
			t.Errorf("%s: Rejected = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsA(t *testing.T) {
	notFound := &kmstypes.NotFoundException{Message: aws.String("Key 'k' does not exist")}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"the modeled type", notFound, true},
		{"wrapped, as the SDK returns it", &smithy.OperationError{ServiceID: "KMS", OperationName: "RetireGrant", Err: fmt.Errorf("https response error: %w", notFound)}, true},
		{"another modeled type", &kmstypes.InvalidGrantIdException{Message: aws.String("bad")}, false},
		// The code alone is not the type: a GenericAPIError is what the SDK
		// returns for codes it does not model.
		{"the same code, unmodeled", &smithy.GenericAPIError{Code: "NotFoundException"}, false},
		{"not from the service", errors.New("dial tcp: connection refused"), false},
		{"nil", nil, false},
	} {
		if got := awserr.IsA[*kmstypes.NotFoundException](tc.err); got != tc.want {
			t.Errorf("%s: IsA[*kmstypes.NotFoundException] = %v, want %v", tc.name, got, tc.want)
		}
	}
}

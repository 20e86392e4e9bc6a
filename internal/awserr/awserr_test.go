package awserr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"

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

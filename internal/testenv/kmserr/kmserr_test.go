package kmserr_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/awserr"
	"github.com/crossaccountami/crossaccountami/internal/testenv/kmserr"
)

func TestModeled(t *testing.T) {
	err, ok := kmserr.Modeled("NotFoundException", "Key 'k' does not exist")
	if !ok || !awserr.IsA[*types.NotFoundException](err) {
		t.Fatalf("Modeled(NotFoundException) = %#v, %v, want a *types.NotFoundException", err, ok)
	}
	if err.ErrorCode() != "NotFoundException" || err.ErrorMessage() != "Key 'k' does not exist" || err.Error() != "NotFoundException: Key 'k' does not exist" {
		t.Errorf("code %q, message %q, text %q", err.ErrorCode(), err.ErrorMessage(), err.Error())
	}
	// Each call is a new value: a test may keep one and make another.
	again, _ := kmserr.Modeled("NotFoundException", "other")
	if err.ErrorMessage() != "Key 'k' does not exist" || again.ErrorMessage() != "other" {
		t.Errorf("messages %q and %q share storage", err.ErrorMessage(), again.ErrorMessage())
	}
}

// The handlers match these codes by their code because the KMS model does
// not declare them: the day it does, this fails, and they should match the
// new type instead.
func TestUnmodeled(t *testing.T) {
	for _, code := range []string{"AccessDeniedException", "ValidationException", "ThrottlingException"} {
		if err, ok := kmserr.Modeled(code, "x"); ok {
			t.Errorf("the KMS model declares %s now (%T): match it by type", code, err)
		}
	}
}

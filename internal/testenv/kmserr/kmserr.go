// Package kmserr gives the fakes of unit tests the error the KMS SDK client
// returns for an error code, so that a fake answers what a real client
// would and a handler that matches errors by their modeled types (see
// awserr.IsA) is tested as it runs.
//
// The client deserializes every error the KMS model declares into its
// modeled type (types.NotFoundException, ...), whatever the operation: it
// looks the code up in the service's kms.TypeRegistry. Modeled does the
// same lookup. A code the model does not declare (AccessDeniedException)
// comes back as a smithy.GenericAPIError, which each test builds as it needs
// (with the fault or HTTP status its case is about).
package kmserr

import (
	"fmt"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
)

// Modeled returns the modeled KMS error for code with message msg, and
// false when the KMS model does not declare code.
func Modeled(code, msg string) (smithy.APIError, bool) {
	e, ok := kms.TypeRegistry.DeserializableError(code)
	if !ok {
		return nil, false
	}
	apiErr, ok := e.(smithy.APIError)
	if !ok {
		panic(fmt.Sprintf("kmserr: the KMS model's %s (%T) is not a smithy.APIError", code, e))
	}
	// Every KMS error shape has one member, Message (*string); the SDK
	// fills it from the answer's "message".
	field := reflect.ValueOf(e).Elem().FieldByName("Message")
	if !field.IsValid() || field.Type() != reflect.TypeFor[*string]() {
		panic(fmt.Sprintf("kmserr: the KMS model's %s (%T) has no Message *string field", code, e))
	}
	field.Set(reflect.ValueOf(&msg))
	return apiErr, true
}

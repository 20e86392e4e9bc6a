// Package awserr is how the handlers treat AWS's errors: it reads a service
// error out of an SDK error chain, so that every handler and tool names the
// service's code and message the same way in what it reports, and it
// decides which errors the SDK's retryer retries, and for how long
// (retry.go).
package awserr

import (
	"errors"

	"github.com/aws/smithy-go"
)

// IsA reports whether err's chain holds an error of type T, such as
// *kmstypes.NotFoundException: the way to match a service error the SDK
// models, as the SDK deserializes every error its service model declares
// into that type. Match by Code only the errors the SDK does not model
// (they come as a smithy.GenericAPIError): say so where you do.
func IsA[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}

// Code is the AWS error code of err, or "" for an error that did not come
// from the service (a network error, a canceled context).
func Code(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode()
	}
	return ""
}

// Text is "Code: message" for a service error, and err's own text otherwise:
// the SDK's full error string repeats the operation and request id, which a
// CloudFormation Reason has no room for.
func Text(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

// Rejected reports whether err is the service refusing the request (a
// client fault such as AccessDenied or NotFound), as opposed to an outcome
// that leaves in doubt whether the service acted on it (a timeout, a server
// error, a lost connection). A handler that may have created something
// before a failure cleans up only when the failure was not a rejection.
func Rejected(err error) bool {
	if ae, ok := errors.AsType[smithy.APIError](err); ok && ae.ErrorFault() == smithy.FaultClient {
		return true
	}
	// Unmodeled errors (AccessDeniedException among them) carry no fault;
	// their HTTP status tells: 4xx means the service refused the request.
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
}

package check

import (
	"errors"

	"github.com/aws/smithy-go"
)

// errorCode is the AWS error code of err, or "" for an error that did not
// come from the service (a network error, a canceled context).
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isAccessDenied reports whether the service refused the caller: KMS says
// AccessDeniedException, IAM AccessDenied, EC2 UnauthorizedOperation.
func isAccessDenied(err error) bool {
	switch errorCode(err) {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnauthorizedAccess":
		return true
	}
	return false
}

// isNotFound reports whether the service says the thing does not exist or
// is not visible to the caller (EC2 answers the same for both).
func isNotFound(err error) bool {
	switch errorCode(err) {
	case "NotFoundException", "NoSuchEntity", "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable",
		"InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed":
		return true
	}
	return false
}

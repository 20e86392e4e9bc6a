package check

import "github.com/crossaccountami/crossaccountami/internal/awserr"

// Errors the SDK models are matched by their types where they occur
// (*kmstypes.NotFoundException in key.go, *iamtypes.NoSuchEntityException in
// role.go). These match by code the errors it does not model.

// isAccessDenied reports whether the service refused the caller: KMS says
// AccessDeniedException, IAM AccessDenied, EC2 UnauthorizedOperation. None
// is in its service's SDK model: each comes as a smithy.GenericAPIError.
func isAccessDenied(err error) bool {
	switch awserr.Code(err) {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnauthorizedAccess":
		return true
	}
	return false
}

// isImageNotFound reports whether EC2 says the image does not exist or is
// not visible to the caller (it answers the same for both). The EC2 SDK
// models none of its service's errors, so the code is all there is to match.
func isImageNotFound(err error) bool {
	switch awserr.Code(err) {
	case "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable":
		return true
	}
	return false
}

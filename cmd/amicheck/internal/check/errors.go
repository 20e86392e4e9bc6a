package check

import "github.com/crossaccountami/crossaccountami/internal/awserr"

// isAccessDenied reports whether the service refused the caller: KMS says
// AccessDeniedException, IAM AccessDenied, EC2 UnauthorizedOperation.
func isAccessDenied(err error) bool {
	switch awserr.Code(err) {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnauthorizedAccess":
		return true
	}
	return false
}

// isNotFound reports whether the service says the thing does not exist or
// is not visible to the caller (EC2 answers the same for both).
func isNotFound(err error) bool {
	switch awserr.Code(err) {
	case "NotFoundException", "NoSuchEntity", "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable",
		"InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed":
		return true
	}
	return false
}

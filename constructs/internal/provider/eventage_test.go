package provider

import "testing"

// lambdaInitLimit is the longest a cold start's Init phase takes before the
// first invocation ("Understanding the Lambda execution environment
// lifecycle": the Init phase is limited to 10 seconds).
const lambdaInitLimit = 10

// An event delivered at the largest age Lambda allows still answers before
// CloudFormation stops waiting, whatever FunctionTimeout and
// ServiceTimeoutMinutes become; and Lambda accepts the age.
func TestTheOldestEventAnswersWithinTheServiceTimeout(t *testing.T) {
	// Literal: the value the template tests and SECURITY.md state.
	if MaxEventAgeSeconds != 240 {
		t.Errorf("MaxEventAgeSeconds = %d, want 240", MaxEventAgeSeconds)
	}
	answeredBy := MaxEventAgeSeconds + lambdaInitLimit + FunctionTimeout*60
	if serviceTimeout := ServiceTimeoutMinutes * 60; answeredBy >= serviceTimeout {
		t.Errorf("an event %d s old answers by %d s, after CloudFormation's ServiceTimeout of %d s", MaxEventAgeSeconds, answeredBy, serviceTimeout)
	}
	// AWS::Lambda::EventInvokeConfig MaximumEventAgeInSeconds: 60 to 21600.
	if MaxEventAgeSeconds < 60 || MaxEventAgeSeconds > 21600 {
		t.Errorf("MaxEventAgeSeconds = %d, outside Lambda's 60 to 21600", MaxEventAgeSeconds)
	}
}

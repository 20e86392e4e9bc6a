package amipermissionlifecycle_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/amipermissionlifecycle"
	"github.com/crossaccountami/crossaccountami/internal/amipermissionspec"
	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/testenv/routertest"
)

const (
	requestID = "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c"
	snap2     = "snap-0fedcba9876543210"
)

var physicalID = amipermissionspec.NewPhysicalID(image, stackID, "Sharing").String()

func serve(t *testing.T, h customresource.Handler, ev cfn.Event, timeout time.Duration) (string, error) {
	t.Helper()
	return routertest.Serve(t, amipermissionspec.ResourceType, h, ev, timeout)
}

func event(typ cfn.RequestType, physical string, p map[string]interface{}) cfn.Event {
	return cfn.Event{
		RequestType: typ, ResourceType: amipermissionspec.ResourceType, StackID: stackID,
		RequestID: requestID, LogicalResourceID: "Sharing",
		PhysicalResourceID: physical, ResourceProperties: p,
	}
}

func clientErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "refused", Fault: smithy.FaultClient}
}

// A Create that fails after it added the launch permission answers the
// physical id, and the rollback Delete removes every permission it added.
func TestFailedCreateIsRolledBack(t *testing.T) {
	for _, tc := range []struct {
		name        string
		prepare     func(f *fakeEC2)
		timeout     time.Duration
		wantLaunch  []string // in place after the failed Create
		wantVolumes []string
	}{
		{"the second snapshot's create-volume permission fails", func(f *fakeEC2) {
			f.snapErr = map[string]error{snap2: clientErr("UnauthorizedOperation")}
		}, 5 * time.Second, []string{"222222222222", "333333333333", orgArn}, []string{snap + " 222222222222", snap + " 333333333333"}},
		{"the deadline passes during ModifyImageAttribute", func(f *fakeEC2) {
			f.stalled = make(chan struct{})
		}, time.Second, []string{"222222222222", "333333333333", orgArn}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN an AMI with two snapshots, encrypted with a customer managed key
			f := &fakeEC2{key: cmk, snapshots: []string{snap, snap2}}
			tc.prepare(f)
			h := amipermissionlifecycle.New(f, keys)
			p := props("AccountIds", list("222222222222", "333333333333"), "OrganizationArns", list(orgArn), "ShareSnapshots", "true")

			// WHEN the Create fails after sharing the AMI
			id, err := serve(t, h, event(cfn.RequestCreate, "", p), tc.timeout)
			if f.stalled != nil {
				<-f.stalled
			}
			if err == nil {
				t.Fatal("the Create succeeded")
			}
			launch, volumes := f.state()
			if !slices.Equal(launch, tc.wantLaunch) || !slices.Equal(volumes, tc.wantVolumes) {
				t.Fatalf("after the failed Create: launch %v, create-volume %v; want %v, %v", launch, volumes, tc.wantLaunch, tc.wantVolumes)
			}
			// THEN it answers the physical id
			if id != physicalID {
				t.Fatalf("FAILED answer with physical id %q, want %q (%v)", id, physicalID, err)
			}

			// WHEN CloudFormation rolls back: a Delete of that id, same properties
			f.snapErr, f.stalled = nil, nil
			if _, err := serve(t, h, event(cfn.RequestDelete, id, p), 5*time.Second); err != nil {
				t.Fatalf("rollback Delete: %v", err)
			}
			// THEN no permission is left
			if launch, volumes := f.state(); len(launch) != 0 || len(volumes) != 0 {
				t.Errorf("after the rollback: launch %v, create-volume %v", launch, volumes)
			}
		})
	}
}

// A ModifyImageAttribute whose outcome is in doubt (a server error) may have
// shared the AMI: the Create answers the physical id.
func TestCreateWhoseShareIsInDoubtAnswersThePhysicalID(t *testing.T) {
	f := &fakeEC2{key: cmk, modifyErr: &smithy.GenericAPIError{Code: "InternalError", Message: "internal error", Fault: smithy.FaultServer}}
	id, err := serve(t, amipermissionlifecycle.New(f, keys), event(cfn.RequestCreate, "", props("AccountIds", list("222222222222"))), 5*time.Second)
	if err == nil || id != physicalID {
		t.Errorf("answer %q, %v; want FAILED with %q", id, err, physicalID)
	}
}

// A Create that fails before it shared anything answers the request id, and
// the rollback Delete of that id makes no call.
func TestCreateFailingBeforeAnyWriteAnswersTheRequestID(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       *fakeEC2
		props   map[string]interface{}
		wantErr string
	}{
		{"AMI encrypted with aws/ebs", &fakeEC2{key: ebsKey}, props("AccountIds", list("222222222222")), "AWS managed key aws/ebs"},
		{"invalid properties", &fakeEC2{}, props("AccountIds", list("2222")), "invalid Custom::AmiLaunchPermission properties"},
		{"AMI not found", &fakeEC2{imageErr: clientErr("InvalidAMIID.NotFound")}, props("AccountIds", list("222222222222")), "does not exist"},
		{"EC2 rejects ModifyImageAttribute", &fakeEC2{modifyErr: clientErr("InvalidAMIAttributeItemValue")}, props("AccountIds", list("222222222222")), "InvalidAMIAttributeItemValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := amipermissionlifecycle.New(tc.f, keys)
			id, err := serve(t, h, event(cfn.RequestCreate, "", tc.props), 5*time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if id != "" {
				t.Fatalf("FAILED answer with physical id %q, want the request id", id)
			}
			// cfn.LambdaWrap answers the request id; CloudFormation deletes that.
			tc.f.calls = nil
			if _, err := serve(t, h, event(cfn.RequestDelete, requestID, tc.props), 5*time.Second); err != nil || len(tc.f.calls) != 0 {
				t.Errorf("rollback Delete: %v, calls %v", err, tc.f.calls)
			}
		})
	}
}

// The documented limit: EC2 keeps one launch permission per account, so a
// permission granted by hand to the same account before the failed Create
// goes with its rollback, as with any Delete. Another account's stays.
func TestRollbackRemovesAPermissionGrantedByHandToTheSameAccount(t *testing.T) {
	f := &fakeEC2{snapErr: map[string]error{snap: clientErr("UnauthorizedOperation")}, granted: map[string]bool{"222222222222": true, "999999999999": true}}
	h := amipermissionlifecycle.New(f, keys)
	p := props("AccountIds", list("222222222222", "333333333333"), "ShareSnapshots", "true")
	id, err := serve(t, h, event(cfn.RequestCreate, "", p), 5*time.Second)
	if err == nil || id != physicalID {
		t.Fatalf("answer %q, %v; want FAILED with %q", id, err, physicalID)
	}
	f.snapErr = nil
	if _, err := serve(t, h, event(cfn.RequestDelete, id, p), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if launch, _ := f.state(); !slices.Equal(launch, []string{"999999999999"}) {
		t.Errorf("launch permissions after the rollback %v, want only 999999999999's", launch)
	}
}

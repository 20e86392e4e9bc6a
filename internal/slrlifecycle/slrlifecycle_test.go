package slrlifecycle

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
)

type fakeIAM struct {
	calls []*iam.CreateServiceLinkedRoleInput
	err   error
}

func (f *fakeIAM) CreateServiceLinkedRole(_ context.Context, in *iam.CreateServiceLinkedRoleInput, _ ...func(*iam.Options)) (*iam.CreateServiceLinkedRoleOutput, error) {
	f.calls = append(f.calls, in)
	if f.err != nil {
		return nil, f.err
	}
	return &iam.CreateServiceLinkedRoleOutput{}, nil
}

const stackID = "arn:aws-cn:cloudformation:cn-north-1:222222222222:stack/dest/0f2a3c40-ad8f-11ef-9a5b-0affd3c1d2e1"

func request(suffix string) customresource.Request {
	p := map[string]interface{}{"ServiceToken": "arn"}
	if suffix != "" {
		p["CustomSuffix"] = suffix
	}
	return customresource.Request{StackID: stackID, LogicalResourceID: "Slr", PhysicalResourceID: "old", Properties: p}
}

// apiErr is an error IAM's model does not declare (AccessDenied): the SDK
// returns it as a GenericAPIError. The modeled ones are their types.
func apiErr(code, msg string) error { return &smithy.GenericAPIError{Code: code, Message: msg} }

func TestEnsure(t *testing.T) {
	const defaultARN = "arn:aws-cn:iam::222222222222:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	for _, tc := range []struct {
		name    string
		suffix  string
		err     error
		wantARN string
	}{
		{"created", "", nil, defaultARN},
		{"created with suffix", "ami", nil, defaultARN + "_ami"},
		{"taken (IAM)", "", &types.InvalidInputException{Message: aws.String("Service role name AWSServiceRoleForAutoScaling has been taken in this account, please try a different suffix.")}, defaultARN},
		{"exists (moto)", "ami", &types.EntityAlreadyExistsException{Message: aws.String("Role with name AWSServiceRoleForAutoScaling_ami already exists.")}, defaultARN + "_ami"},
	} {
		for _, op := range []string{"Create", "Update"} {
			t.Run(tc.name+" "+op, func(t *testing.T) {
				f := &fakeIAM{err: tc.err}
				h := New(f)
				call := h.Create
				if op == "Update" {
					call = h.Update
				}

				res, err := call(context.Background(), request(tc.suffix))

				if err != nil {
					t.Fatal(err)
				}
				if res.PhysicalResourceID != tc.wantARN || !maps.Equal(res.Data, map[string]interface{}{"RoleArn": tc.wantARN}) {
					t.Errorf("result %+v, want %s", res, tc.wantARN)
				}
				if len(f.calls) != 1 || aws.ToString(f.calls[0].AWSServiceName) != "autoscaling.amazonaws.com" ||
					aws.ToString(f.calls[0].CustomSuffix) != tc.suffix {
					t.Errorf("calls %+v", f.calls)
				}
			})
		}
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		suffix string
		err    error
		want   []string
	}{
		{"denied", "ami", apiErr("AccessDenied", "not authorized"), []string{"AccessDenied: not authorized", "iam:AWSServiceName = autoscaling.amazonaws.com", "--custom-suffix ami", "AWSServiceRoleForAutoScaling_ami"}},
		{"other invalid input", "", &types.InvalidInputException{Message: aws.String("bad")}, []string{"InvalidInput: bad"}},
		{"bad suffix", "no spaces", nil, []string{`CustomSuffix: "no spaces"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(&fakeIAM{err: tc.err}).Create(context.Background(), request(tc.suffix))
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestDeleteKeepsTheRole(t *testing.T) {
	f := &fakeIAM{}
	if err := New(f).Delete(context.Background(), request("")); err != nil || len(f.calls) != 0 {
		t.Errorf("Delete: %v, calls %v", err, f.calls)
	}
}

// TestEnsureOtherServices: each launcher's service-linked role is ensured
// with its own service name and no suffix, once per Create or Update; a
// role another creator made first (IAM's "has been taken", moto's
// EntityAlreadyExists) is success.
func TestEnsureOtherServices(t *testing.T) {
	for _, tc := range []struct{ service, arn string }{
		{"ec2fleet.amazonaws.com", "arn:aws-cn:iam::222222222222:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet"},
		{"spotfleet.amazonaws.com", "arn:aws-cn:iam::222222222222:role/aws-service-role/spotfleet.amazonaws.com/AWSServiceRoleForEC2SpotFleet"},
		{"spot.amazonaws.com", "arn:aws-cn:iam::222222222222:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"},
	} {
		for _, answer := range []error{nil,
			&types.InvalidInputException{Message: aws.String("Service role name AWSServiceRoleForEC2Fleet has been taken in this account, please try a different suffix.")},
			&types.EntityAlreadyExistsException{Message: aws.String("Role already exists.")},
		} {
			f := &fakeIAM{err: answer}
			req := request("")
			req.Properties["AWSServiceName"] = tc.service
			res, err := New(f).Create(context.Background(), req)
			if err != nil || res.PhysicalResourceID != tc.arn || res.Data["RoleArn"] != tc.arn {
				t.Errorf("%s (%v): %+v, %v, want %s", tc.service, answer, res, err, tc.arn)
			}
			if len(f.calls) != 1 || aws.ToString(f.calls[0].AWSServiceName) != tc.service || f.calls[0].CustomSuffix != nil {
				t.Errorf("%s: calls %+v, want one for the service without suffix", tc.service, f.calls)
			}
		}
	}
	f := &fakeIAM{err: apiErr("AccessDenied", "no")}
	req := request("")
	req.Properties["AWSServiceName"] = "spot.amazonaws.com"
	if _, err := New(f).Create(context.Background(), req); err == nil || !strings.Contains(err.Error(), "iam:AWSServiceName = spot.amazonaws.com") ||
		!strings.Contains(err.Error(), "--aws-service-name spot.amazonaws.com)") {
		t.Errorf("denied: %v, want the service's condition and CLI command", err)
	}
}

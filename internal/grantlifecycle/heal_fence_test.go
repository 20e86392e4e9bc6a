package grantlifecycle

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// A check that runs when the grant's resource is being deleted, deleted,
// replaced or unknown (a late or repeated asynchronous event) creates no
// grant, lists none, writes no metric, and succeeds: it has nothing to do.
func TestHealDoesNothingOnceTheResourceIsNotAlive(t *testing.T) {
	replacedBy := physical(keyARN, grantID2)
	for _, tc := range []struct {
		name   string
		answer func(*cloudformation.DescribeStackResourceInput) (*cloudformation.DescribeStackResourceOutput, error)
		want   string
	}{
		{"DELETE_IN_PROGRESS (its Delete is about to run)", stackResource(cfntypes.ResourceStatusDeleteInProgress, physical(keyARN, grantID)), "the resource AmiGrant of stack " + stackID + " is DELETE_IN_PROGRESS"},
		{"DELETE_COMPLETE (the stack was deleted)", stackResource(cfntypes.ResourceStatusDeleteComplete, physical(keyARN, grantID)), "is DELETE_COMPLETE"},
		{"DELETE_FAILED", stackResource(cfntypes.ResourceStatusDeleteFailed, physical(keyARN, grantID)), "is DELETE_FAILED"},
		{"DELETE_SKIPPED (retained)", stackResource(cfntypes.ResourceStatusDeleteSkipped, physical(keyARN, grantID)), "is DELETE_SKIPPED"},
		{"CREATE_IN_PROGRESS (another resource under that logical id)", stackResource(cfntypes.ResourceStatusCreateInProgress, physical(keyARN, grantID)), "is CREATE_IN_PROGRESS"},
		{"a status CloudFormation may add later", stackResource("SOMETHING_NEW", physical(keyARN, grantID)), "is SOMETHING_NEW"},
		{"another physical id (the grant was replaced)", stackResource(cfntypes.ResourceStatusUpdateComplete, replacedBy),
			`is now "` + replacedBy + `", not "` + physical(keyARN, grantID) + `" as the check's event says`},
		{"the resource left the stack", cfnErr("ValidationError", "Resource AmiGrant does not exist for stack "+stackID), "CloudFormation knows no resource AmiGrant in stack " + stackID},
		{"the stack is unknown", cfnErr("ValidationError", "Stack with id "+stackID+" does not exist"), "Stack with id " + stackID + " does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN the grant is gone (its Delete retired it, or will)
			store := &grantStore{next: []string{grantID3}}
			f := store.fake(t)
			var out bytes.Buffer
			h := healer(t, f, &out, tc.answer)

			// WHEN the check runs
			res, err := h.Heal(context.Background(), healEvent(t, props(owned)))

			// THEN it makes nothing, and says why
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.calls, []string{"DescribeStackResource"}) || len(store.grants) != 0 {
				t.Errorf("calls %v, grants %v: want one DescribeStackResource and no grant", f.calls, store.ids())
			}
			if !strings.Contains(res, "grant "+healName+" on "+keyARN+" not checked: ") || !strings.Contains(res, tc.want) {
				t.Errorf("result %q, want it to contain %q", res, tc.want)
			}
			if ms := metricsIn(t, out.String()); len(ms) != 0 {
				t.Errorf("metrics %+v for a check that had nothing to check", ms)
			}
		})
	}
}

// The resource alive in any state its stack keeps it: the check heals.
func TestHealWhileTheResourceIsAlive(t *testing.T) {
	for _, status := range []cfntypes.ResourceStatus{
		cfntypes.ResourceStatusCreateComplete, cfntypes.ResourceStatusUpdateComplete, cfntypes.ResourceStatusUpdateInProgress,
		cfntypes.ResourceStatusUpdateFailed, cfntypes.ResourceStatusUpdateRollbackComplete, cfntypes.ResourceStatusImportComplete,
	} {
		t.Run(string(status), func(t *testing.T) {
			store := &grantStore{next: []string{grantID3}}
			f := store.fake(t)
			var out bytes.Buffer
			answer := stackResource(status, physical(keyARN, grantID))
			h := healer(t, f, &out, answer)

			res, err := h.Heal(context.Background(), healEvent(t, props(owned)))

			if err != nil || !strings.Contains(res, "re-created: "+grantID3) {
				t.Fatalf("result %q, %v", res, err)
			}
			if !slices.Equal(store.ids(), []string{grantID3}) || len(store.removed) != 0 {
				t.Errorf("grants %v, removed %v: want the re-created grant kept", store.ids(), store.removed)
			}
			wantMetric(t, out.String(), healName, map[string]float64{"GrantRecreated": 1, "GrantCheckFailed": 0})
		})
	}
}

// A Delete that begins between the check's first look and its CreateGrant
// may list the grants before the check made its own, and so leave it: the
// check looks again after the CreateGrant and retires what it made.
func TestHealRetiresWhatItMadeWhenTheDeleteBeganMeanwhile(t *testing.T) {
	// GIVEN the grant is gone, and CloudFormation marks the resource
	// DELETE_IN_PROGRESS while the check calls CreateGrant: the Delete runs
	// meanwhile and, listing before the new grant exists, retires nothing
	store := &grantStore{next: []string{grantID3}}
	f := store.fake(t)
	var out bytes.Buffer
	deleting := stackResource(cfntypes.ResourceStatusDeleteInProgress, physical(keyARN, grantID))
	h := healer(t, f, &out, alive, deleting)
	create := f.createGrant
	var deleteErr error
	f.createGrant = func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
		calls := f.calls
		deleteErr = New(f, handlerRole).Delete(context.Background(), request("Delete", physical(keyARN, grantID), props(owned), nil))
		f.calls = calls
		return create(in)
	}

	// WHEN the check runs
	res, err := h.Heal(context.Background(), healEvent(t, props(owned)))

	// THEN the grant it made is retired, and no grant is left
	if err != nil || deleteErr != nil {
		t.Fatalf("check: %q, %v; the Delete: %v", res, err, deleteErr)
	}
	if want := []string{"DescribeStackResource", "ListRetirableGrants", "CreateGrant", "DescribeStackResource", "RetireGrant"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	if len(store.grants) != 0 || !slices.Equal(store.removed, []string{grantID3}) {
		t.Errorf("grants left %v, removed %v: want %s retired and none left", store.ids(), store.removed, grantID3)
	}
	if !strings.Contains(res, "re-created as "+grantID3+" and retired again: the resource AmiGrant of stack "+stackID+" is DELETE_IN_PROGRESS") {
		t.Errorf("result %q", res)
	}
	if ms := metricsIn(t, out.String()); len(ms) != 0 {
		t.Errorf("metrics %+v: a check undone by its resource's Delete reports nothing", ms)
	}
}

func TestHealRetiresWhatItMadeWhenItCannotLookAgain(t *testing.T) {
	t.Run("the second look fails: the grant is retired, the check fails", func(t *testing.T) {
		store := &grantStore{next: []string{grantID3}}
		f := store.fake(t)
		var out bytes.Buffer
		h := healer(t, f, &out, alive, cfnErr("Throttling", "Rate exceeded"))

		_, err := h.Heal(context.Background(), healEvent(t, props(owned)))

		for _, w := range []string{"re-created the grant " + healName + " on " + keyARN + " as " + grantID3 + ", but then could not tell whether its resource still exists, so it retired that grant again", "Throttling: Rate exceeded"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v, want it to contain %q", err, w)
			}
		}
		if len(store.grants) != 0 || !slices.Equal(store.removed, []string{grantID3}) {
			t.Errorf("grants left %v, removed %v", store.ids(), store.removed)
		}
		wantMetric(t, out.String(), healName, map[string]float64{"GrantCheckFailed": 1})
	})
	t.Run("retiring it is denied: the check fails with the commands", func(t *testing.T) {
		store := &grantStore{next: []string{grantID3}}
		f := store.fake(t)
		f.retireGrant = func(*kms.RetireGrantInput) (*kms.RetireGrantOutput, error) {
			return nil, apiErr("AccessDeniedException", "no")
		}
		var out bytes.Buffer
		h := healer(t, f, &out, alive, stackResource(cfntypes.ResourceStatusDeleteInProgress, physical(keyARN, grantID)))

		_, err := h.Heal(context.Background(), healEvent(t, props(owned)))

		for _, w := range []string{"then found its resource no longer alive (the resource AmiGrant of stack " + stackID + " is DELETE_IN_PROGRESS)",
			"KMS RetireGrant of grant " + grantID3 + " on " + keyARN + " failed: AccessDeniedException: no", "no resource will retire it",
			"aws kms revoke-grant --region us-east-1 --key-id " + keyARN + " --grant-id " + grantID3} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v, want it to contain %q", err, w)
			}
		}
		wantMetric(t, out.String(), healName, map[string]float64{"GrantCheckFailed": 1})
	})
	t.Run("the Delete retired it first: already gone is success", func(t *testing.T) {
		store := &grantStore{next: []string{grantID3}}
		f := store.fake(t)
		var out bytes.Buffer
		h := healer(t, f, &out, alive, stackResource(cfntypes.ResourceStatusDeleteComplete, physical(keyARN, grantID)))
		create := f.createGrant
		f.createGrant = func(in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
			res, err := create(in)
			store.grants = nil // the Delete listed it, and retired it
			return res, err
		}

		res, err := h.Heal(context.Background(), healEvent(t, props(owned)))

		if err != nil || !strings.Contains(res, "retired again") {
			t.Errorf("result %q, %v", res, err)
		}
	})
}

// The whole story of finding 4: a grant with its check, the stack deleted,
// and the check's event delivered afterwards (it waited in Lambda's queue):
// no grant is left on the key.
func TestLateHealAfterTheStacksDeleteLeavesNoGrant(t *testing.T) {
	store := &grantStore{}
	store.add(entry(grantID, keyARN, handlerRole))
	store.next = []string{grantID3}
	f := store.fake(t)

	// GIVEN the stack's Delete retired the grant
	if _, err := serve(t, New(f, handlerRole), event(cfn.RequestDelete, physical(keyARN, grantID), props(owned)), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// WHEN the check's event arrives after it (CloudFormation keeps the
	// deleted stack's resources, DELETE_COMPLETE)
	var out bytes.Buffer
	h := healer(t, f, &out, stackResource(cfntypes.ResourceStatusDeleteComplete, physical(keyARN, grantID)))
	if _, err := h.Heal(context.Background(), healEvent(t, props(owned))); err != nil {
		t.Fatal(err)
	}
	// THEN no grant is on the key
	if len(store.grants) != 0 {
		t.Errorf("grants %v after a late check", store.ids())
	}
	for _, c := range f.calls {
		if c == "CreateGrant" {
			t.Errorf("calls %v: a late check called CreateGrant", f.calls)
		}
	}
}

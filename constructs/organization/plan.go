package organization

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/orgtarget"
)

// plan is what the props resolve to, checked without CDK: the regions in
// deployment order, and the key each region's grant goes on.
type plan struct {
	orgID                           string
	ouIDs                           []string
	regions                         []string
	keyArns                         map[string]string // region -> key ARN (a token for a key of this app), one for every region
	regionOrder                     []string
	maxConcurrent, failureTolerance float64
	callAs                          string
}

// planInput is the props as plain Go values (jsii pointers read once).
type planInput struct {
	target                          orgtarget.Target
	regions, regionOrder            []string
	keyArns                         map[string]string
	multiRegionKeyArn               string
	keyAccess                       []accessKey
	maxConcurrent, failureTolerance *float64
	callAs                          string
	deployAccount                   string
}

// accessKey is what the deployment reads of one KeyAccess item.
type accessKey struct {
	path   string // the OrganizationKeyAccess's construct path
	keyArn string // a token for a key of this app
	region string // the key's: from its ARN, or its stack's
	target orgtarget.Target
	// coverage answers which launchers the statements let in; nil for a
	// KeyAccess item that is not encryptedami's.
	coverage launcherCoverage
}

// Defaults a platform team would choose for a fan-out to hundreds of
// accounts (README, "Hundreds of accounts"): a quarter of the accounts of a
// region at once, so that a broken template stops after one wave; a tenth
// may fail (a suspended or misconfigured account) before the operation
// stops; regions in parallel, since each region's grant is independent.
const (
	DefaultMaxConcurrentPercentage    = 25
	DefaultFailureTolerancePercentage = 10
)

func newPlan(in planInput) (plan, error) {
	p := plan{orgID: in.target.OrganizationID, callAs: in.callAs}
	if err := in.target.Validate(); err != nil {
		return plan{}, fmt.Errorf("Target.%v", err)
	}
	if len(in.target.UnitIDs) == 0 {
		return plan{}, fmt.Errorf("Target.OrganizationalUnitIds: expected at least one OU id (ou-xxxx-xxxxxxxx) or the root id (r-xxxx), which a StackSet deploys to, got none")
	}
	p.ouIDs = in.target.Units()
	if len(in.regions) == 0 {
		return plan{}, fmt.Errorf("Regions: expected at least one region, got none")
	}
	for _, r := range in.regions {
		if err := awsid.ValidateRegion(r); err != nil {
			return plan{}, fmt.Errorf("Regions: %v", err)
		}
	}
	p.regions = dedupe(in.regions)

	keys, err := keysByRegion(in, p.regions)
	if err != nil {
		return plan{}, err
	}
	p.keyArns = keys

	p.regionOrder = p.regions
	if len(in.regionOrder) > 0 {
		order := dedupe(in.regionOrder)
		if !slices.Equal(slices.Sorted(slices.Values(order)), slices.Sorted(slices.Values(p.regions))) {
			return plan{}, fmt.Errorf("RegionOrder: expected the regions of Regions (%s) in some order, got %s", strings.Join(p.regions, ", "), strings.Join(in.regionOrder, ", "))
		}
		p.regionOrder = order
	}
	p.maxConcurrent, err = percentage("MaxConcurrentPercentage", in.maxConcurrent, DefaultMaxConcurrentPercentage, 1)
	if err != nil {
		return plan{}, err
	}
	p.failureTolerance, err = percentage("FailureTolerancePercentage", in.failureTolerance, DefaultFailureTolerancePercentage, 0)
	if err != nil {
		return plan{}, err
	}
	switch in.callAs {
	case "", string(CallAs_SELF):
		p.callAs = string(CallAs_SELF)
	case string(CallAs_DELEGATED_ADMIN):
	default:
		return plan{}, fmt.Errorf("CallAs: expected %s or %s, got %q", CallAs_SELF, CallAs_DELEGATED_ADMIN, in.callAs)
	}
	if jsiivalue.IsUnresolved(&in.deployAccount) {
		return plan{}, fmt.Errorf("the stack of the deployment needs a concrete account (env), which owns the handler code buckets: got %s", jsiivalue.DeployTime)
	}
	if err := awsid.ValidateAccount(in.deployAccount); err != nil {
		return plan{}, fmt.Errorf("the stack of the deployment needs a concrete account (env), which owns the handler code buckets: %v", err)
	}
	return p, nil
}

// keysByRegion is the key every region's grant goes on: from KeyArns (one
// per region), from MultiRegionKeyArn (a multi-region key: its replicas
// share the key id, in every region) or from KeyAccess (the key of each).
// A region without a key is an error naming it: a KMS key serves one
// region, and an Auto Scaling group launches only with a key of its own
// region.
func keysByRegion(in planInput, regions []string) (map[string]string, error) {
	given := 0
	for _, set := range []bool{len(in.keyArns) > 0, in.multiRegionKeyArn != "", len(in.keyAccess) > 0} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		return nil, fmt.Errorf("KeyArns, MultiRegionKeyArn and KeyAccess: expected one of the three, got %d", given)
	case len(in.keyAccess) > 0:
		return keysOfAccess(in, regions)
	case in.multiRegionKeyArn != "":
		a, err := awsid.ParseKeyARN(in.multiRegionKeyArn)
		if err != nil {
			return nil, fmt.Errorf("MultiRegionKeyArn: %v", err)
		}
		if !strings.HasPrefix(a.Resource, "key/mrk-") {
			return nil, fmt.Errorf("MultiRegionKeyArn: expected a multi-region key (key/mrk-...), whose replicas share its id in every region; got %q (give one key per region in KeyArns instead)", in.multiRegionKeyArn)
		}
		out := map[string]string{}
		for _, r := range regions {
			out[r] = fmt.Sprintf("arn:%s:kms:%s:%s:%s", a.Partition, r, a.Account, a.Resource)
		}
		return out, nil
	case len(in.keyArns) == 0:
		return nil, fmt.Errorf("KeyArns, MultiRegionKeyArn or KeyAccess: required (the key of every region in Regions), got none")
	}
	out := map[string]string{}
	for _, r := range regions {
		arn, ok := in.keyArns[r]
		if !ok {
			return nil, fmt.Errorf("KeyArns: no key for the region %s of Regions; a KMS key serves one region, and a grant must be on the key in the Auto Scaling group's region (got keys for %s)", r, strings.Join(slices.Sorted(maps.Keys(in.keyArns)), ", "))
		}
		if jsiivalue.IsUnresolved(&arn) {
			return nil, fmt.Errorf("KeyArns[%s]: expected the ARN of a key whose policy another app keeps, got the ARN of a key of this app (%s): pass the key's OrganizationKeyAccess in KeyAccess instead, which puts the grants on that key and deploys the StackSet after its statements", r, jsiivalue.DeployTime)
		}
		a, err := awsid.ParseKeyARN(arn)
		if err != nil {
			return nil, fmt.Errorf("KeyArns[%s]: %v", r, err)
		}
		if a.Region != r {
			return nil, fmt.Errorf("KeyArns[%s]: the key %q is in region %s", r, arn, a.Region)
		}
		out[r] = arn
	}
	for r := range in.keyArns {
		if !slices.Contains(regions, r) {
			return nil, fmt.Errorf("KeyArns: a key for %s, which is not in Regions (%s); add the region or remove the key", r, strings.Join(regions, ", "))
		}
	}
	return out, nil
}

// keysOfAccess is the key of every region from KeyAccess: one access per
// region, each for the deployment's Target (the StackSet would otherwise
// reach accounts whose grants the key policy refuses, or the reverse).
func keysOfAccess(in planInput, regions []string) (map[string]string, error) {
	out := map[string]string{}
	from := map[string]string{}
	for i, a := range in.keyAccess {
		if !a.target.Equal(in.target) {
			return nil, fmt.Errorf("KeyAccess[%d] (%s): its statements let in %s, but Target is %s; pass the same OrganizationTarget to both", i, a.path, a.target, in.target)
		}
		if a.region == "" {
			return nil, fmt.Errorf("KeyAccess[%d] (%s): the region of its key is unknown (its ARN is %s; a key of this app needs a stack with a concrete region)", i, a.path, jsiivalue.DeployTime)
		}
		if !slices.Contains(regions, a.region) {
			return nil, fmt.Errorf("KeyAccess[%d] (%s): its key is in %s, which is not in Regions (%s); add the region or remove the access", i, a.path, a.region, strings.Join(regions, ", "))
		}
		if prev, dup := from[a.region]; dup {
			return nil, fmt.Errorf("KeyAccess[%d] (%s): a second key for %s, after %s; a region's grants go on one key", i, a.path, a.region, prev)
		}
		from[a.region], out[a.region] = a.path, a.keyArn
	}
	for _, r := range regions {
		if _, ok := out[r]; !ok {
			return nil, fmt.Errorf("KeyAccess: no key for the region %s of Regions; a KMS key serves one region, and a grant must be on the key in the Auto Scaling group's region (got keys for %s)", r, strings.Join(slices.Sorted(maps.Keys(out)), ", "))
		}
	}
	return out, nil
}

func percentage(prop string, v *float64, def float64, min float64) (float64, error) {
	if v == nil {
		return def, nil
	}
	if *v < min || *v > 100 || *v != float64(int(*v)) {
		return 0, fmt.Errorf("%s: expected a whole number from %v to 100, got %v", prop, min, *v)
	}
	return *v, nil
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

package organization

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
)

// plan is what the props resolve to, checked without CDK: the regions in
// deployment order, and the key each region's grant goes on.
type plan struct {
	orgID                           string
	ouIDs                           []string
	regions                         []string
	keyArns                         map[string]string // region -> key ARN, one for every region
	regionOrder                     []string
	maxConcurrent, failureTolerance float64
	callAs                          string
}

var (
	orgIDRe = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	// An OU id or the organization's root id: StackSets deploy to both.
	ouIDRe = regexp.MustCompile(`^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$`)
)

// planInput is the props as plain Go values (jsii pointers read once).
type planInput struct {
	orgID                           string
	ouIDs, regions, regionOrder     []string
	keyArns                         map[string]string
	multiRegionKeyArn               string
	maxConcurrent, failureTolerance *float64
	callAs                          string
	deployAccount                   string
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
	p := plan{orgID: in.orgID, callAs: in.callAs}
	if !orgIDRe.MatchString(in.orgID) {
		return plan{}, fmt.Errorf("OrganizationId: expected o- followed by 10 to 32 lowercase letters or digits, got %q", in.orgID)
	}
	if len(in.ouIDs) == 0 {
		return plan{}, fmt.Errorf("OrganizationalUnitIds: expected at least one OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx), got none")
	}
	for _, ou := range in.ouIDs {
		if !ouIDRe.MatchString(ou) {
			return plan{}, fmt.Errorf("OrganizationalUnitIds: expected OU ids (ou-xxxx-xxxxxxxx) or a root id (r-xxxx), got %q", ou)
		}
	}
	p.ouIDs = dedupe(in.ouIDs)
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
// per region) or from MultiRegionKeyArn (a multi-region key: its replicas
// share the key id, in every region). A region without a key is an error
// naming it: a KMS key serves one region, and an Auto Scaling group
// launches only with a key of its own region.
func keysByRegion(in planInput, regions []string) (map[string]string, error) {
	switch {
	case len(in.keyArns) > 0 && in.multiRegionKeyArn != "":
		return nil, fmt.Errorf("KeyArns and MultiRegionKeyArn: expected one of the two, got both")
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
		return nil, fmt.Errorf("KeyArns or MultiRegionKeyArn: required (the key of every region in Regions), got neither")
	}
	out := map[string]string{}
	for _, r := range regions {
		arn, ok := in.keyArns[r]
		if !ok {
			return nil, fmt.Errorf("KeyArns: no key for the region %s of Regions; a KMS key serves one region, and a grant must be on the key in the Auto Scaling group's region (got keys for %s)", r, strings.Join(slices.Sorted(maps.Keys(in.keyArns)), ", "))
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

package check

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
)

// checkGrant: a grant on the key gives the launcher's principal (the
// service-linked role, or the launching role) every operation it needs. ListGrants on another account's key needs
// the key policy to allow the caller; when it does not, the source profile
// lists them.
func checkGrant(ctx context.Context, dest, source KMSAPI, k keyInfo, p launchPrincipal, who caller) Result {
	slr := p.ARN
	res := Result{Check: CheckGrant, Resource: k.ARN}
	grants, err := listGrants(ctx, dest, k, slr)
	from := "the destination account"
	if err != nil && isAccessDenied(err) && source != nil && k.Account != who.Account {
		grants, err = listGrants(ctx, source, k, slr)
		from = "the source profile"
	}
	if err != nil {
		res.Status = Skip
		if isAccessDenied(err) {
			res.Detail = fmt.Sprintf("ListGrants on %s is denied to %s: the key policy allows ListGrants only to the principals it names", k.ARN, who.ARN)
		} else {
			res.Detail = fmt.Sprintf("could not list the grants of %s from %s: %v", k.ARN, from, err)
			res.Status = Fail
		}
		res.Fix = fmt.Sprintf("run again with --source-profile <a profile of account %s>, or in that account: aws kms list-grants --key-id %s --query \"Grants[?GranteePrincipal=='%s']\"",
			orDefault(k.Account, "<key owner>"), k.ARN, slr)
		return res
	}

	createFix := fmt.Sprintf("as the grant creator in account %s (the principal the key policy allows kms:CreateGrant): aws kms create-grant --key-id %s --grantee-principal %s --operations %s\n"+
		"with CrossAccountEncryptedAmi: redeploy the destination stack (change the grant's VerifyToken to make it check and recreate the grant)",
		who.Account, k.ARN, slr, strings.Join(grantspec.AutoScalingOperations, " "))
	var best *kmstypes.GrantListEntry
	var bestMissing []string
	for i := range grants {
		g := &grants[i]
		missing := missingOperations(g.Operations)
		if best == nil || len(missing) < len(bestMissing) {
			best, bestMissing = g, missing
		}
	}
	switch {
	case best == nil:
		res.Status = Fail
		res.Detail = fmt.Sprintf("no grant on %s for %s (listed from %s)", k.ARN, slr, from)
		res.Fix = createFix
	case len(bestMissing) > 0:
		res.Status = Fail
		res.Detail = fmt.Sprintf("grant %s on %s for %s lacks %s", aws.ToString(best.GrantId), k.ARN, slr, strings.Join(bestMissing, ", "))
		res.Fix = createFix
	case best.Constraints != nil && (len(best.Constraints.EncryptionContextEquals) > 0 || len(best.Constraints.EncryptionContextSubset) > 0):
		res.Status = Warn
		res.Detail = fmt.Sprintf("grant %s on %s gives %s every operation, but only for a fixed encryption context, which EBS volumes of new instances do not have", aws.ToString(best.GrantId), k.ARN, slr)
		res.Fix = createFix
	default:
		res.Status = Pass
		name := ""
		if n := aws.ToString(best.Name); n != "" {
			name = fmt.Sprintf(" (%s)", n)
		}
		res.Detail = fmt.Sprintf("grant %s%s on %s gives %s every operation %s needs", aws.ToString(best.GrantId), name, k.ARN, slr, p.operationsOf())
	}
	return res
}

// listGrants lists the grants of k for grantee, every page of them. The
// service filters by grantee; the filter is applied here too, since not
// every implementation honours it.
func listGrants(ctx context.Context, api KMSAPI, k keyInfo, grantee string) ([]kmstypes.GrantListEntry, error) {
	var out []kmstypes.GrantListEntry
	p := kms.NewListGrantsPaginator(api, &kms.ListGrantsInput{KeyId: aws.String(k.ARN), GranteePrincipal: aws.String(grantee)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, inRegion(k.Region)...)
		if err != nil {
			return nil, err
		}
		for _, g := range page.Grants {
			if aws.ToString(g.GranteePrincipal) == grantee {
				out = append(out, g)
			}
		}
	}
	return out, nil
}

func missingOperations(have []kmstypes.GrantOperation) []string {
	var missing []string
	for _, op := range grantspec.AutoScalingOperations {
		if !slices.Contains(have, kmstypes.GrantOperation(op)) {
			missing = append(missing, op)
		}
	}
	return missing
}

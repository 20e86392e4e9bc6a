package check

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
)

// checkKeyPolicy: the key policy lets the launcher's principal (the
// service-linked role, or the launching role) use the key
// (key-policy-use) and the grant creator create its grant
// (key-policy-create-grant). GetKeyPolicy works only in the key's own
// account, so api is the source profile's client for a key of another
// account, and nil without one.
func checkKeyPolicy(ctx context.Context, api KMSAPI, k keyInfo, p launchPrincipal, creators []string, creatorNote string, who caller) []Result {
	slr := p.ARN
	use := Result{Check: CheckKeyPolicyUse, Resource: k.ARN}
	create := Result{Check: CheckKeyPolicyGrant, Resource: k.ARN}
	both := func(status Status, detail, fix string) []Result {
		use.Status, use.Detail, use.Fix = status, detail, fix
		create.Status, create.Detail, create.Fix = status, detail, fix
		return []Result{use, create}
	}
	readFix := fmt.Sprintf("run again with --source-profile <a profile of account %s>, or in that account: aws kms get-key-policy --key-id %s --policy-name default --query Policy --output text",
		orDefault(k.Account, "<key owner>"), k.ARN)
	if api == nil {
		return both(Skip, fmt.Sprintf("the key policy can be read only from the key's account %s, and there is no --source-profile", orDefault(k.Account, "<unknown>")), readFix)
	}
	out, err := api.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(k.ARN), PolicyName: aws.String("default")}, inRegion(k.Region)...)
	if err != nil {
		if isAccessDenied(err) {
			return both(Skip, fmt.Sprintf("GetKeyPolicy on %s is denied: %v", k.ARN, err), "use a profile of the key's account allowed kms:GetKeyPolicy; "+readFix)
		}
		return both(Skip, fmt.Sprintf("could not read the key policy of %s: %v", k.ARN, err), readFix)
	}
	doc, err := parsePolicy(aws.ToString(out.Policy))
	if err != nil {
		return both(Fail, fmt.Sprintf("key %s: %v", k.ARN, err), "")
	}

	creator := fmt.Sprintf("arn:%s:iam::%s:role/<grant creator>", who.Partition, who.Account)
	if len(creators) > 0 {
		creator = creators[0]
	}
	statements := fixStatements(p, creator, who)
	addFix := func(s amipolicy.Statement) string {
		b, _ := json.MarshalIndent(s.JSON(), "", "  ")
		return fmt.Sprintf("add this statement to the policy of key %s (in account %s), or deploy the key's stack with CrossAccountEncryptedAmi:\n%s", k.ARN, k.Account, b)
	}

	// The principal uses the key through EC2.
	slrAccount := orDefault(arnAccount(slr), who.Account)
	var missing, unsure, notes, by []string
	for _, action := range useActions() {
		o := doc.evaluate(request{
			action: action, principal: slr, account: slrAccount, partition: who.Partition, exactPrincipal: p.exact(),
			context: map[string][]string{
				"aws:principalarn": {slr}, "aws:principalaccount": {slrAccount}, "kms:calleraccount": {slrAccount},
				"kms:viaservice": {"ec2." + k.Region + ".amazonaws.com"},
			},
			absent: []string{"kms:granteeprincipal", "kms:grantoperations", "kms:grantisforawsresource", "kms:retiringprincipal"},
		})
		switch o.v {
		case no:
			missing = append(missing, action)
		case maybe:
			unsure = append(unsure, action)
		}
		for _, n := range o.notes {
			notes = appendNew(notes, n)
		}
		for _, b := range o.by {
			by = appendNew(by, b)
		}
	}
	switch {
	case len(missing) > 0:
		use.Status = Fail
		use.Detail = fmt.Sprintf("the key policy does not let %s call %s", slr, strings.Join(missing, ", "))
		use.Fix = addFix(statements[0])
	case len(unsure) > 0:
		use.Status = Warn
		use.Detail = fmt.Sprintf("the key policy may not let %s call %s", slr, strings.Join(unsure, ", "))
	default:
		use.Status = Pass
		use.Detail = fmt.Sprintf("the key policy lets %s use the key (statement %s)", slr, strings.Join(by, ", "))
	}
	if len(notes) > 0 {
		use.Detail += ": " + strings.Join(notes, "; ")
	}

	// The grant creator creates a grant for the principal, with the
	// operations of its launch path, on its own behalf (not through an AWS service), naming
	// itself as the grant's retiring principal, as the library's handler does.
	grantReq := func(creator, forAWSResource string) request {
		ctx := map[string][]string{
			"aws:principalaccount": {who.Account}, "kms:calleraccount": {who.Account},
			"kms:granteeprincipal": {slr}, "kms:grantoperations": grantspec.AutoScalingOperations,
			"kms:grantisforawsresource": {forAWSResource},
		}
		absent := []string{"kms:viaservice", "kms:retiringprincipal"}
		if creator != "" {
			ctx["aws:principalarn"] = []string{creator}
			ctx["kms:retiringprincipal"] = []string{creator}
			absent = absent[:1]
		}
		return request{action: "kms:CreateGrant", principal: creator, account: who.Account, partition: who.Partition,
			context: ctx, absent: absent}
	}
	candidates := creators
	if len(candidates) == 0 {
		candidates = []string{""}
	}
	var allowed, denied, uncertain, classic, createNotes []string
	for _, c := range candidates {
		o := doc.evaluate(grantReq(c, "false"))
		name := c
		if c == "" {
			name = "principals of account " + who.Account
		}
		for _, n := range o.notes {
			createNotes = appendNew(createNotes, n)
		}
		switch o.v {
		case yes:
			switch {
			case c != "":
				allowed = append(allowed, fmt.Sprintf("%s (statement %s)", c, strings.Join(o.by, ", ")))
			case len(o.who) > 0:
				allowed = append(allowed, fmt.Sprintf("%s (statement %s)", strings.Join(o.who, ", "), strings.Join(o.by, ", ")))
			default:
				allowed = append(allowed, fmt.Sprintf("any principal of account %s whose IAM policy allows kms:CreateGrant on the key (statement %s)", who.Account, strings.Join(o.by, ", ")))
			}
		case maybe:
			uncertain = append(uncertain, name)
		default:
			denied = append(denied, name)
			if g := doc.evaluate(grantReq(c, "true")); g.v != no {
				for _, b := range g.by {
					classic = appendNew(classic, b)
				}
			}
		}
	}
	switch {
	case len(allowed) > 0:
		create.Status = Pass
		create.Detail = fmt.Sprintf("the key policy lets %s create the grant for %s", strings.Join(allowed, "; "), slr)
		if len(denied) > 0 {
			create.Detail += fmt.Sprintf("; not %s", strings.Join(denied, ", "))
		}
	case len(classic) > 0:
		create.Status = Fail
		create.Detail = fmt.Sprintf("statement %s allows kms:CreateGrant only with the condition kms:GrantIsForAWSResource, which forbids a grant to a service-linked role: the classic cause of \"Client error on launch\" (the KMS console adds it when you add another account to a key)", strings.Join(classic, ", "))
		create.Fix = fmt.Sprintf("remove the kms:GrantIsForAWSResource condition from statement %s, or %s", strings.Join(classic, ", "), addFix(statements[1]))
	case len(uncertain) > 0:
		create.Status = Warn
		create.Detail = fmt.Sprintf("the key policy may let %s create the grant for %s", strings.Join(uncertain, ", "), slr)
	default:
		create.Status = Fail
		create.Detail = fmt.Sprintf("the key policy lets no principal of account %s (%s) create a grant for %s with the %s operations", who.Account, strings.Join(denied, ", "), slr, p.operationsOf())
		create.Fix = addFix(statements[1])
	}
	if creatorNote != "" {
		createNotes = append([]string{creatorNote}, createNotes...)
	}
	if len(createNotes) > 0 {
		create.Detail += ": " + strings.Join(createNotes, "; ")
	}
	return []Result{use, create}
}

// fixStatements are the two statements (use, CreateGrant) this library's
// SCOPED style writes for the principal, which a fix prints. amipolicy
// writes them for an Auto Scaling role; for another launcher's principal the
// role's ARN and name are put in its place, conditions and Sid alike.
func fixStatements(p launchPrincipal, creator string, who caller) []amipolicy.Statement {
	l := launcher.Launcher{Kind: p.Kind}
	switch p.Kind {
	case launcher.AutoScaling:
		l.SLRSuffix = slrSuffixOf(p.ARN)
	case launcher.Role:
		l.RoleARN = p.ARN
	}
	return amipolicy.Statements(amipolicy.Destination{Partition: who.Partition, Account: who.Account,
		GrantCreatorArn: creator, Launchers: []launcher.Launcher{l}}, amipolicy.Scoped)
}

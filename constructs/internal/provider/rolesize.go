package provider

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
)

// The role's size check (roleSizeCheck): every AWS::IAM::Policy of the
// handler role is an inline policy of it, and IAM caps their aggregate at
// amipolicy.MaxRoleInlinePolicyChars. The check counts each document as
// IAM does (amipolicy.PolicyChars: compact JSON, no white space), with
// every deploy-time value (a CDK token, "${Token[...]}" in the Go value)
// counted as the longest value it can resolve to:
//   - the pseudo parameters: a partition maxPartitionChars, a region
//     maxRegionChars, an account 12, a stack name maxStackNameChars, a
//     stack id arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<36-character id>;
//   - the function's ARN: arn:<partition>:lambda:<region>:<account>:function:<64 characters, Lambda's limit on a name>;
//   - the log group's ARN: arn:<partition>:logs:<region>:<account>:log-group:<512 characters, CloudWatch Logs' limit on a name>:*;
//   - a key's ARN: arn:<partition>:kms:<region>:<account>:key/<36 characters>
//     (a key id or mrk- and 32 hex digits);
//   - any other token: otherTokenChars.
//
// With the stack's literal partition, region and name where they are known.
// The total is so an upper bound: a stack the check passes cannot exceed
// the quota through a value that resolves at deploy time.
const (
	maxPartitionChars = 16  // aws-iso-b is 9
	maxRegionChars    = 20  // ap-southeast-5 is 14
	maxStackNameChars = 128 // CloudFormation's limit
	maxFunctionName   = 64
	maxLogGroupName   = 512
	keyIDChars        = 36
	// otherTokenChars stands for a token this package did not place
	// itself; none is known to reach the role's policies today.
	otherTokenChars = 256
)

var tokenRe = regexp.MustCompile(`\$\{Token\[[^\]]+\]\}`)

// pseudoTokens are the pseudo parameters' tokens with their allowances.
var pseudoTokens = sync.OnceValue(func() map[string]int {
	stackID := len("arn::cloudformation:::stack//") + maxPartitionChars + maxRegionChars + 12 + maxStackNameChars + 36
	return map[string]int{
		*awscdk.Aws_PARTITION():  maxPartitionChars,
		*awscdk.Aws_REGION():     maxRegionChars,
		*awscdk.Aws_ACCOUNT_ID(): 12,
		*awscdk.Aws_STACK_NAME(): maxStackNameChars,
		*awscdk.Aws_STACK_ID():   stackID,
	}
})

// partitionChars and regionChars are the stack's, or their maximum.
func (p *Provider) partitionChars() int {
	if jsiivalue.IsUnresolved(&p.env.Partition) {
		return maxPartitionChars
	}
	return len(p.env.Partition)
}

func (p *Provider) regionChars() int {
	if jsiivalue.IsUnresolved(&p.env.Region) {
		return maxRegionChars
	}
	return len(p.env.Region)
}

// noteTokens records the allowances of the tokens newProvider placed: the
// log group's ARN (the first statement of the role's own policy), the
// function's ARN and the stack's id.
func (p *Provider) noteTokens() {
	arn := len("arn::::") + p.partitionChars() + p.regionChars() + 12
	if logs, ok := p.statements[0].(map[string]interface{})["Resource"].(string); ok {
		p.tokenChars[logs] = arn + len("logs:log-group::*") + maxLogGroupName
	}
	p.tokenChars[*p.ServiceToken] = arn + len("lambda:function:") + maxFunctionName
	name := maxStackNameChars
	if !jsiivalue.IsUnresolved(&p.env.Name) {
		name = len(p.env.Name)
	}
	p.tokenChars[*awscdk.Aws_STACK_ID()] = arn + len("cloudformation:stack//") + name + 36
}

// noteKeyArn records the allowance of a key's ARN, when it is a token.
func (p *Provider) noteKeyArn(keyArn string) {
	if keyArn == "" || !jsiivalue.IsUnresolved(&keyArn) {
		return
	}
	// A key of another region or partition is refused elsewhere; the
	// maximum keeps the bound true regardless.
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenChars[keyArn] = len("arn::kms:::key/") + maxPartitionChars + maxRegionChars + 12 + keyIDChars
}

func (p *Provider) tokenAllowance(token string) int {
	if n, ok := p.tokenChars[token]; ok {
		return n
	}
	if n, ok := pseudoTokens()[token]; ok {
		return n
	}
	return otherTokenChars
}

// roleSize is the characters of each of the role's inline policies, as
// IAM counts them (with tokens at their allowance): the role's own policy
// first, then the others in the order they were made.
func (p *Provider) roleSize() (own int, others []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	own = amipolicy.PolicyChars(policyDocument(p.statements), tokenRe, p.tokenAllowance)
	for _, st := range p.inline {
		others = append(others, amipolicy.PolicyChars(policyDocument(st), tokenRe, p.tokenAllowance))
	}
	return own, others
}

// RoleSizeProblem is the role's size check's error, or "": the role's
// inline policies over IAM's quota, with the number of copies and grants,
// how many copies would fit, and what to do.
func (p *Provider) RoleSizeProblem() string {
	own, others := p.roleSize()
	total, shared, copyChars := own, 0, 0
	for i, n := range others {
		total += n
		if p.copierPolicy != nil && i == p.copierPolicyAt {
			shared = n
		}
	}
	if total <= amipolicy.MaxRoleInlinePolicyChars {
		return ""
	}
	copyChars = p.copyChars(others)
	what := fmt.Sprintf("%d copies (amicopy.CopiedAmi) and %d grants", p.copies, p.grants)
	advice := "Split the grants of this stack over more stacks: each stack has a handler role of its own"
	if p.copies > 0 {
		perCopy := copyChars / p.copies
		fit := 0
		if perCopy > 0 {
			fit = (amipolicy.MaxRoleInlinePolicyChars - (total - copyChars)) / perCopy
		}
		if fit < 0 {
			fit = 0
		}
		advice = fmt.Sprintf("Each copy adds about %d characters (its keys' statements; the %d characters the copies share are counted once): about %d copies fit next to the rest. "+
			"Put the other copies in another stack of this account and region (each stack has a handler role of its own)",
			perCopy, shared, fit)
	}
	return fmt.Sprintf("the handler role %s of stack %s would have inline policies of about %d characters with %s; IAM allows a role %d characters in all its inline policies (white space not counted, deploy-time values counted at their longest), "+
		"so the deploy would fail (LimitExceeded at the policy that crosses it). %s",
		p.roleNameForMessage(), p.env.Name, total, what, amipolicy.MaxRoleInlinePolicyChars, advice)
}

// copyChars is the characters of the copies' own policies.
func (p *Provider) copyChars(others []int) int {
	n := 0
	for _, i := range p.copyPolicyAt {
		n += others[i]
	}
	return n
}

func (p *Provider) roleNameForMessage() string {
	name := p.env.RoleName()
	if jsiivalue.IsUnresolved(&name) {
		return "GrantHandler-<region>-…"
	}
	return name
}

// roleSizeCheck is the role's size check (constructs.IValidation), run
// when the app synthesizes, once every copy and grant of the stack is known.
type roleSizeCheck struct{ p *Provider }

func (c *roleSizeCheck) Validate() *[]*string {
	if problem := c.p.RoleSizeProblem(); problem != "" {
		return &[]*string{jsii.String(problem)}
	}
	return &[]*string{}
}

// RoleInlinePolicyChars is the characters of all the role's inline
// policies as the size check counts them.
func (p *Provider) RoleInlinePolicyChars() int {
	own, others := p.roleSize()
	for _, n := range others {
		own += n
	}
	return own
}

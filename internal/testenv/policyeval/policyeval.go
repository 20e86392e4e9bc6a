// Package policyeval asks a real IAM policy evaluation engine whether AWS
// would allow a request: @cloud-copilot/iam-simulate (pinned in package.json
// as a test-only devDependency; it is AGPL, so only tests load it), run by
// evaluate.mjs next to this file, once per batch of cases. A missing engine
// is a test failure, never a skip.
//
// The engine is calibrated against cases whose answer AWS documents
// (calibration_test.go); what it gets wrong is recorded there, and no case
// may rely on it.
package policyeval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// EnginePackage is the npm package that evaluates the policies.
const EnginePackage = "@cloud-copilot/iam-simulate"

// Principal is the IAM role that makes a request, as AWS sees it: the
// role's session (what the engine matches against Principal elements) and
// the global context keys AWS adds for it.
type Principal struct {
	// RoleArn is the role's ARN, path included
	// (arn:aws:iam::<account>:role/<path>/<name>): aws:PrincipalArn.
	RoleArn string
	// OrgID and OrgPaths are aws:PrincipalOrgID and aws:PrincipalOrgPaths
	// (o-…/r-…/ou-…/…/, the account's full path); both empty for an account
	// outside any organization, whose requests have neither key.
	OrgID    string
	OrgPaths []string
}

// Account is the role's account (aws:PrincipalAccount).
func (p Principal) Account() string {
	parts := strings.SplitN(p.RoleArn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// SessionArn is the ARN of a session of the role: an assumed role's ARN
// carries the role's name without its path.
func (p Principal) SessionArn() string {
	name := p.RoleArn[strings.LastIndex(p.RoleArn, "/")+1:]
	partition := strings.SplitN(p.RoleArn, ":", 3)[1]
	return fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/policyeval", partition, p.Account(), name)
}

// contextKeys are the global keys AWS puts in every request of the
// principal (IAM User Guide, "AWS global condition context keys":
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
func (p Principal) contextKeys() map[string]any {
	keys := map[string]any{
		"aws:PrincipalArn":     p.RoleArn,
		"aws:PrincipalAccount": p.Account(),
		"aws:PrincipalType":    "AssumedRole",
	}
	if p.OrgID != "" {
		keys["aws:PrincipalOrgID"] = p.OrgID
	}
	if len(p.OrgPaths) > 0 {
		keys["aws:PrincipalOrgPaths"] = p.OrgPaths
	}
	return keys
}

// Request is one API call.
type Request struct {
	Principal Principal
	Action    string // kms:CreateGrant
	Resource  string // one ARN, never a wildcard
	// ResourceAccount is the account that owns Resource, when its ARN has
	// none (EC2's image and snapshot ARNs); "": the ARN's account.
	ResourceAccount string
	// Context holds the request's own keys (kms:GranteePrincipal, ...): a
	// string, or a []string for a multivalued key. The principal's keys are
	// added from Principal.
	Context map[string]any
}

// Policy is a named identity policy document.
type Policy struct {
	Name     string
	Document any
}

// Want is what a case expects of the engine's overall decision.
type Want string

const (
	Allowed          Want = "Allowed"
	Denied           Want = "Denied" // explicitly or implicitly
	ExplicitlyDenied Want = "ExplicitlyDenied"
	ImplicitlyDenied Want = "ImplicitlyDenied"
)

// KeyPolicyWant is what a case expects of the resource (key) policy alone.
type KeyPolicyWant string

const (
	// KeyPolicyAllows: a statement of the key policy allows the request
	// (naming the principal, or its account and so delegating to IAM).
	KeyPolicyAllows KeyPolicyWant = "allows"
	// KeyPolicyDoesNotAllow: no statement allows it (or one denies it).
	KeyPolicyDoesNotAllow KeyPolicyWant = "does not allow"
	// KeyPolicyDenies: a statement of the key policy denies it.
	KeyPolicyDenies KeyPolicyWant = "denies"
)

// Case is one evaluated request and what AWS would answer.
type Case struct {
	Name             string
	Request          Request
	IdentityPolicies []Policy
	KeyPolicy        any // the resource policy of Request.Resource; nil: none
	// Want is the expected overall decision; "" checks only WantKeyPolicy
	// (for a principal whose identity policies are AWS's, such as a
	// service-linked role's, which the case does not invent).
	Want          Want
	WantKeyPolicy KeyPolicyWant // "": not checked
	// Why says where the answer comes from: the AWS page for a calibration
	// case, the design claim or the issue for an example's case.
	Why string
}

// Result is the engine's answer to one case.
type Result struct {
	Decision  string // Allowed, ExplicitlyDenied, ImplicitlyDenied
	Identity  string // the identity policies' own answer
	KeyPolicy string // the resource policy's own answer (AllowedForAccount: allowed for the account, which IAM must allow too)
	// Matched names the statements that matched, "identity:<policy>#<Sid
	// or index> Allow", "resource:#<Sid or index> Deny".
	Matched []string
	// IgnoredContextKeys are keys of the request that the engine dropped as
	// not applying to the action: a case that sends one is mistaken.
	IgnoredContextKeys []string
	Error              string
}

// Root returns the repository root: the directory, upward from this
// package, that holds package.json and so node_modules.
func Root() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("policyeval: cannot locate its own source")
	}
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			return dir, nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("policyeval: no package.json above %s", file)
		}
	}
}

// Evaluate runs every case through the engine in one Node process.
func Evaluate(cases []Case) ([]Result, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", filepath.FromSlash(EnginePackage), "package.json")); err != nil {
		return nil, fmt.Errorf("the policy evaluation engine %s is not installed in %s (run npm ci there): %v", EnginePackage, root, err)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "evaluate.mjs")

	type simulation struct {
		ID         string `json:"id"`
		Simulation any    `json:"simulation"`
	}
	batch := make([]simulation, len(cases))
	for i, c := range cases {
		if c.Request.Principal.RoleArn == "" || c.Request.Action == "" || c.Request.Resource == "" {
			return nil, fmt.Errorf("case %q: a request needs a principal role, an action and a resource", c.Name)
		}
		ctx := c.Request.Principal.contextKeys()
		for k, v := range c.Request.Context {
			if _, dup := ctx[k]; dup {
				return nil, fmt.Errorf("case %q: context key %s comes from the principal", c.Name, k)
			}
			ctx[k] = v
		}
		identity := []map[string]any{}
		for _, p := range c.IdentityPolicies {
			identity = append(identity, map[string]any{"name": p.Name, "policy": p.Document})
		}
		sim := map[string]any{
			"request": map[string]any{
				"principal":        c.Request.Principal.SessionArn(),
				"action":           c.Request.Action,
				"resource":         map[string]any{"resource": c.Request.Resource, "accountId": resourceAccount(c.Request)},
				"contextVariables": ctx,
			},
			"identityPolicies":        identity,
			"serviceControlPolicies":  []any{},
			"resourceControlPolicies": []any{},
		}
		if c.KeyPolicy != nil {
			sim["resourcePolicy"] = c.KeyPolicy
		}
		batch[i] = simulation{ID: fmt.Sprint(i), Simulation: sim}
	}
	in, err := json.Marshal(batch)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", script)
	cmd.Dir = root
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node %s: %v", script, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("timed out after 5 minutes")
		<-done
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: %v\n%s", script, err, stderr.String())
	}
	var answers []struct {
		ID                 string   `json:"id"`
		Decision           string   `json:"decision"`
		Identity           string   `json:"identity"`
		Resource           string   `json:"resource"`
		Matched            []string `json:"matched"`
		IgnoredContextKeys []string `json:"ignoredContextKeys"`
		Error              string   `json:"error"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &answers); err != nil {
		return nil, fmt.Errorf("node %s answered %q: %v\n%s", script, stdout.String(), err, stderr.String())
	}
	if len(answers) != len(cases) {
		return nil, fmt.Errorf("node %s answered %d cases of %d", script, len(answers), len(cases))
	}
	results := make([]Result, len(cases))
	for i, a := range answers {
		if a.ID != fmt.Sprint(i) {
			return nil, fmt.Errorf("node %s answered case %s in place %d", script, a.ID, i)
		}
		results[i] = Result{Decision: a.Decision, Identity: a.Identity, KeyPolicy: a.Resource, Matched: a.Matched, IgnoredContextKeys: a.IgnoredContextKeys, Error: a.Error}
	}
	return results, nil
}

// resourceAccount is the account that owns the request's resource.
func resourceAccount(r Request) string {
	if r.ResourceAccount != "" {
		return r.ResourceAccount
	}
	return arnAccount(r.Resource)
}

// arnAccount is the account field of an ARN ("" for an S3-style ARN).
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// Mismatch says how a result differs from its case, or "" when it does not.
func Mismatch(c Case, r Result) string {
	var why []string
	if r.Error != "" {
		return "engine error: " + r.Error
	}
	if len(r.IgnoredContextKeys) > 0 {
		why = append(why, fmt.Sprintf("the engine ignored context keys %v (they do not apply to %s)", r.IgnoredContextKeys, c.Request.Action))
	}
	switch c.Want {
	case "":
	case Denied:
		if r.Decision == string(Allowed) {
			why = append(why, "allowed")
		}
	default:
		if r.Decision != string(c.Want) {
			why = append(why, "decision "+r.Decision)
		}
	}
	allows := r.KeyPolicy == "Allowed" || r.KeyPolicy == "AllowedForAccount"
	switch c.WantKeyPolicy {
	case KeyPolicyAllows:
		if !allows {
			why = append(why, "key policy "+r.KeyPolicy)
		}
	case KeyPolicyDoesNotAllow:
		if allows {
			why = append(why, "key policy "+r.KeyPolicy)
		}
	case KeyPolicyDenies:
		if r.KeyPolicy != "ExplicitlyDenied" {
			why = append(why, "key policy "+r.KeyPolicy)
		}
	}
	if c.Want == "" && c.WantKeyPolicy == "" {
		why = append(why, "the case expects nothing")
	}
	return strings.Join(why, "; ")
}

// Check evaluates the cases in one batch, logs how many there were, and
// fails the test with one table of every case whose answer differs: the
// case, what it expected, what the engine answered and the statements that
// matched.
func Check(t testing.TB, cases []Case) []Result {
	t.Helper()
	if len(cases) == 0 {
		t.Fatal("policyeval.Check: no cases")
	}
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.Name] {
			t.Fatalf("policyeval.Check: two cases named %q", c.Name)
		}
		names[c.Name] = true
	}
	results, err := Evaluate(cases)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s evaluated %d cases", EnginePackage, len(cases))
	var table bytes.Buffer
	w := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "CASE\tEXPECTED\tGOT\tWHY IT DIFFERS\tMATCHED STATEMENTS")
	failed := 0
	for i, c := range cases {
		if why := Mismatch(c, results[i]); why != "" {
			failed++
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Name, expected(c), got(results[i]), why, strings.Join(results[i].Matched, ", "))
		}
	}
	w.Flush()
	if failed > 0 {
		t.Errorf("%d of %d cases differ from what AWS would answer:\n%s", failed, len(cases), table.String())
	}
	return results
}

func expected(c Case) string {
	var parts []string
	if c.Want != "" {
		parts = append(parts, string(c.Want))
	}
	if c.WantKeyPolicy != "" {
		parts = append(parts, "key policy "+string(c.WantKeyPolicy))
	}
	return strings.Join(parts, ", ")
}

func got(r Result) string {
	if r.Error != "" {
		return "error"
	}
	return fmt.Sprintf("%s (identity %s, key policy %s)", r.Decision, orNone(r.Identity), orNone(r.KeyPolicy))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

package test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/policyeval"
)

// This file reads what the policy evaluation (policyeval_test.go) needs
// from synthesized templates, as CloudFormation would deploy them in
// concrete accounts and regions: the key policies (an AWS::KMS::Key's
// KeyPolicy, or an imported key's policy with the statements every
// Custom::KmsKeyPolicyStatements of the assembly writes into it), and each
// Custom::KmsGrant with the role of the function that serves it and that
// role's identity policies. It resolves the intrinsics these use, in Go;
// any other intrinsic is an error, so a template this reader does not
// understand fails loudly instead of being evaluated wrong.

// deployEnv is where a template is deployed.
type deployEnv struct {
	partition, account, region string
	// stackName is AWS::StackName there (handler policies name their own
	// stack); empty when the test does not know it.
	stackName string
}

// stackArtifact is one stack of an assembly (its own or a nested one's).
type stackArtifact struct {
	key       string // as in Assembly.Templates
	stackName string // CloudFormation's name (Fn::GetStackOutput's StackName)
	env       deployEnv
}

// assemblyStacks lists the stacks of an assembly and of its nested
// assemblies with their environments, read from the manifests.
func assemblyStacks(a *Assembly) ([]stackArtifact, error) {
	var out []stackArtifact
	var walk func(dir string, manifest map[string]interface{}) error
	walk = func(dir string, manifest map[string]interface{}) error {
		for id, art := range manifest["artifacts"].(map[string]interface{}) {
			art := art.(map[string]interface{})
			props, _ := art["properties"].(map[string]interface{})
			switch art["type"] {
			case "aws:cloudformation:stack":
				env, _ := art["environment"].(string)
				parts := strings.Split(strings.TrimPrefix(env, "aws://"), "/")
				if len(parts) != 2 || len(parts[0]) != 12 {
					return fmt.Errorf("stack %s has environment %q, want aws://<account>/<region>", id, env)
				}
				name, _ := props["stackName"].(string)
				if name == "" {
					name = id
				}
				out = append(out, stackArtifact{key: filepath.ToSlash(filepath.Join(dir, id)), stackName: name, env: deployEnv{"aws", parts[0], parts[1], name}})
			case "cdk:cloud-assembly":
				nested := filepath.Join(dir, props["directoryName"].(string))
				var m map[string]interface{}
				if err := loadJSON(filepath.Join(a.Dir, nested, "manifest.json"), &m); err != nil {
					return err
				}
				if err := walk(nested, m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("", a.Manifest); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y stackArtifact) int { return strings.Compare(x.key, y.key) })
	return out, nil
}

// resolver resolves the intrinsics of one template deployed in env.
type resolver struct {
	stack string // the template's key (Assembly.Templates, Assembly.StackSets)
	env   deployEnv
	tmpl  map[string]interface{}
	// stackOutput resolves Fn::GetStackOutput (another stack's output).
	stackOutput func(stackName, region, output string) (interface{}, error)
}

// keyArnFor is the ARN this evaluation gives the AWS::KMS::Key of logical
// id in stack (its key id is unknown until deploy): a key id shaped like
// KMS's, derived from both so that two keys never share one.
func keyArnFor(env deployEnv, stack, logicalID string) string {
	h := fmt.Sprintf("%x", sha256.Sum256([]byte(stack+"/"+logicalID)))
	return fmt.Sprintf("arn:%s:kms:%s:%s:key/%s-%s-%s-%s-%s", env.partition, env.region, env.account, h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

func (r *resolver) resource(id string) (map[string]interface{}, error) {
	res, ok := r.tmpl["Resources"].(map[string]interface{})[id].(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("no resource %s", id)
	}
	return res, nil
}

func (r *resolver) resolve(v interface{}) (interface{}, error) {
	switch v := v.(type) {
	case []interface{}:
		out := make([]interface{}, len(v))
		for i, x := range v {
			y, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case map[string]interface{}:
		if len(v) == 1 {
			for fn, arg := range v {
				if fn == "Ref" || strings.HasPrefix(fn, "Fn::") {
					return r.intrinsic(fn, arg)
				}
			}
		}
		out := map[string]interface{}{}
		for k, x := range v {
			y, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	}
	return v, nil
}

func (r *resolver) resolveString(v interface{}) (string, error) {
	x, err := r.resolve(v)
	if err != nil {
		return "", err
	}
	s, ok := x.(string)
	if !ok {
		return "", fmt.Errorf("%v resolves to %v, not a string", v, x)
	}
	return s, nil
}

func (r *resolver) intrinsic(fn string, arg interface{}) (interface{}, error) {
	switch fn {
	case "Ref":
		switch arg {
		case "AWS::Partition":
			return r.env.partition, nil
		case "AWS::AccountId":
			return r.env.account, nil
		case "AWS::Region":
			return r.env.region, nil
		case "AWS::URLSuffix":
			return "amazonaws.com", nil
		case "AWS::StackName":
			if r.env.stackName != "" {
				return r.env.stackName, nil
			}
		case "AWS::StackId":
			// The stack's UUID is CloudFormation's choice: a fixed one
			// stands for it (a copy's policy pins its stack's id).
			if r.env.stackName != "" {
				return fmt.Sprintf("arn:%s:cloudformation:%s:%s:stack/%s/00000000-0000-0000-0000-000000000000", r.env.partition, r.env.region, r.env.account, r.env.stackName), nil
			}
		}
		return nil, fmt.Errorf("Ref %v: only pseudo parameters resolve here", arg)
	case "Fn::Join":
		a, ok := arg.([]interface{})
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("Fn::Join %v", arg)
		}
		sep, _ := a[0].(string)
		items, err := r.resolve(a[1])
		if err != nil {
			return nil, err
		}
		list, ok := items.([]interface{})
		if !ok {
			return nil, fmt.Errorf("Fn::Join of %v", items)
		}
		parts := make([]string, len(list))
		for i, x := range list {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("Fn::Join of a non-string %v", x)
			}
			parts[i] = s
		}
		return strings.Join(parts, sep), nil
	case "Fn::FindInMap":
		a, ok := arg.([]interface{})
		if !ok || len(a) != 3 {
			return nil, fmt.Errorf("Fn::FindInMap %v", arg)
		}
		var names [3]string
		for i, x := range a {
			s, err := r.resolveString(x)
			if err != nil {
				return nil, err
			}
			names[i] = s
		}
		m, _ := r.tmpl["Mappings"].(map[string]interface{})[names[0]].(map[string]interface{})
		second, _ := m[names[1]].(map[string]interface{})
		v, ok := second[names[2]]
		if !ok {
			return nil, fmt.Errorf("Fn::FindInMap %v: no such entry", names)
		}
		return v, nil
	case "Fn::GetAtt":
		a, ok := arg.([]interface{})
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt %v", arg)
		}
		id, _ := a[0].(string)
		attr, _ := a[1].(string)
		res, err := r.resource(id)
		if err != nil {
			return nil, fmt.Errorf("Fn::GetAtt %v: %v", a, err)
		}
		props, _ := res["Properties"].(map[string]interface{})
		switch typ := res["Type"]; {
		case typ == "AWS::IAM::Role" && attr == "Arn":
			name, err := r.resolveString(props["RoleName"])
			if err != nil {
				return nil, fmt.Errorf("the ARN of role %s needs its RoleName: %v", id, err)
			}
			path := "/"
			if p, ok := props["Path"]; ok {
				if path, err = r.resolveString(p); err != nil {
					return nil, err
				}
			}
			return fmt.Sprintf("arn:%s:iam::%s:role%s%s", r.env.partition, r.env.account, path, name), nil
		case typ == "AWS::KMS::Key" && attr == "Arn":
			return keyArnFor(r.env, r.stack, id), nil
		case typ == "AWS::Lambda::Function" && attr == "Arn":
			// A generated name: the logical id stands for it.
			name := id
			if n, ok := props["FunctionName"]; ok {
				if name, err = r.resolveString(n); err != nil {
					return nil, err
				}
			}
			return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", r.env.partition, r.env.region, r.env.account, name), nil
		case typ == "AWS::Logs::LogGroup" && attr == "Arn":
			name := id // a generated name: the logical id stands for it
			if n, ok := props["LogGroupName"]; ok {
				if name, err = r.resolveString(n); err != nil {
					return nil, err
				}
			}
			return fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:*", r.env.partition, r.env.region, r.env.account, name), nil
		}
		return nil, fmt.Errorf("Fn::GetAtt %s.%s of a %v does not resolve here", id, attr, res["Type"])
	case "Fn::GetStackOutput":
		a, ok := arg.(map[string]interface{})
		if !ok || r.stackOutput == nil {
			return nil, fmt.Errorf("Fn::GetStackOutput %v", arg)
		}
		var s [3]string
		for i, k := range []string{"StackName", "Region", "OutputName"} {
			v, err := r.resolveString(a[k])
			if err != nil {
				return nil, fmt.Errorf("Fn::GetStackOutput %s: %v", k, err)
			}
			s[i] = v
		}
		return r.stackOutput(s[0], s[1], s[2])
	}
	return nil, fmt.Errorf("%s does not resolve here", fn)
}

// deployment is an assembly as deployed: its stacks, and the key policies
// of every key it creates or edits, by key ARN.
type deployment struct {
	name   string
	a      *Assembly
	stacks []stackArtifact
	keys   map[string]keyPolicy
}

type keyPolicy struct {
	policy interface{}
	err    error // the policy could not be read; an error only for a key a case uses
}

// defaultKeyPolicy is the policy KMS gives a key created through its API
// without one: the account root, which delegates to IAM
// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
// The evaluation assumes it for a key imported by ARN, whose policy the
// assembly only adds statements to.
func defaultKeyPolicy(account string) map[string]interface{} {
	return map[string]interface{}{"Version": "2012-10-17", "Statement": []interface{}{
		map[string]interface{}{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": map[string]interface{}{"AWS": "arn:aws:iam::" + account + ":root"}, "Action": "kms:*", "Resource": "*"},
	}}
}

// newDeployment reads an assembly's stacks from its manifests.
func newDeployment(t testing.TB, name string, a *Assembly) *deployment {
	t.Helper()
	stacks, err := assemblyStacks(a)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return deploymentOf(t, name, a, stacks)
}

// deploymentOf reads the key policies of an assembly's stacks.
func deploymentOf(t testing.TB, name string, a *Assembly, stacks []stackArtifact) *deployment {
	t.Helper()
	d := &deployment{name: name, a: a, stacks: stacks, keys: map[string]keyPolicy{}}
	for _, s := range stacks {
		if a.Templates[s.key] == nil {
			t.Fatalf("%s: no template for stack %s", name, s.key)
		}
	}
	// Keys the assembly creates, then the statements it writes into keys
	// it imports.
	added := map[string][]interface{}{}
	for _, s := range stacks {
		r := d.resolver(s.key, s.env, a.Templates[s.key])
		for id, key := range Resources(a.Templates[s.key], "AWS::KMS::Key") {
			policy, err := r.resolve(key["Properties"].(map[string]interface{})["KeyPolicy"])
			d.keys[keyArnFor(s.env, s.key, id)] = keyPolicy{policy, err}
		}
		for id, res := range Resources(a.Templates[s.key], "Custom::KmsKeyPolicyStatements") {
			props := res["Properties"].(map[string]interface{})
			arn, err := r.resolveString(props["KeyArn"])
			if err != nil {
				t.Fatalf("%s: %s %s KeyArn: %v", name, s.key, id, err)
			}
			body, err := r.resolveString(props["Statements"])
			if err != nil {
				t.Fatalf("%s: %s %s Statements: %v", name, s.key, id, err)
			}
			var stmts interface{}
			if err := json.Unmarshal([]byte(body), &stmts); err != nil {
				t.Fatalf("%s: %s %s Statements %q: %v", name, s.key, id, body, err)
			}
			if one, ok := stmts.(map[string]interface{}); ok {
				stmts = []interface{}{one}
			}
			added[arn] = append(added[arn], stmts.([]interface{})...)
		}
	}
	for arn, stmts := range added {
		if _, own := d.keys[arn]; own {
			t.Fatalf("%s: a Custom::KmsKeyPolicyStatements edits the policy of %s, a key of the app", name, arn)
		}
		p := defaultKeyPolicy(strings.Split(arn, ":")[4])
		p["Statement"] = append(p["Statement"].([]interface{}), stmts...)
		d.keys[arn] = keyPolicy{policy: p}
	}
	return d
}

func (d *deployment) resolver(stack string, env deployEnv, tmpl map[string]interface{}) *resolver {
	return &resolver{stack: stack, env: env, tmpl: tmpl, stackOutput: d.stackOutput}
}

func (d *deployment) stackOutput(stackName, region, output string) (interface{}, error) {
	for _, s := range d.stacks {
		if s.stackName != stackName || s.env.region != region {
			continue
		}
		tmpl := d.a.Templates[s.key]
		out, ok := tmpl["Outputs"].(map[string]interface{})[output].(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("stack %s has no output %s", stackName, output)
		}
		return d.resolver(s.key, s.env, tmpl).resolve(out["Value"])
	}
	return nil, fmt.Errorf("no stack %s in %s", stackName, region)
}

// keyPolicyOf is the policy of the key with this ARN, as the assembly
// leaves it.
func (d *deployment) keyPolicyOf(arn string) (interface{}, error) {
	k, ok := d.keys[arn]
	if !ok {
		return nil, fmt.Errorf("the assembly neither creates the key %s nor edits its policy", arn)
	}
	return k.policy, k.err
}

// deployedGrant is a Custom::KmsGrant as deployed in env: the grant its
// handler creates, the handler's role and that role's identity policies.
type deployedGrant struct {
	where      string // "<stack>/<logical id> in <account>/<region>"
	env        deployEnv
	keyArn     string
	grantee    string
	retiring   string
	operations []string
	handler    string // the handler role's ARN
	identity   []policyeval.Policy
}

// grantsIn reads every Custom::KmsGrant of a template deployed in env.
func (d *deployment) grantsIn(t testing.TB, stack string, env deployEnv, tmpl map[string]interface{}) []deployedGrant {
	t.Helper()
	r := d.resolver(stack, env, tmpl)
	var out []deployedGrant
	for _, id := range keys(Resources(tmpl, grantspec.ResourceType)) {
		res := Resources(tmpl, grantspec.ResourceType)[id]
		where := fmt.Sprintf("%s/%s in %s/%s", stack, id, env.account, env.region)
		props := res["Properties"].(map[string]interface{})
		g := deployedGrant{where: where, env: env}
		var err error
		for _, f := range []struct {
			prop string
			dst  *string
		}{{grantspec.PropKeyArn, &g.keyArn}, {grantspec.PropGranteePrincipal, &g.grantee}, {grantspec.PropRetiringPrincipal, &g.retiring}} {
			if *f.dst, err = r.resolveString(props[f.prop]); err != nil {
				t.Fatalf("%s: %s: %v", where, f.prop, err)
			}
		}
		ops, err := r.resolve(props[grantspec.PropOperations])
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		g.operations = strs(ops)

		// The handler: the function of the ServiceToken, and its role.
		fnID, err := getAttID(props["ServiceToken"], "Arn")
		if err != nil {
			t.Fatalf("%s: ServiceToken: %v", where, err)
		}
		fn, err := r.resource(fnID)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		// The function names its role by Fn::GetAtt or, for a role of a
		// fixed name, by its ARN: either way the role is one of the
		// template's, whose ARN resolves to the same.
		if g.handler, err = r.resolveString(fn["Properties"].(map[string]interface{})["Role"]); err != nil {
			t.Fatalf("%s: the handler function's Role: %v", where, err)
		}
		roleID := ""
		for _, id := range keys(Resources(tmpl, "AWS::IAM::Role")) {
			if arn, err := r.resolveString(map[string]interface{}{"Fn::GetAtt": []interface{}{id, "Arn"}}); err == nil && arn == g.handler {
				roleID = id
			}
		}
		if roleID == "" {
			t.Fatalf("%s: the handler role %s is not a role of the template: its identity policies cannot be read", where, g.handler)
		}
		g.identity = d.roleIdentityPolicies(t, where, r, roleID)
		out = append(out, g)
	}
	return out
}

// getAttID is the logical id of {"Fn::GetAtt": [id, attr]}.
func getAttID(v interface{}, attr string) (string, error) {
	m, _ := v.(map[string]interface{})
	a, _ := m["Fn::GetAtt"].([]interface{})
	if len(a) != 2 || a[1] != attr {
		return "", fmt.Errorf("%v is not a Fn::GetAtt of %s", v, attr)
	}
	id, _ := a[0].(string)
	return id, nil
}

// roleIdentityPolicies are every identity policy of a role: its inline
// Policies and each AWS::IAM::Policy or AWS::IAM::ManagedPolicy of the
// template attached to it. A managed policy ARN (whose document is not in
// the template) fails the test: the evaluation would miss its statements.
func (d *deployment) roleIdentityPolicies(t testing.TB, where string, r *resolver, roleID string) []policyeval.Policy {
	t.Helper()
	role, err := r.resource(roleID)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	props := role["Properties"].(map[string]interface{})
	if arns, ok := props["ManagedPolicyArns"]; ok {
		t.Fatalf("%s: the handler role %s has managed policies %v, whose documents the template does not hold", where, roleID, arns)
	}
	var out []policyeval.Policy
	add := func(name string, doc interface{}) {
		resolved, err := r.resolve(doc)
		if err != nil {
			t.Fatalf("%s: policy %s of the handler role: %v", where, name, err)
		}
		out = append(out, policyeval.Policy{Name: name, Document: resolved})
	}
	if inline, ok := props["Policies"].([]interface{}); ok {
		for _, p := range inline {
			p := p.(map[string]interface{})
			add(fmt.Sprint(p["PolicyName"]), p["PolicyDocument"])
		}
	}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		res := Resources(r.tmpl, typ)
		for _, id := range keys(res) {
			pp := res[id]["Properties"].(map[string]interface{})
			roles, _ := pp["Roles"].([]interface{})
			if slices.ContainsFunc(roles, func(x interface{}) bool {
				m, _ := x.(map[string]interface{})
				return m["Ref"] == roleID
			}) {
				add(id, pp["PolicyDocument"])
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: the handler role %s has no identity policy", where, roleID)
	}
	return out
}

// stackSets lists the StackSet templates of the assembly with the regions
// each deploys to.
func (d *deployment) stackSets(t testing.TB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for key, tmpl := range d.a.Templates {
		for id, r := range Resources(tmpl, "AWS::CloudFormation::StackSet") {
			groups, _ := r["Properties"].(map[string]interface{})["StackInstancesGroup"].([]interface{})
			var regions []string
			for _, g := range groups {
				regions = append(regions, strs(g.(map[string]interface{})["Regions"])...)
			}
			if len(regions) == 0 {
				t.Fatalf("%s: StackSet %s.%s has no literal Regions", d.name, key, id)
			}
			out[key+"."+id] = regions
		}
	}
	return out
}

// TestResolveIntrinsics: the reader resolves what the templates use (pseudo
// parameters, Fn::Join, Fn::FindInMap, a role's and a key's Arn, another
// stack's output) to the values CloudFormation would give, and refuses
// what it does not know.
func TestResolveIntrinsics(t *testing.T) {
	producer := map[string]interface{}{
		"Resources": map[string]interface{}{"Key": map[string]interface{}{"Type": "AWS::KMS::Key"}},
		"Outputs":   map[string]interface{}{"KeyArnOut": map[string]interface{}{"Value": map[string]interface{}{"Fn::GetAtt": []interface{}{"Key", "Arn"}}}},
	}
	consumer := map[string]interface{}{
		"Mappings": map[string]interface{}{"Keys": map[string]interface{}{"eu-west-1": map[string]interface{}{"Arn": "arn:aws:kms:eu-west-1:111111111111:key/k"}}},
		"Resources": map[string]interface{}{
			"Role": map[string]interface{}{"Type": "AWS::IAM::Role", "Properties": map[string]interface{}{
				"Path": "/crossaccountami/", "RoleName": map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{"GrantHandler-", map[string]interface{}{"Ref": "AWS::Region"}, "-x"}}}}},
			"Bucket": map[string]interface{}{"Type": "AWS::S3::Bucket"},
		},
	}
	a := &Assembly{Templates: map[string]map[string]interface{}{"Producer": producer, "Consumer": consumer}}
	d := &deployment{a: a, stacks: []stackArtifact{{key: "Producer", stackName: "ProducerStack", env: deployEnv{"aws", "111111111111", "eu-west-1", "ProducerStack"}}}}
	r := d.resolver("Consumer", deployEnv{"aws", "222222222222", "eu-west-1", "ConsumerStack"}, consumer)
	join := func(parts ...interface{}) interface{} {
		return map[string]interface{}{"Fn::Join": []interface{}{"", parts}}
	}
	keyArn := keyArnFor(deployEnv{"aws", "111111111111", "eu-west-1", "ProducerStack"}, "Producer", "Key")
	if !strings.HasPrefix(keyArn, "arn:aws:kms:eu-west-1:111111111111:key/") {
		t.Fatalf("key ARN %s", keyArn)
	}
	for _, tc := range []struct {
		in   interface{}
		want string
	}{
		{join("arn:", map[string]interface{}{"Ref": "AWS::Partition"}, ":iam::", map[string]interface{}{"Ref": "AWS::AccountId"}, ":root"), "arn:aws:iam::222222222222:root"},
		{map[string]interface{}{"Fn::FindInMap": []interface{}{"Keys", map[string]interface{}{"Ref": "AWS::Region"}, "Arn"}}, "arn:aws:kms:eu-west-1:111111111111:key/k"},
		{map[string]interface{}{"Fn::GetAtt": []interface{}{"Role", "Arn"}}, "arn:aws:iam::222222222222:role/crossaccountami/GrantHandler-eu-west-1-x"},
		{map[string]interface{}{"Fn::GetStackOutput": map[string]interface{}{"StackName": "ProducerStack", "Region": "eu-west-1", "OutputName": "KeyArnOut", "RoleArn": "arn:aws:iam::111111111111:role/r"}}, keyArn},
	} {
		got, err := r.resolveString(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("resolve %v = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []interface{}{
		map[string]interface{}{"Ref": "Bucket"},
		map[string]interface{}{"Fn::GetAtt": []interface{}{"Bucket", "Arn"}},
		map[string]interface{}{"Fn::Sub": "${AWS::Region}"},
		map[string]interface{}{"Fn::GetStackOutput": map[string]interface{}{"StackName": "Other", "Region": "eu-west-1", "OutputName": "KeyArnOut"}},
		map[string]interface{}{"Fn::FindInMap": []interface{}{"Keys", "us-east-1", "Arn"}},
	} {
		if got, err := r.resolve(bad); err == nil {
			t.Errorf("resolve %v = %v, want an error", bad, got)
		}
	}
}

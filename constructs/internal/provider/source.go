package provider

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/names"
)

// SourceID is the construct id of the source-side handler under its stack.
// Part of the API, like ID.
const SourceID = "CrossAccountAmiSourceHandler"

// Source is the per-stack handler of the source-side resources
// (Custom::KmsKeyPolicyStatements, Custom::AmiLaunchPermission), in the
// account that owns the key and the AMI.
type Source struct {
	*handler
	env *StackEnv
}

// SourceOf returns the source handler of scope's stack, creating it on first use.
func SourceOf(scope constructs.IConstruct) *Source {
	return registry.Get(scope, "source-provider", newSource)
}

func newSource(stack awscdk.Stack) *Source {
	env := EnvOf(stack)
	h := newHandler(env, handlerSpec{
		id:       SourceID,
		roleName: env.SourceRoleName(), rolePath: names.SourceHandlerRolePath,
		roleDescription: "Manages crossaccountami statements in key policies and AMI launch permissions",
		description:     "crossaccountami: key policy statements and AMI sharing in the source account",
		pkg:             handlerbuild.SourceHandler,
	})
	return &Source{handler: h, env: env}
}

// SourceRoleName is the deterministic name of the source handler role of a
// stack, so that a key policy that does not delegate to IAM can name it.
func (e *StackEnv) SourceRoleName() string { return e.roleName(names.SourceHandlerRolePrefix) }

// RoleArn is the ARN of the source handler role (with a concrete stack env).
func (s *Source) RoleArn() (string, error) {
	if !s.env.Concrete {
		return "", fmt.Errorf("stack %s has no concrete account and region", s.env.Path)
	}
	return awsid.RoleARN(s.env.Partition, s.env.Account, names.SourceHandlerRolePath, s.env.SourceRoleName()), nil
}

// AllowKeyPolicyOn lets the handler read and write the policy of the key of
// one resource, in a policy of the resource's own (see resourcePolicy).
func (s *Source) AllowKeyPolicyOn(scope constructs.Construct, resource awscdk.CustomResource, keyArn *string) {
	s.resourcePolicy(scope, resource, []interface{}{map[string]interface{}{
		"Action": []interface{}{"kms:GetKeyPolicy", "kms:PutKeyPolicy"}, "Effect": "Allow", "Resource": *keyArn,
	}})
}

// AllowImageSharing lets the handler of one sharing resource read images
// and snapshots of its account and change their launch and create-volume
// permissions, and tell an AWS managed key from a customer managed one, in
// a policy of the resource's own (see resourcePolicy).
func (s *Source) AllowImageSharing(scope constructs.Construct, resource awscdk.CustomResource) {
	p, a, r := s.env.Partition, s.env.Account, s.env.Region
	images, snapshots := fmt.Sprintf("arn:%s:ec2:%s::image/*", p, r), fmt.Sprintf("arn:%s:ec2:%s::snapshot/*", p, r)
	keys := fmt.Sprintf("arn:%s:kms:%s:%s:key/*", p, r, a)
	policy := s.resourcePolicy(scope, resource, []interface{}{
		// Describe* take no resource-level permissions.
		map[string]interface{}{"Action": []interface{}{"ec2:DescribeImages", "ec2:DescribeSnapshots"}, "Effect": "Allow", "Resource": "*"},
		map[string]interface{}{"Action": []interface{}{"ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"}, "Effect": "Allow", "Resource": []interface{}{images, snapshots}},
		map[string]interface{}{"Action": "kms:DescribeKey", "Effect": "Allow", "Resource": keys},
	})
	// Each suppression names the one wildcard it covers.
	nagsuppress.Set(policy,
		nagsuppress.Rule("AwsSolutions-IAM5",
			"ec2:DescribeImages and ec2:DescribeSnapshots only: these read-only actions support no resource-level permissions, "+
				"so IAM requires Resource *. The handler reads the shared AMI's snapshots and their keys with them",
			"Resource::*"),
		nagsuppress.Rule("AwsSolutions-IAM5",
			"ec2:ModifyImageAttribute and ec2:ModifySnapshotAttribute, in this region; EC2 lets an account modify only the images and snapshots it owns, "+
				"so the reach is this account's. Snapshot ids are known only at deploy time (the handler reads them from the AMI). "+
				"The image is not narrowed to ImageId on purpose: when the AMI is replaced, the handler must still remove the old AMI's launch permissions",
			"Resource::"+images, "Resource::"+snapshots),
		nagsuppress.Rule("AwsSolutions-IAM5",
			"kms:DescribeKey only (key metadata, no key material, no policy), on this account's keys in this region: the handler tells an "+
				"AWS managed key (aws/ebs, which no other account can use) from a customer managed one for the snapshots' keys, known only at deploy time",
			"Resource::"+keys))
}

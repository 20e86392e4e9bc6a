package provider

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/internal/registry"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
	"github.com/crossaccountami/crossaccountami/internal/amipolicy"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
)

// copyDescribeNeed lets the handler look copies up (NeedCopyDescribe).
func copyDescribeNeed() policyNeed {
	return policyNeed{
		statement: amipolicy.CopierDescribeStatement(),
		suppression: nagsuppress.Rule("AwsSolutions-IAM5",
			"ec2:DescribeImages and ec2:DescribeSnapshots only: the copy handler looks up the copies and snapshots it made by their tags; "+
				"EC2's Describe actions support no resource-level permissions, so IAM requires Resource *, and they reveal no data, only metadata",
			"Resource::*"),
	}
}

// CopyResource creates, under scope with the id "Resource", a
// Custom::CrossAccountAmiCopy with props, which CloudFormation waits for up
// to serviceTimeout seconds (copyspec.MaxServiceTimeout at most: a copy can
// outlast one Lambda run, and the handler hands it over to itself), and
// gives the handler's role what the copy needs in two policies the
// resource depends on: CloudFormation deletes the resource, and so the
// copy, before the permissions that remove it.
//   - The stack's copier policy (amipolicy.CopierSharedStatements), one for
//     every copy of the stack: CopyImage, CreateTags while copying, the
//     removals pinned to the stack's tag, the self-invoke. One per copy
//     would repeat them for each copy, and IAM caps a role's inline
//     policies at 10,240 characters in all (roleSizeCheck): about 5 copies
//     with a destination key each would fit, against about 10 now.
//   - A policy of the resource's own with its keys' statements
//     (amipolicy.CopierKeyStatements): destinationKeyArn is "" for the
//     account's aws/ebs key; sourceKeyArn is the source AMI's key, which
//     the role's IAM policy must allow as well as the key's policy.
//
// The self-invoke permission names the function, which depends on the
// role's own policy: in that policy it would make a cycle, in the copier
// policy (which nothing of the function depends on) it does not.
func (p *Provider) CopyResource(scope constructs.Construct, props copyspec.Properties, serviceTimeout int, sourceKeyArn, destinationKeyArn string) awscdk.CustomResource {
	p.allow(NeedCopyDescribe)
	raw := props.CfnProperties()
	cr := awscdk.NewCustomResource(scope, jsii.String("Resource"), &awscdk.CustomResourceProps{
		ResourceType:   jsii.String(copyspec.ResourceType),
		ServiceToken:   p.ServiceToken,
		ServiceTimeout: awscdk.Duration_Seconds(jsii.Number(float64(serviceTimeout))),
		Properties:     &raw,
	})
	p.noteKeyArn(sourceKeyArn)
	p.noteKeyArn(destinationKeyArn)
	statements := amipolicy.CopierKeyStatements(sourceKeyArn, destinationKeyArn)
	list := make([]interface{}, len(statements))
	for i, s := range statements {
		list[i] = s
	}
	shared := p.sharedCopierPolicy()
	p.copyPolicyAt = append(p.copyPolicyAt, len(p.inline))
	p.copies++
	// One call: the copy's own policy, the shared one, the invoke config.
	p.resourcePolicy(scope, cr, list, shared, p.invokeConfig)
	return cr
}

// sharedCopierPolicy is the stack's copier policy, created with the first
// copy under the handler's construct (CopierPolicy/Resource).
func (p *Provider) sharedCopierPolicy() awsiam.CfnPolicy {
	if p.copierPolicy != nil {
		return p.copierPolicy
	}
	statements := amipolicy.CopierSharedStatements(amipolicy.Copier{
		Partition: p.env.Partition, Region: p.env.Region, StackId: *awscdk.Aws_STACK_ID(), FunctionArn: *p.ServiceToken,
	})
	list := make([]interface{}, len(statements))
	for i, s := range statements {
		list[i] = s
	}
	p.copierPolicyAt = len(p.inline)
	p.copierPolicy = p.inlinePolicy(registry.Child(p.scope, "CopierPolicy"), list)
	nagsuppress.Set(p.copierPolicy, nagsuppress.Rule("AwsSolutions-IAM5",
		"ec2:CopyImage, and ec2:CreateTags only while CopyImage creates the copy (ec2:CreateAction = CopyImage), on the images and snapshots of this region: "+
			"the source AMI, its snapshots and the copy, whose ids EC2 chooses at deploy time; ec2:DeregisterImage and ec2:DeleteSnapshot only on those tagged with this stack's id "+
			"(aws:ResourceTag/"+copyspec.TagStackId+" = AWS::StackId), which the handler writes on its copies as it makes them",
		nagsuppress.Regex(`/^Resource::arn:[^:]+:ec2:[^:]+::(image|snapshot)\/\*$/`)))
	return p.copierPolicy
}

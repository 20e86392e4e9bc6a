package amipolicy

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/copyspec"
)

// Copy and re-encrypt (Custom::CrossAccountAmiCopy, constructs/amicopy):
// the destination's copier role calls ec2:CopyImage on an AMI the source
// shared, and EBS re-encrypts the snapshots from the source key to a key of
// the destination. This file writes what that needs: the source key's
// policy statements for the copier (CopySourceStatements), the copier
// role's own IAM statements (CopierSharedStatements, once per stack, and
// CopierKeyStatements, per copy), and the destination
// key's policy statements for the destination's launchers
// (LauncherKeyStatements).

// CopySourceReadActions are what the copier role may do on the source key,
// besides the grant for EBS (CopySourceStatements). EBS lists, for "users
// of your shared customer managed key who are accessing encrypted
// snapshots", kms:DescribeKey, kms:CreateGrant, kms:GenerateDataKey,
// kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt and kms:Decrypt
// ("Share the KMS key used to encrypt a shared Amazon EBS snapshot",
// https://docs.aws.amazon.com/ebs/latest/userguide/share-kms-key.html).
// A copy only reads under the source key, so of that list it gets:
//   - kms:DescribeKey: EBS checks the key the snapshot is encrypted with;
//   - kms:Decrypt: the snapshot's data key is decrypted under the source key;
//   - kms:ReEncryptFrom: the snapshot's data key moves from the source key
//     to the destination key (the "from" half of kms:ReEncrypt*; the "to"
//     half, ReEncryptTo, is on the destination key).
//
// Left out: kms:GenerateDataKey* and kms:ReEncryptTo, which would let the
// role encrypt new data under the source key; a copy to another key writes
// under the destination key only. The reasons are our reading of what EBS
// does: the page gives the list, not why each entry is there, nor which of
// them a copy to another key needs (README, "What AWS documentation does
// not settle").
var CopySourceReadActions = []string{"kms:DescribeKey", "kms:Decrypt", "kms:ReEncryptFrom"}

// CopySource is the destination whose copier role reads a source key.
type CopySource struct {
	Partition string
	// Account is the destination account (the copier role's).
	Account string
	// CopierArn is the role that calls ec2:CopyImage (the destination's
	// handler role, whose name is fixed so that the key policy can name it
	// before it exists).
	CopierArn string
}

// CopySourceStatements are the source key policy statements that let
// exactly the copier role read the snapshots of an AMI it copies, in the
// SCOPED style: the destination account as principal and the role pinned
// with aws:PrincipalArn, so the policy is valid before the role exists
// (KMS rejects a key policy that names a principal that does not exist).
//
//   - The read statement allows CopySourceReadActions.
//   - The grant statement allows kms:CreateGrant only with
//     kms:GrantIsForAWSResource true: EBS, the grantee, makes a grant on the
//     source key for the copy's duration, and the condition lets the role
//     create a grant only when an AWS service integrated with KMS asks for
//     it on the role's behalf, never one for itself or another principal
//     (EBS's tip on the page above;
//     https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource).
//     Unlike the grant statements of Statements, nothing here grants to
//     the Auto Scaling service-linked role: with a copy the launchers
//     never touch the source key.
//
// The Sids name the copier role: two destinations on one key get
// statements of their own; two copies of one destination share them.
func CopySourceStatements(c CopySource) []Statement {
	root := aws(awsid.AccountRootARN(c.Partition, c.Account))
	pinned := map[string]interface{}{"aws:PrincipalArn": c.CopierArn}
	return []Statement{
		{
			Sid: fmt.Sprintf("Allow %s to read the snapshots of an AMI it copies", c.CopierArn), Effect: "Allow",
			Principal: root, Action: CopySourceReadActions, Resource: "*",
			Condition: map[string]map[string]interface{}{"StringEquals": pinned},
		},
		{
			Sid: fmt.Sprintf("Allow %s to let EBS read the snapshots of an AMI it copies", c.CopierArn), Effect: "Allow",
			Principal: root, Action: []string{"kms:CreateGrant"}, Resource: "*",
			Condition: map[string]map[string]interface{}{
				"StringEquals": pinned,
				"Bool":         {"kms:GrantIsForAWSResource": "true"},
			},
		},
	}
}

// CopyDestinationKeyActions are what the copier role may do on the
// destination key (a key of its own account, through its IAM policy),
// besides kms:CreateGrant with kms:GrantIsForAWSResource. The same EBS list
// read for the key the copy is written with (our reading; no page lists the
// destination key's permissions for CopyImage separately):
// kms:DescribeKey (EBS checks the key), kms:GenerateDataKeyWithoutPlaintext
// (a new data key for each snapshot of the copy), kms:ReEncryptTo (the data
// key arrives from the source key) and kms:Decrypt.
var CopyDestinationKeyActions = []string{"kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptTo", "kms:Decrypt"}

// Copier is the copier role's side of every copy of one stack, in the
// destination account: what its own IAM policy needs whatever the copy.
type Copier struct {
	Partition, Region string
	// StackId is the stack's id (a literal or ${AWS::StackId}): the role
	// may remove only images and snapshots tagged with it.
	StackId string
	// FunctionArn is the handler function: the role may invoke it, to hand
	// a copy that outlasts one invocation over to the next.
	FunctionArn string
}

// CopierSharedStatements are the copier role's own IAM statements that
// every copy of a stack needs alike (docs/copy-design.md, "IAM
// permissions"), placed once per stack:
//   - ec2:CopyImage on the images and snapshots of the region (the source
//     AMI and its snapshots, since October 2024 named in Resource, and the
//     new AMI), and ec2:CreateTags on them only while CopyImage creates
//     them (ec2:CreateAction = CopyImage: the tags of TagSpecifications,
//     which EC2 authorizes as ec2:CreateTags; the role cannot tag an
//     existing image). "Grant permissions to copy Amazon EC2 AMIs",
//     https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/copy-ami-permissions.html;
//     ec2:CreateAction is a condition key of ec2:CreateTags in the Service
//     Authorization Reference
//     (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
//   - ec2:DeregisterImage and ec2:DeleteSnapshot only on resources tagged
//     with this stack's id, so that not even a bug of the handler removes
//     an image of another stack: the Service Authorization Reference lists
//     aws:ResourceTag/${TagKey} for both actions' resource types (image,
//     snapshot; same page).
//   - lambda:InvokeFunction on the function itself (the hand-over).
//
// ec2:DescribeImages and ec2:DescribeSnapshots are CopierDescribeStatement:
// they take no resource, so they sit in the role's own policy once. What
// differs per copy (its keys) is CopierKeyStatements.
func CopierSharedStatements(c Copier) []map[string]interface{} {
	resources := []interface{}{
		fmt.Sprintf("arn:%s:ec2:%s::image/*", c.Partition, c.Region),
		fmt.Sprintf("arn:%s:ec2:%s::snapshot/*", c.Partition, c.Region),
	}
	return []map[string]interface{}{
		{"Action": "ec2:CopyImage", "Effect": "Allow", "Resource": resources},
		{"Action": "ec2:CreateTags", "Effect": "Allow", "Resource": resources,
			"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{"ec2:CreateAction": "CopyImage"}}},
		{"Action": []interface{}{"ec2:DeregisterImage", "ec2:DeleteSnapshot"}, "Effect": "Allow", "Resource": resources,
			"Condition": map[string]interface{}{"StringEquals": map[string]interface{}{"aws:ResourceTag/" + copyspec.TagStackId: c.StackId}}},
		{"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": c.FunctionArn},
	}
}

// CopierKeyStatements are the copier role's own IAM statements for one
// copy, on its keys:
//   - on the source key (sourceKeyArn, the key of the source AMI's
//     snapshots, in another account), the IAM half of
//     CopySourceStatements: CopySourceReadActions, and kms:CreateGrant only
//     with kms:GrantIsForAWSResource. KMS lets a principal of another
//     account use a key only when both the key policy and the principal's
//     own IAM policy allow it
//     (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html);
//   - on the destination key (destinationKeyArn, the key the copy is
//     encrypted with), CopyDestinationKeyActions and kms:CreateGrant only
//     with kms:GrantIsForAWSResource; none when destinationKeyArn is "",
//     the account's default EBS key (aws/ebs), whose AWS managed policy
//     lets the account's principals use it through EBS already.
func CopierKeyStatements(sourceKeyArn, destinationKeyArn string) []map[string]interface{} {
	out := keyStatements(sourceKeyArn, CopySourceReadActions)
	if destinationKeyArn != "" {
		out = append(out, keyStatements(destinationKeyArn, CopyDestinationKeyActions)...)
	}
	return out
}

// keyStatements allow actions on key, and kms:CreateGrant on it only for
// an AWS resource (EBS's grant).
func keyStatements(key string, actions []string) []map[string]interface{} {
	list := make([]interface{}, len(actions))
	for i, a := range actions {
		list[i] = a
	}
	return []map[string]interface{}{
		{"Action": list, "Effect": "Allow", "Resource": key},
		{"Action": "kms:CreateGrant", "Effect": "Allow", "Resource": key,
			"Condition": map[string]interface{}{"Bool": map[string]interface{}{"kms:GrantIsForAWSResource": "true"}}},
	}
}

// CopierDescribeStatement lets the copier look copies up: EC2's Describe
// actions take no resource-level permissions, so Resource is "*".
func CopierDescribeStatement() map[string]interface{} {
	return map[string]interface{}{"Action": []interface{}{"ec2:DescribeImages", "ec2:DescribeSnapshots"}, "Effect": "Allow", "Resource": "*"}
}

// LauncherKeyStatements are the destination key's policy statements for
// the launchers of its own account (the grantees: service-linked roles or
// roles): use of the key, and kms:CreateGrant only with
// kms:GrantIsForAWSResource, which is right here because the launcher and
// the key share an account and EC2 creates the grant for the instance's
// volumes. That is example 1 of "Required AWS KMS key policy for use with
// encrypted volumes" (Amazon EC2 Auto Scaling User Guide,
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html),
// with the account as principal and the roles pinned by aws:PrincipalArn,
// so that the policy is valid before a service-linked role exists.
func LauncherKeyStatements(partition, account string, grantees []string) []Statement {
	root := aws(awsid.AccountRootARN(partition, account))
	pinned := map[string]interface{}{"aws:PrincipalArn": oneOrList(grantees)}
	return []Statement{
		{Sid: "Allow use of the key by the launchers of " + account, Effect: "Allow", Principal: root, Action: UseActions, Resource: "*",
			Condition: map[string]map[string]interface{}{"StringEquals": pinned}},
		{Sid: "Allow attachment of persistent resources by the launchers of " + account, Effect: "Allow", Principal: root, Action: []string{"kms:CreateGrant"}, Resource: "*",
			Condition: map[string]map[string]interface{}{"StringEquals": pinned, "Bool": {"kms:GrantIsForAWSResource": "true"}}},
	}
}

// CopierScope is who CopySourcePatternStatements let copy: the copier
// roles (matched by CopierPattern) of listed Accounts, or of every account
// of an organization (OrganizationID), the two styles that name no
// destination role (ACCOUNTS, ORGANIZATION). Exactly one of Accounts and
// OrganizationID is set.
type CopierScope struct {
	// Name tells the statements apart from other scopes on the same key
	// (the construct's id): it is part of the Sids.
	Name      string
	Partition string
	Accounts  []string
	// OrganizationID is o-…: aws:PrincipalOrgID.
	OrganizationID string
	// CopierPattern is an ArnLike pattern (account "*") that matches every
	// copier role: the destination handler roles, under their path.
	CopierPattern string
}

// Validate checks the scope, naming the field and the value received.
func (s CopierScope) Validate() error {
	switch {
	case len(s.Accounts) > 0 && s.OrganizationID != "":
		return fmt.Errorf("Accounts and OrganizationId: give one, got both (%d accounts and %q)", len(s.Accounts), s.OrganizationID)
	case len(s.Accounts) == 0 && s.OrganizationID == "":
		return fmt.Errorf("Accounts or OrganizationId: one is required, got neither")
	case s.OrganizationID != "" && !orgIDRe.MatchString(s.OrganizationID):
		return fmt.Errorf("OrganizationId: expected o- and 10 to 32 lower-case letters or digits, got %q", s.OrganizationID)
	}
	seen := map[string]int{}
	for i, a := range s.Accounts {
		if err := awsid.ValidateAccount(a); err != nil {
			return fmt.Errorf("Accounts[%d]: %v", i, err)
		}
		if j, dup := seen[a]; dup {
			return fmt.Errorf("Accounts[%d]: %q is listed twice (Accounts[%d] too)", i, a, j)
		}
		seen[a] = i
	}
	return nil
}

var orgIDRe = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)

// CopySourcePatternStatements are CopySourceStatements for every copier
// of the scope, with statements of one size however many destinations
// copy: the principal is the listed accounts (bare ids, which IAM treats as
// the accounts' ARNs) or everyone with aws:PrincipalOrgID, and ArnLike
// aws:PrincipalArn picks the copier roles. The same actions: reads, and
// kms:CreateGrant only with kms:GrantIsForAWSResource. An administrator of
// a covered account can create a role under the copiers' path, as in the
// ACCOUNTS and ORGANIZATION styles of the grant (SECURITY.md).
func CopySourcePatternStatements(s CopierScope) []Statement {
	principal := map[string]interface{}{"AWS": "*"}
	cond := map[string]map[string]interface{}{"ArnLike": {"aws:PrincipalArn": s.CopierPattern}}
	if s.OrganizationID != "" {
		cond["StringEquals"] = map[string]interface{}{"aws:PrincipalOrgID": s.OrganizationID}
	} else {
		accounts := slices.Clone(s.Accounts)
		slices.Sort(accounts)
		principal = map[string]interface{}{"AWS": oneOrList(accounts)}
	}
	grantCond := map[string]map[string]interface{}{"Bool": {"kms:GrantIsForAWSResource": "true"}}
	for k, v := range cond {
		grantCond[k] = v
	}
	return []Statement{
		{Sid: "Allow the copiers of " + s.Name + " to read the snapshots of the AMIs they copy", Effect: "Allow",
			Principal: principal, Action: CopySourceReadActions, Resource: "*", Condition: cond},
		{Sid: "Allow the copiers of " + s.Name + " to let EBS read the snapshots of the AMIs they copy", Effect: "Allow",
			Principal: principal, Action: []string{"kms:CreateGrant"}, Resource: "*", Condition: grantCond},
	}
}

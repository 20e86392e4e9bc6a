// Command eks is an example app: a source account that owns an encrypted
// AMI's KMS key, and a destination account whose EKS managed node group
// (of an existing cluster) launches that AMI.
//
//	npx cdk synth                                   # placeholder accounts and cluster
//	npx cdk deploy --all -c sourceAccount=... -c destinationAccount=... \
//	    -c clusterName=... -c clusterEndpoint=... -c clusterCertificateAuthority=... \
//	    -c serviceCidr=... -c subnetIds=subnet-...,subnet-... -c nodeRoleArn=...
//
// The node group's Auto Scaling group is created by EKS and launches with
// the account's default AWSServiceRoleForAutoScaling (EKS sets no role of
// yours, so a custom-suffix role cannot be used): the construct grants that
// role with Launchers EKS_MANAGED_NODE_GROUP.
//
// The node group is the L1 awseks.CfnNodegroup of a cluster named by
// context: the L2 awseks.Cluster needs a kubectl Lambda layer (a separate
// package) to create a cluster, and this example adds a node group to a
// cluster you have. awseks.Nodegroup over awseks.Cluster_FromClusterAttributes
// works the same way, with ConfigureNodegroup.
//
// It uses only the library's public API: copy main.go into a module of your own.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseks"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/crossaccountami/crossaccountami/constructs/encryptedami"
	"github.com/crossaccountami/crossaccountami/constructs/nagsuppress"
)

func main() {
	defer jsii.Close()
	// A construct rejects a bad prop with a panic that names it: print it
	// as one line and exit 1 before any cloud assembly is written.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(os.Stderr, "synth failed:", r)
			jsii.Close() // os.Exit skips the deferred Close
			os.Exit(1)
		}
	}()
	app := awscdk.NewApp(nil)
	build(app)
	app.Synth(nil)
}

// build adds the source stack (AmiSource) and the destination stack
// (AmiNodegroup) to app.
func build(app awscdk.App) {
	region := context(app, "region", "us-east-1")
	destinationAccount := context(app, "destinationAccount", "222222222222")

	source := awscdk.NewStack(app, jsii.String("AmiSource"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(context(app, "sourceAccount", "111111111111")), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami EKS example: the source account's AMI key"),
	})
	key := awskms.NewKey(source, jsii.String("AmiKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the shared AMI's snapshots"),
		EnableKeyRotation: jsii.Bool(true),
	})
	// The destination reads the key ARN across accounts, through a role
	// CDK adds to this stack: say why cdk-nag's finding on it is accepted.
	nagsuppress.CrossAccountReference(source)

	destination := awscdk.NewStack(app, jsii.String("AmiNodegroup"), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(destinationAccount), Region: jsii.String(region)},
		Description: jsii.String("crossaccountami EKS example: a managed node group that launches the shared, encrypted AMI"),
	})
	// The grant for the default Auto Scaling role (created when missing),
	// and this destination's statements in the key's policy.
	ami := encryptedami.NewCrossAccountEncryptedAmi(destination, jsii.String("SharedAmi"), &encryptedami.CrossAccountEncryptedAmiProps{
		Key:       key,
		ImageId:   jsii.String(context(app, "imageId", "ami-0123456789abcdef0")),
		Launchers: &[]encryptedami.LauncherKind{encryptedami.LauncherKind_EKS_MANAGED_NODE_GROUP},
	})

	// With a custom AMI EKS adds no user data: the template's joins the
	// node to the cluster (nodeadm's NodeConfig, Amazon Linux 2023). It
	// has no IAM instance profile (the node group's NodeRole gives it), no
	// subnet and no shutdown behaviour: EKS refuses those in the template.
	launchTemplate := ami.NewLaunchTemplate(destination, jsii.String("NodeLaunchTemplate"), &encryptedami.LaunchTemplateProps{
		LaunchTemplate: &awsec2.LaunchTemplateProps{
			InstanceType:  awsec2.NewInstanceType(jsii.String("m7g.large")),
			RequireImdsv2: jsii.Bool(true),
			UserData:      awsec2.UserData_Custom(jsii.String(nodeConfig(app))),
		},
	})
	nodegroup := awseks.NewCfnNodegroup(destination, jsii.String("Nodegroup"), &awseks.CfnNodegroupProps{
		ClusterName: jsii.String(context(app, "clusterName", "shared")),
		NodeRole:    jsii.String(context(app, "nodeRoleArn", "arn:aws:iam::"+destinationAccount+":role/EksNodeRole")),
		Subnets:     toInterfaces(strings.Split(context(app, "subnetIds", "subnet-0123456789abcdef0,subnet-0123456789abcdef1"), ",")),
		ScalingConfig: &awseks.CfnNodegroup_ScalingConfigProperty{
			MinSize: jsii.Number(1), DesiredSize: jsii.Number(1), MaxSize: jsii.Number(2),
		},
		// No AmiType: the AMI is the launch template's.
		LaunchTemplate: &awseks.CfnNodegroup_LaunchTemplateSpecificationProperty{
			Id:      launchTemplate.LaunchTemplateId(),
			Version: launchTemplate.LatestVersionNumber(),
		},
	})
	// The node group waits for the service-linked role and the grant.
	ami.ConfigureCfnNodegroup(nodegroup)
}

// nodeConfig is the user data that joins a node to the cluster: a MIME
// multi-part document with nodeadm's NodeConfig.
func nodeConfig(scope constructs.IConstruct) string {
	return strings.Join([]string{
		`MIME-Version: 1.0`,
		`Content-Type: multipart/mixed; boundary="BOUNDARY"`,
		``,
		`--BOUNDARY`,
		`Content-Type: application/node.eks.aws`,
		``,
		`apiVersion: node.eks.aws/v1alpha1`,
		`kind: NodeConfig`,
		`spec:`,
		`  cluster:`,
		`    name: ` + context(scope, "clusterName", "shared"),
		`    apiServerEndpoint: ` + context(scope, "clusterEndpoint", "https://EXAMPLE0123456789.gr7.us-east-1.eks.amazonaws.com"),
		`    certificateAuthority: ` + context(scope, "clusterCertificateAuthority", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="),
		`    cidr: ` + context(scope, "serviceCidr", "10.100.0.0/16"),
		``,
		`--BOUNDARY--`,
		``,
	}, "\n")
}

// context reads a cdk context value (-c key=value, cdk.json) as a string,
// or def when it is not set.
func context(scope constructs.IConstruct, key, def string) string {
	if v, ok := scope.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}

func toInterfaces(values []string) *[]interface{} {
	out := make([]interface{}, len(values))
	for i, v := range values {
		out[i] = v
	}
	return &out
}

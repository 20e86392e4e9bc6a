package moto

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// LaunchPermissions lists who may launch an AMI, sorted: account ids,
// organization and OU ARNs, and the group ("all") of each permission.
func LaunchPermissions(t testing.TB, client *ec2.Client, imageID string) []string {
	t.Helper()
	out, err := client.DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{ImageId: aws.String(imageID), Attribute: types.ImageAttributeNameLaunchPermission})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range out.LaunchPermissions {
		got = append(got, aws.ToString(p.UserId)+aws.ToString(p.OrganizationArn)+aws.ToString(p.OrganizationalUnitArn)+string(p.Group))
	}
	slices.Sort(got)
	return got
}

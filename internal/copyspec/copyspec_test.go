package copyspec

import (
	"strings"
	"testing"
)

const keyArn = "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestDecodeRoundTrip(t *testing.T) {
	p := Properties{SourceImageId: "ami-0123456789abcdef0", SourceRegion: "us-east-1", Name: "web", KmsKeyId: keyArn, Description: "web fleet"}
	raw := p.CfnProperties()
	raw["ServiceToken"] = "arn:aws:lambda:eu-west-1:222222222222:function:f"
	raw["ServiceTimeout"] = "3600"
	got, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	p.ServiceTimeout = 3600
	if got != p {
		t.Errorf("Decode(CfnProperties) = %+v, want %+v", got, p)
	}
}

// Every bad property is named, with the value received, in one error.
func TestDecodeNamesEveryBadProperty(t *testing.T) {
	_, err := Decode(map[string]interface{}{
		"SourceImageId":  "ami-XYZ",
		"SourceRegion":   "Europe",
		"Name":           "a",
		"KmsKeyId":       "arn:aws:kms:eu-west-1:222222222222:alias/mine",
		"Description":    strings.Repeat("d", 256),
		"ServiceTimeout": "7200",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`SourceImageId: "ami-XYZ" is not an AMI id`,
		`SourceRegion: "Europe" is not an AWS region`,
		`Name: "a" is not a valid AMI name prefix`,
		`KmsKeyId: expected a KMS key ARN, got the alias ARN "arn:aws:kms:eu-west-1:222222222222:alias/mine"`,
		`Description: at most 255 characters, got 256`,
		`ServiceTimeout: expected 1 to 3600 seconds, got "7200"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
}

func TestDefaultKeyIsOneDefinition(t *testing.T) {
	a := Properties{SourceImageId: "ami-0123456789abcdef0"}
	b := a
	b.KmsKeyId = "alias/aws/ebs"
	if !a.DefaultKey() || !b.DefaultKey() || !SameCopy(a, b) {
		t.Error("an empty KmsKeyId and alias/aws/ebs are both the default key, one copy")
	}
	c := a
	c.ServiceTimeout = 900
	if !SameCopy(a, c) {
		t.Error("ServiceTimeout does not define the copy")
	}
	for _, change := range []func(*Properties){
		func(p *Properties) { p.SourceImageId = "ami-0123456789abcdef1" },
		func(p *Properties) { p.KmsKeyId = keyArn },
		func(p *Properties) { p.Name = "other" },
		func(p *Properties) { p.Description = "other" },
		func(p *Properties) { p.SourceRegion = "us-east-1" },
	} {
		d := a
		change(&d)
		if SameCopy(a, d) {
			t.Errorf("%+v and %+v are the same copy, want a replacement", a, d)
		}
	}
}

// The token is stable across deliveries of one request, new for another
// request (a replacement), and of the shape EC2 accepts.
func TestCopyToken(t *testing.T) {
	p := Properties{SourceImageId: "ami-0123456789abcdef0"}
	stack := "arn:aws:cloudformation:eu-west-1:222222222222:stack/app/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
	a := CopyToken(stack, "Copy", "r1", p)
	if a != CopyToken(stack, "Copy", "r1", p) {
		t.Error("the token changed between two deliveries")
	}
	if a == CopyToken(stack, "Copy", "r2", p) || a == CopyToken(stack, "Other", "r1", p) {
		t.Error("another request or resource got the same token")
	}
	if !IsCopyToken(a) || len(a) != 34 {
		t.Errorf("token %q", a)
	}
	if name := ImageName(p, a); name != "copy-of-ami-0123456789abcdef0-"+a[2:14] {
		t.Errorf("ImageName %q", name)
	}
}

func TestPhysicalIDs(t *testing.T) {
	tok := "ca0123456789abcdef0123456789abcdef"
	id := PhysicalID{ImageId: "ami-0123456789abcdef0", Token: tok}
	if got, ok := ParsePhysicalID(id.String()); !ok || got != id {
		t.Errorf("ParsePhysicalID(%q) = %+v, %v", id.String(), got, ok)
	}
	if got, ok := ParsePendingID(PendingID{tok}.String()); !ok || got.Token != tok {
		t.Errorf("ParsePendingID = %+v, %v", got, ok)
	}
	for _, s := range []string{"", "ami-0123456789abcdef0", "app-Copy-1A2B3C", "11111111-2222-3333-4444-555555555555", "ami-0123456789abcdef0/xx", "pending-copy/ami"} {
		if _, ok := ParsePhysicalID(s); ok {
			t.Errorf("ParsePhysicalID(%q) ok", s)
		}
		if _, ok := ParsePendingID(s); ok {
			t.Errorf("ParsePendingID(%q) ok", s)
		}
	}
}

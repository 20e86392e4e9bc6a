// Command amicheck diagnoses why an Auto Scaling group (or another launch
// path: --launcher) cannot launch an AMI encrypted with a KMS key of another
// account, the failure that shows as "Client.InternalError: Client error on
// launch".
//
// Run it with the destination account's credentials (the account of the
// group):
//
//	go run github.com/crossaccountami/crossaccountami/cmd/amicheck@latest \
//	    --image-id ami-0123456789abcdef0 --asg my-group [--source-profile source]
//	    # or --launcher EKS_MANAGED_NODE_GROUP | EC2_FLEET | SPOT_FLEET | SPOT
//	    # or --launcher ROLE --launcher-role-arn arn:aws:iam::...:role/karpenter/KarpenterController
//
// It checks, in order: the AMI is visible; its snapshots are encrypted, and
// with which key; whether it is this account's copy made by the library's
// amicopy (its tags: the source AMI, the owning stack; a copy re-encrypted
// with a key of this account needs no grant); the key is customer-managed, enabled and in the group's
// region; the launcher's principal exists (the Auto Scaling service-linked
// role by default; internal/launcher maps each launch path to its
// principal); the key policy lets that principal use the key and the grant
// creator create its grant (read with the source profile); a grant gives the
// principal every operation it needs. It
// reports every check it can make, one line each (PASS, FAIL, WARN, SKIP)
// with the fix, or a JSON document with --json.
//
// Exit status: 0 when no check failed, 1 when one did, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/crossaccountami/crossaccountami/cmd/amicheck/internal/check"
	"github.com/crossaccountami/crossaccountami/internal/awsid"
	"github.com/crossaccountami/crossaccountami/internal/launcher"
	"github.com/crossaccountami/crossaccountami/internal/names"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line.
type options struct {
	in            check.Input
	profile       string
	sourceProfile string
	region        string
	json          bool
	timeout       time.Duration
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("amicheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.in.ImageID, "image-id", "", "the AMI the Auto Scaling group launches (required)")
	fs.StringVar(&o.in.ASGName, "asg", "", "the Auto Scaling group, to use its service-linked role")
	fs.StringVar(&o.in.SLRSuffix, "slr-suffix", "", "the suffix of the service-linked role AWSServiceRoleForAutoScaling_<suffix> (instead of --asg; default: the default role)")
	var kind string
	fs.StringVar(&kind, "launcher", "", "the `KIND` of launch path to check, whose principal uses the key: "+kindList()+" (default: an Auto Scaling group, AUTO_SCALING)")
	fs.StringVar(&o.in.LauncherRoleARN, "launcher-role-arn", "", "with --launcher ROLE: the `ARN` of the role that calls RunInstances or CreateFleet type instant itself (Karpenter's controller, a Lambda function, a CI runner)")
	fs.StringVar(&o.sourceProfile, "source-profile", "", "a profile of the account that owns the AMI and the key, to read what the destination cannot (snapshots, key policy, grants)")
	fs.StringVar(&o.profile, "profile", "", "the destination account's profile (default: the SDK's default chain, AWS_PROFILE)")
	fs.StringVar(&o.region, "region", "", "the group's region (default: the SDK's default chain, AWS_REGION)")
	fs.StringVar(&o.in.KeyARN, "key-arn", "", "the key that encrypts the AMI, when its snapshots are not visible to the destination")
	fs.StringVar(&o.in.GrantCreator, "grant-creator", "", "the principal that creates the grant (default: this library's grant handler roles, path "+names.GrantHandlerRolePath+")")
	fs.BoolVar(&o.json, "json", false, "write a JSON document: {\"ok\": bool, \"checks\": [{\"check\", \"status\", \"resource\", \"detail\", \"fix\"}]}")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: amicheck --image-id ami-... [--asg NAME | --slr-suffix SUFFIX | --launcher KIND [--launcher-role-arn ARN]] [--source-profile PROFILE] [flags]\n\n"+
			"Diagnoses \"Client.InternalError: Client error on launch\" of an Auto Scaling group (or, with --launcher,\n"+
			"another launch path) launching an AMI encrypted with a KMS key of another account.\n"+
			"Run it with the launching account's credentials.\n"+
			"Exit status: 0 no check failed, 1 a check failed, 2 usage error.\n\nFlags:\n")
		printFlags(stderr, fs)
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.in.Launcher = launcher.Kind(kind)
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if o.in.ImageID == "" {
		errs = append(errs, errors.New("--image-id is required"))
	} else if err := awsid.ValidateImageID(o.in.ImageID); err != nil {
		errs = append(errs, fmt.Errorf("--image-id: %v", err))
	}
	if o.in.ASGName != "" && o.in.SLRSuffix != "" {
		errs = append(errs, fmt.Errorf("--asg %q and --slr-suffix %q: give one (the group names its own service-linked role)", o.in.ASGName, o.in.SLRSuffix))
	}
	if o.in.SLRSuffix != "" {
		if err := awsid.ValidateSLRSuffix(o.in.SLRSuffix); err != nil {
			errs = append(errs, fmt.Errorf("--slr-suffix: %v", err))
		}
	}
	errs = append(errs, launcherErrors(o.in)...)
	if o.in.KeyARN != "" {
		if _, err := awsid.ParseKeyARN(o.in.KeyARN); err != nil {
			errs = append(errs, fmt.Errorf("--key-arn: %v", err))
		}
	}
	if o.in.GrantCreator != "" {
		if err := awsid.ValidatePrincipalARN(o.in.GrantCreator); err != nil {
			errs = append(errs, fmt.Errorf("--grant-creator: %v", err))
		}
	}
	if o.region != "" {
		if err := awsid.ValidateRegion(o.region); err != nil {
			errs = append(errs, fmt.Errorf("--region: %v", err))
		}
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: must be positive, got %s", o.timeout))
	}
	return o, errors.Join(errs...)
}

// kindList is the launcher kinds as --launcher takes them.
func kindList() string {
	names := make([]string, len(launcher.Kinds))
	for i, k := range launcher.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// launcherErrors checks --launcher and the flags that go with it:
// --launcher-role-arn only and always with ROLE, --asg and --slr-suffix
// only with an Auto Scaling group.
func launcherErrors(in check.Input) []error {
	if in.Launcher == "" {
		if in.LauncherRoleARN != "" {
			return []error{fmt.Errorf("--launcher-role-arn %q: only with --launcher ROLE", in.LauncherRoleARN)}
		}
		return nil
	}
	if !slices.Contains(launcher.Kinds, in.Launcher) {
		return []error{fmt.Errorf("--launcher: expected one of %s, got %q", kindList(), in.Launcher)}
	}
	var errs []error
	if in.Launcher != launcher.AutoScaling {
		if in.ASGName != "" {
			errs = append(errs, fmt.Errorf("--asg %q: only with --launcher AUTO_SCALING, got --launcher %s", in.ASGName, in.Launcher))
		}
		if in.SLRSuffix != "" {
			reason := "it launches with a service-linked role that takes no custom suffix"
			if in.Launcher == launcher.EKSManagedNodeGroup {
				reason = "the Auto Scaling group EKS creates launches with the default AWSServiceRoleForAutoScaling"
			} else if in.Launcher == launcher.Role {
				reason = "the role given with --launcher-role-arn launches"
			}
			errs = append(errs, fmt.Errorf("--slr-suffix %q: only with --launcher AUTO_SCALING; with --launcher %s %s", in.SLRSuffix, in.Launcher, reason))
		}
	}
	switch {
	case in.Launcher == launcher.Role && in.LauncherRoleARN == "":
		errs = append(errs, errors.New("--launcher ROLE needs --launcher-role-arn, the role that launches the instances"))
	case in.Launcher == launcher.Role:
		if err := (launcher.Launcher{Kind: launcher.Role, RoleARN: in.LauncherRoleARN}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--launcher-role-arn: %s", strings.TrimPrefix(err.Error(), "RoleARN: ")))
		}
	case in.LauncherRoleARN != "":
		errs = append(errs, fmt.Errorf("--launcher-role-arn %q: only with --launcher ROLE, got --launcher %s", in.LauncherRoleARN, in.Launcher))
	}
	return errs
}

// printFlags is flag.PrintDefaults with the flags spelled --name, as the
// synopsis and the README write them (the flag package accepts both).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if f.DefValue != "" && f.DefValue != "false" {
			line += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintln(w, line)
	})
}

// run is the whole command; main only supplies the process's arguments,
// output and signals.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "amicheck: %s\n", line)
		}
		fmt.Fprintln(stderr, "amicheck: see amicheck --help")
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	clients, region, err := newClients(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "amicheck: %v\n", err)
		return exitUsage
	}
	o.in.Region = region
	report := check.NewReport(check.Run(ctx, clients, o.in))
	if o.json {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "amicheck: writing the report: %v\n", err)
		return exitFail
	}
	return report.ExitCode()
}

// newClients loads the SDK's default configuration (environment, shared
// config and credentials files, AWS_ENDPOINT_URL_*) for the destination
// and, with --source-profile, for the source account in the same region.
// The SDK logs to stderr, after amicheck's own usage errors and never
// between the report's lines.
func newClients(ctx context.Context, o options, stderr io.Writer) (check.Clients, string, error) {
	load := func(profile, region string) (aws.Config, error) {
		cfg := new(aws.Config) // read by the instance-role credentials' IMDS client, once loaded
		opts := []func(*config.LoadOptions) error{
			config.WithLogger(logging.NewStandardLogger(stderr)),
			config.WithEC2RoleCredentialOptions(func(o *ec2rolecreds.Options) { o.Client = &imdsWithoutV1Fallback{cfg: cfg} }),
		}
		if profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(profile))
		}
		if region != "" {
			opts = append(opts, config.WithRegion(region))
		}
		loaded, err := config.LoadDefaultConfig(ctx, opts...)
		*cfg = loaded
		return loaded, err
	}
	cfg, err := load(o.profile, o.region)
	if err != nil {
		return check.Clients{}, "", fmt.Errorf("loading the destination configuration (profile %q): %v", o.profile, err)
	}
	if cfg.Region == "" {
		return check.Clients{}, "", errors.New("no region: set --region, AWS_REGION, or a region in the profile")
	}
	c := check.Clients{
		STS:         sts.NewFromConfig(cfg),
		EC2:         ec2.NewFromConfig(cfg),
		KMS:         kms.NewFromConfig(cfg),
		IAM:         iam.NewFromConfig(cfg),
		AutoScaling: autoscaling.NewFromConfig(cfg),
	}
	if o.sourceProfile != "" {
		src, err := load(o.sourceProfile, cfg.Region)
		if err != nil {
			return check.Clients{}, "", fmt.Errorf("loading --source-profile %q: %v", o.sourceProfile, err)
		}
		c.SourceEC2 = ec2.NewFromConfig(src)
		c.SourceKMS = kms.NewFromConfig(src)
	}
	return c, cfg.Region, nil
}

// imdsWithoutV1Fallback is the IMDS client of the EC2 instance-role
// credentials, the last of the SDK's default chain, without its fallback to
// IMDSv1. Where no credentials are configured and something answers the
// IMDSv2 token request with 403, 404 or 405 (a proxy, a container host),
// the fallback logs "falling back to IMDSv1" before amicheck's own answer,
// which already says the credentials do not work; on an EC2 instance,
// IMDSv2 still gives the instance role. AWS_EC2_METADATA_V1_DISABLED=false
// (or ec2_metadata_v1_disabled = false in the profile) turns the fallback
// back on.
type imdsWithoutV1Fallback struct {
	cfg    *aws.Config
	once   sync.Once
	client *imds.Client
}

func (c *imdsWithoutV1Fallback) GetMetadata(ctx context.Context, in *imds.GetMetadataInput, optFns ...func(*imds.Options)) (*imds.GetMetadataOutput, error) {
	c.once.Do(func() {
		c.client = imds.NewFromConfig(*c.cfg, func(o *imds.Options) {
			if o.EnableFallback == aws.UnknownTernary {
				o.EnableFallback = aws.FalseTernary
			}
		})
	})
	return c.client.GetMetadata(ctx, in, optFns...)
}

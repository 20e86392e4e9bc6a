package destinationhandler_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/crossaccountami/crossaccountami/internal/destinationhandler"
	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/handlerbuild"
	"github.com/crossaccountami/crossaccountami/internal/testenv/cfnresponse"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

// maxZipBytes is the budget for the deployed function's zip. It was
// 3,500,000 before the function served Custom::CrossAccountAmiCopy, whose
// EC2 and Lambda clients (aws-sdk-go-v2/service/ec2 and service/lambda,
// the latter with its schemas package) added about 1.3 MB to the binary and
// 0.35 MB to the zip: 3,742,219 bytes measured at that change.
const maxZipBytes = 3_800_000

// TestBootstrapZipSize builds the bootstrap as deployed (linux/arm64,
// handlerbuild's flags) and zips it as a Lambda asset.
func TestBootstrapZipSize(t *testing.T) {
	dir, err := handlerbuild.Build(context.Background(), handlerbuild.Options{Package: handlerbuild.DestinationHandler, GOARCH: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(dir, handlerbuild.BinaryName))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestCompression) })
	hdr := &zip.FileHeader{Name: handlerbuild.BinaryName, Method: zip.Deflate}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bin); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("bootstrap linux/arm64: binary %d bytes, zip %d bytes (budget %d)", len(bin), buf.Len(), maxZipBytes)
	if buf.Len() > maxZipBytes {
		t.Errorf("the zipped bootstrap is %d bytes, over the %d budget: check its dependencies (go list -deps ./internal/destinationhandler/bootstrap)", buf.Len(), maxZipBytes)
	}
}

// BenchmarkEventsAgainstMoto measures, for each lifecycle event and the
// scheduled check, the AWS
// calls the handler makes (counted at the HTTP layer, as calls/op) and the
// warm in-process latency (median-ms), with moto_server standing in for KMS:
//
//	go test -run '^$' -bench EventsAgainstMoto -benchtime 50x ./internal/destinationhandler/
func BenchmarkEventsAgainstMoto(b *testing.B) {
	m := moto.Start(b)
	proxy := m.CountingProxy(b)
	for k, v := range handlerEnv(proxy.URL) {
		b.Setenv(k, v)
	}
	cfg, err := destinationhandler.LoadConfig()
	if err != nil {
		b.Fatal(err)
	}
	cfg.Metrics = io.Discard
	router := destinationhandler.NewRouter(cfg)
	router.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	log.SetOutput(io.Discard) // cfn.LambdaWrap logs failures with the standard logger
	defer log.SetOutput(os.Stderr)
	handle := router.LambdaHandler()
	cfn := cfnresponse.Start(b)
	kc := motoKMS(m)
	key := newKey(b, kc)
	healRes := standInStack(b, motoStacks(m), "bench") // the check asks CloudFormation about it

	create := loadEvent(b, "grant-create.json")
	p1 := create.props("ResourceProperties", "KeyArn", key)
	p2 := create.props("ResourceProperties", "KeyArn", key, "Operations", []interface{}{"Decrypt"})
	p2v := create.props("ResourceProperties", "KeyArn", key, "Operations", []interface{}{"Decrypt"}, "VerifyToken", "v2")
	create = create.with("ResourceProperties", p1, "ResponseURL", cfn.URL+"/r")
	update := loadEvent(b, "grant-update.json").with("ResponseURL", cfn.URL+"/r")
	del := loadEvent(b, "grant-delete.json").with("ResponseURL", cfn.URL+"/r", "ResourceProperties", p1)

	// named is p with the grant name name.
	named := func(p map[string]interface{}, name string) map[string]interface{} {
		out := maps.Clone(p)
		out["Name"] = name
		return out
	}
	// grant makes, with the test's own client (not counted), the grant p2
	// defines under a name of its own (an owned grant is found by its
	// definition and name), and returns its physical id and name.
	seq := 0
	grant := func() (grantspec.PhysicalID, string) {
		seq++
		name := fmt.Sprintf("bench/%d", seq)
		out, err := kc.CreateGrant(context.Background(), &kms.CreateGrantInput{
			KeyId: aws.String(key), GranteePrincipal: aws.String(slrARN), RetiringPrincipal: aws.String(handlerRole),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt}, Name: aws.String(name),
		})
		if err != nil {
			b.Fatal(err)
		}
		return grantspec.PhysicalID{KeyArn: key, GrantId: aws.ToString(out.GrantId)}, name
	}
	// heal is the scheduled check of the grant p2 defines under name.
	heal := func(name string) event {
		p, err := grantspec.Decode(named(p2, name))
		if err != nil {
			b.Fatal(err)
		}
		in, err := grantspec.HealEventInput(p, healRes)
		if err != nil {
			b.Fatal(err)
		}
		return event(in)
	}
	for _, bc := range []struct {
		name  string
		event func() event
	}{
		{"Create", func() event { return create }},
		{"Update/no-op", func() event {
			id, name := grant()
			return update.with("PhysicalResourceId", id.String(), "ResourceProperties", named(p2, name), "OldResourceProperties", named(p2, name))
		}},
		{"Update/VerifyToken", func() event {
			id, name := grant()
			return update.with("PhysicalResourceId", id.String(), "ResourceProperties", named(p2v, name), "OldResourceProperties", named(p2, name))
		}},
		{"Update/replacing", func() event {
			id, name := grant()
			return update.with("PhysicalResourceId", id.String(), "ResourceProperties", named(p1, name), "OldResourceProperties", named(p2, name))
		}},
		{"Delete", func() event {
			id, name := grant()
			return del.with("PhysicalResourceId", id.String(), "ResourceProperties", named(p2, name))
		}},
		{"Delete/not-a-grant", func() event { return del.with("PhysicalResourceId", "6a1a3f5e-3b5b-4b8a-9f0c-1d2e3f4a5b6c") }},
		{"Delete/failed-create", func() event {
			return del.with("PhysicalResourceId", grantspec.PendingID{KeyArn: key, Name: "never-created"}.String())
		}},
		{"Heal/present", func() event {
			_, name := grant()
			return heal(name)
		}},
		{"Heal/re-created", func() event {
			id, name := grant()
			if _, err := kc.RevokeGrant(context.Background(), &kms.RevokeGrantInput{KeyId: aws.String(key), GrantId: aws.String(id.GrantId)}); err != nil {
				b.Fatal(err)
			}
			return heal(name)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var ds []time.Duration
			calls := 0
			for b.Loop() {
				ev := bc.event()
				payload, _ := json.Marshal(ev)
				cfn.Reset()
				proxy.Reset()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				start := time.Now()
				_, err := handle(ctx, payload)
				ds = append(ds, time.Since(start))
				cancel()
				// A CloudFormation event has one SUCCESS answer, the check none.
				_, isCheck := ev[grantspec.HealEventKey]
				if a := cfn.Answers(); err != nil || (isCheck && len(a) != 0) || (!isCheck && (len(a) != 1 || a[0].Status != "SUCCESS")) {
					b.Fatalf("%v %q", err, a)
				}
				calls += len(proxy.Calls())
			}
			slices.Sort(ds)
			b.ReportMetric(float64(calls)/float64(len(ds)), "calls/op")
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "median-ms")
		})
	}
}

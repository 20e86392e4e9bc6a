package moto

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// CopyProxy is a counting Proxy in front of moto that makes moto 5.2.1's
// CopyImage do the two things EC2's does that the copy lifecycle
// (internal/copylifecycle) relies on and moto does not:
//   - the copy and its snapshots get CopyImage's TagSpecifications (moto
//     ignores them): the proxy applies them with CreateTags, straight to
//     moto (not counted), before it passes CopyImage's answer on;
//   - a copy takes time: with PendingLooks(n), each copy made from then
//     on shows as "pending" to the first n DescribeImages that name it by
//     id (moto's copies are "available" at once).
//
// It exists for tests of a handler binary, whose EC2 client cannot be
// wrapped in process.
type CopyProxy struct {
	*Proxy

	ec2     *ec2.Client
	mu      sync.Mutex
	looks   int            // PendingLooks for copies made from now on
	pending map[string]int // image id -> looks left showing pending
}

// CopyProxy starts a CopyProxy in front of s until the test ends.
func (s *Server) CopyProxy(t testing.TB) *CopyProxy {
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &CopyProxy{Proxy: &Proxy{}, pending: map[string]int{},
		ec2: ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL), Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})}
	rp := httputil.NewSingleHostReverseProxy(target)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.record(r)
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		switch form.Get("Action") {
		case "CopyImage", "DescribeImages":
		default:
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		out := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			switch form.Get("Action") {
			case "CopyImage":
				p.tagCopy(t, form, out)
			case "DescribeImages":
				out = p.showPending(form, out)
			}
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(out)
	}))
	t.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

// PendingLooks makes every copy made from now on show as pending to the
// first n DescribeImages that name it by id.
func (p *CopyProxy) PendingLooks(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.looks = n
}

var (
	imageIDRe     = regexp.MustCompile(`<imageId>(ami-[0-9a-f]+)</imageId>`)
	tagSpecTypeRe = regexp.MustCompile(`^TagSpecification\.(\d+)\.ResourceType$`)
)

// tagCopy applies the TagSpecifications of a CopyImage query to the copy
// its answer names and to the copy's snapshots, as EC2 applies them when
// it makes the copy.
func (p *CopyProxy) tagCopy(t testing.TB, form url.Values, answer []byte) {
	m := imageIDRe.FindSubmatch(answer)
	if m == nil {
		t.Errorf("moto CopyProxy: CopyImage answered no image id: %s", answer)
		return
	}
	image := string(m[1])
	ctx := context.Background()
	d, err := p.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{image}})
	if err != nil || len(d.Images) != 1 {
		t.Errorf("moto CopyProxy: DescribeImages of the copy %s: %v", image, err)
		return
	}
	var snapshots []string
	for _, b := range d.Images[0].BlockDeviceMappings {
		if b.Ebs != nil && b.Ebs.SnapshotId != nil {
			snapshots = append(snapshots, *b.Ebs.SnapshotId)
		}
	}
	for k := range form {
		sm := tagSpecTypeRe.FindStringSubmatch(k)
		if sm == nil {
			continue
		}
		prefix := "TagSpecification." + sm[1] + ".Tag."
		var tags []types.Tag
		for i := 1; form.Has(prefix + strconv.Itoa(i) + ".Key"); i++ {
			n := prefix + strconv.Itoa(i)
			tags = append(tags, types.Tag{Key: aws.String(form.Get(n + ".Key")), Value: aws.String(form.Get(n + ".Value"))})
		}
		ids := []string{image}
		if form.Get(k) == string(types.ResourceTypeSnapshot) {
			ids = snapshots
		}
		if len(ids) == 0 || len(tags) == 0 {
			continue
		}
		if _, err := p.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: tags}); err != nil {
			t.Errorf("moto CopyProxy: CreateTags %v: %v", ids, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.looks > 0 {
		p.pending[image] = p.looks
	}
}

// showPending rewrites a DescribeImages answer so that the copies still
// pending show so: in every answer that lists them (by id, or by the tag
// filters the lifecycle looks them up with), and each look by id counts
// against PendingLooks.
func (p *CopyProxy) showPending(form url.Values, answer []byte) []byte {
	byID := form.Get("ImageId.1")
	p.mu.Lock()
	defer p.mu.Unlock()
	for image, left := range p.pending {
		if left == 0 {
			continue
		}
		at := bytes.Index(answer, []byte("<imageId>"+image+"</imageId>"))
		if at < 0 {
			continue
		}
		// The image's state follows its id, before the next image's id
		// (moto serializes the members of an Image in the order of EC2's
		// model, ImageId before State).
		rest := answer[at+1:]
		end := bytes.Index(rest, []byte("<imageId>"))
		if end < 0 {
			end = len(rest)
		}
		state := bytes.Index(rest[:end], []byte("<imageState>available</imageState>"))
		if state < 0 {
			continue
		}
		at += 1 + state
		answer = append(answer[:at:at], append([]byte("<imageState>pending</imageState>"), answer[at+len("<imageState>available</imageState>"):]...)...)
		if byID == image {
			p.pending[image]--
		}
	}
	return answer
}

package destinationhandler_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/crossaccountami/crossaccountami/internal/grantspec"
	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

// standInLogicalID is the logical id of the stand-in of a grant's resource
// in a moto stack.
const standInLogicalID = "AmiGrant"

func motoStacks(m *moto.Server) *cloudformation.Client {
	return cloudformation.New(cloudformation.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
}

// standInStack creates, in moto, a stack named name whose resource
// standInLogicalID stands in for a grant's Custom::KmsGrant (moto cannot
// run a custom resource: an SNS topic has a physical id and a status all
// the same), and returns the resource as the check's event names it.
func standInStack(t testing.TB, c *cloudformation.Client, name string) grantspec.HealResource {
	t.Helper()
	template := `{"Resources":{"` + standInLogicalID + `":{"Type":"AWS::SNS::Topic"}}}`
	out, err := c.CreateStack(context.Background(), &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(template)})
	if err != nil {
		t.Fatalf("CreateStack: %v", err)
	}
	d, err := c.DescribeStackResource(context.Background(), &cloudformation.DescribeStackResourceInput{StackName: out.StackId, LogicalResourceId: aws.String(standInLogicalID)})
	if err != nil {
		t.Fatalf("DescribeStackResource: %v", err)
	}
	if d.StackResourceDetail.ResourceStatus != cfntypes.ResourceStatusCreateComplete {
		t.Fatalf("the stand-in is %s", d.StackResourceDetail.ResourceStatus)
	}
	return grantspec.HealResource{StackID: aws.ToString(out.StackId), LogicalResourceID: standInLogicalID, PhysicalResourceID: aws.ToString(d.StackResourceDetail.PhysicalResourceId)}
}

// stacksFront is a fake CloudFormation in front of another endpoint: it
// answers DescribeStackResource with the next of its answers (the last one
// again when they run out), and forwards every other request to the
// endpoint (fakekms). The handler reaches it the way it reaches AWS,
// through AWS_ENDPOINT_URL_CLOUDFORMATION: moto holds no stack whose
// resource is DELETE_IN_PROGRESS.
type stacksFront struct {
	URL string

	mu      sync.Mutex
	answers []stackAnswer
	calls   int
}

// stackAnswer is what DescribeStackResource answers: the resource's status
// and physical id, or an error code and message.
type stackAnswer struct {
	Status, PhysicalID string
	ErrCode, ErrMsg    string
}

func startStacksFront(t *testing.T, forward string) *stacksFront {
	target, err := url.Parse(forward)
	if err != nil {
		t.Fatal(err)
	}
	f := &stacksFront{}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Authorization"), "/cloudformation/aws4_request") {
			rp.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") != "DescribeStackResource" {
			http.Error(w, "this fake serves DescribeStackResource only", http.StatusBadRequest)
			return
		}
		a := f.next(t)
		w.Header().Set("Content-Type", "text/xml")
		if a.ErrCode != "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`, a.ErrCode, xmlText(a.ErrMsg))
			return
		}
		fmt.Fprintf(w, `<DescribeStackResourceResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStackResourceResult><StackResourceDetail>`+
			`<StackId>%s</StackId><LogicalResourceId>%s</LogicalResourceId><PhysicalResourceId>%s</PhysicalResourceId><ResourceType>Custom::KmsGrant</ResourceType>`+
			`<LastUpdatedTimestamp>2026-12-01T00:00:00Z</LastUpdatedTimestamp><ResourceStatus>%s</ResourceStatus></StackResourceDetail></DescribeStackResourceResult>`+
			`<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></DescribeStackResourceResponse>`,
			xmlText(form.Get("StackName")), xmlText(form.Get("LogicalResourceId")), xmlText(a.PhysicalID), a.Status)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *stacksFront) next(t *testing.T) stackAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.answers) == 0 {
		t.Errorf("DescribeStackResource with no answer set")
		return stackAnswer{ErrCode: "InternalFailure", ErrMsg: "no answer set"}
	}
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	return a
}

// answer sets what the next DescribeStackResource calls answer, and
// forgets the calls counted so far.
func (f *stacksFront) answer(answers ...stackAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers, f.calls = answers, 0
}

// Calls is how many DescribeStackResource calls were answered since answer.
func (f *stacksFront) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// healPayload is the Input the construct gives the check's EventBridge
// rule, made with the encoder it uses, from the properties of a template
// and the grant's resource.
func healPayload(t *testing.T, props map[string]interface{}, r grantspec.HealResource) []byte {
	t.Helper()
	p, err := grantspec.Decode(props)
	if err != nil {
		t.Fatal(err)
	}
	b, err := grantspec.EncodeHealEvent(p, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

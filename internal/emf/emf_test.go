package emf

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var at = time.Date(2026, 11, 28, 9, 30, 0, 123_000_000, time.UTC)

func TestWriteExactLine(t *testing.T) {
	var buf bytes.Buffer
	w := &Writer{Out: &buf, Now: func() time.Time { return at }}

	err := w.Write("CrossAccountAmi", map[string]string{"GrantName": "dest/AmiGrant/0f2a"},
		Metric{Name: "GrantRecreated", Unit: Count, Value: 1},
		Metric{Name: "GrantCheckFailed", Unit: Count, Value: 0})

	if err != nil {
		t.Fatal(err)
	}
	// One line, members sorted (encoding/json sorts map keys), the
	// timestamp in milliseconds, no HTML escaping of the slashes or values.
	want := `{"GrantCheckFailed":0,"GrantName":"dest/AmiGrant/0f2a","GrantRecreated":1,"_aws":{"Timestamp":1795858200123,"CloudWatchMetrics":[{"Namespace":"CrossAccountAmi","Dimensions":[["GrantName"]],"Metrics":[{"Name":"GrantRecreated","Unit":"Count"},{"Name":"GrantCheckFailed","Unit":"Count"}]}]}}` + "\n"
	if buf.String() != want {
		t.Errorf("line\n%s\nwant\n%s", buf.String(), want)
	}
	checkSpec(t, buf.Bytes())
}

// checkSpec checks a document against the rules of the specification that
// CloudWatch enforces when it extracts metrics: the root is one JSON object
// on one line; _aws holds Timestamp (a number, milliseconds since the epoch)
// and CloudWatchMetrics (an array of directives); each directive holds a
// Namespace, Dimensions (an array of dimension sets, each an array of at
// most 30 names of string members of the root) and Metrics (an array of at
// most 100 definitions, each a Name of a numeric member of the root and an
// optional Unit).
func checkSpec(t *testing.T, line []byte) {
	t.Helper()
	if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
		t.Errorf("%q is not one line", line)
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	var meta struct {
		Timestamp         json.Number
		CloudWatchMetrics []struct {
			Namespace  *string
			Dimensions [][]string
			Metrics    []struct {
				Name *string
				Unit *string
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(root["_aws"]))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta); err != nil {
		t.Fatalf("_aws: %v", err)
	}
	ms, err := meta.Timestamp.Int64()
	if err != nil || ms < time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() || ms > time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() {
		t.Errorf("_aws.Timestamp %q is not milliseconds since the epoch", meta.Timestamp)
	}
	if len(meta.CloudWatchMetrics) == 0 {
		t.Fatal("_aws.CloudWatchMetrics is empty")
	}
	for _, d := range meta.CloudWatchMetrics {
		if d.Namespace == nil || *d.Namespace == "" {
			t.Error("a directive has no Namespace")
		}
		if d.Dimensions == nil {
			t.Error("a directive has no Dimensions")
		}
		for _, set := range d.Dimensions {
			if len(set) == 0 || len(set) > MaxDimensions {
				t.Errorf("dimension set %v: expected 1 to %d names", set, MaxDimensions)
			}
			for _, name := range set {
				var s string
				if err := json.Unmarshal(root[name], &s); err != nil || s == "" {
					t.Errorf("dimension %s: the root has no string member of that name (%s)", name, root[name])
				}
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > MaxMetrics {
			t.Errorf("%d metric definitions", len(d.Metrics))
		}
		for _, m := range d.Metrics {
			if m.Name == nil {
				t.Error("a metric definition has no Name")
				continue
			}
			var v float64
			if err := json.Unmarshal(root[*m.Name], &v); err != nil {
				t.Errorf("metric %s: the root has no numeric member of that name (%s)", *m.Name, root[*m.Name])
			}
			if m.Unit != nil && *m.Unit != string(Count) {
				t.Errorf("metric %s: unit %q", *m.Name, *m.Unit)
			}
		}
	}
}

func TestWriteRefusesWhatCloudWatchWouldDrop(t *testing.T) {
	ok := Metric{Name: "M", Unit: Count, Value: 1}
	for _, tc := range []struct {
		name      string
		namespace string
		dims      map[string]string
		metrics   []Metric
		want      string
	}{
		{"no namespace", "", map[string]string{"D": "v"}, []Metric{ok}, `namespace ""`},
		{"empty dimension value", "N", map[string]string{"D": ""}, []Metric{ok}, `dimension D: value ""`},
		{"non-ASCII dimension value", "N", map[string]string{"D": "é"}, []Metric{ok}, `dimension D: value "é"`},
		{"long dimension value", "N", map[string]string{"D": strings.Repeat("v", 1025)}, []Metric{ok}, "dimension D"},
		{"no metric", "N", map[string]string{"D": "v"}, nil, "0 metrics"},
		{"metric named like a dimension", "N", map[string]string{"M": "v"}, []Metric{ok}, `metric "M"`},
		{"metric named _aws", "N", map[string]string{"D": "v"}, []Metric{{Name: "_aws", Value: 1}}, `metric name "_aws"`},
		{"no dimension", "N", nil, []Metric{ok}, "0 dimensions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := (&Writer{Out: &buf}).Write(tc.namespace, tc.dims, tc.metrics...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q", buf.String())
			}
		})
	}
}

// Package emf writes CloudWatch metrics as log lines in the Embedded Metric
// Format (EMF): a Lambda function prints one JSON object to stdout, and
// CloudWatch Logs extracts the metrics from it. No CloudWatch client, no
// cloudwatch:PutMetricData permission and no extra call: the function's log
// group is the only way out, which it has anyway.
//
// Specification:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
//
// It is the format only: the names of this library's metrics (namespace,
// metric and dimension names), which the constructs build alarms from, are
// the contract of the resource they measure (grantspec.MetricNamespace, ...).
package emf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Unit is a CloudWatch metric unit.
type Unit string

// Count is the unit this library emits (CloudWatch knows more).
const Count Unit = "Count"

// Limits of the specification and of CloudWatch metrics.
const (
	MaxDimensions        = 30   // dimension keys in one dimension set
	MaxMetrics           = 100  // metric definitions in one directive
	MaxNameLen           = 255  // namespace, metric and dimension names
	MaxDimensionValueLen = 1024 // dimension values
)

// Metric is one value of one metric.
type Metric struct {
	Name  string
	Unit  Unit
	Value float64
}

// Writer writes EMF documents, one JSON object per line, each in a single
// Write so that it never interleaves with the log lines of the same stream.
type Writer struct {
	// Out receives the lines. Nil: os.Stdout, which Lambda sends to the
	// function's log group, where CloudWatch extracts the metrics.
	Out io.Writer
	// Now stamps each document. Nil: time.Now.
	Now func() time.Time
}

// directive is a MetricDirective of the specification.
type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

// definition is a MetricDefinition of the specification.
type definition struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit,omitempty"`
}

type metadata struct {
	// Timestamp is in milliseconds since the epoch, as the specification requires.
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// Write emits metrics in namespace with one dimension set made of every key
// of dimensions (each a member of the document, as the specification wants
// its target members). It refuses, naming the value, what CloudWatch would
// drop silently: an empty or overlong name, a dimension value that is empty
// or not ASCII, a metric named like a dimension.
func (w *Writer) Write(namespace string, dimensions map[string]string, metrics ...Metric) error {
	if err := check(namespace, dimensions, metrics); err != nil {
		return fmt.Errorf("emf: %w", err)
	}
	keys := slices.Sorted(maps.Keys(dimensions))
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	d := directive{Namespace: namespace, Dimensions: [][]string{keys}}
	root := map[string]interface{}{}
	for _, k := range keys {
		root[k] = dimensions[k]
	}
	for _, m := range metrics {
		d.Metrics = append(d.Metrics, definition{Name: m.Name, Unit: m.Unit})
		root[m.Name] = m.Value
	}
	root["_aws"] = metadata{Timestamp: now().UnixMilli(), CloudWatchMetrics: []directive{d}}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil { // Encode ends the line
		return fmt.Errorf("emf: %v", err)
	}
	out := w.Out
	if out == nil {
		out = os.Stdout
	}
	if _, err := out.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("emf: writing the metrics of %s: %v", namespace, err)
	}
	return nil
}

func check(namespace string, dimensions map[string]string, metrics []Metric) error {
	var errs []error
	if err := checkName("namespace", namespace); err != nil {
		errs = append(errs, err)
	}
	if len(dimensions) == 0 || len(dimensions) > MaxDimensions {
		errs = append(errs, fmt.Errorf("%d dimensions, expected 1 to %d (one dimension set)", len(dimensions), MaxDimensions))
	}
	for _, k := range slices.Sorted(maps.Keys(dimensions)) {
		v := dimensions[k]
		if err := checkName("dimension name", k); err != nil {
			errs = append(errs, err)
		}
		if strings.TrimSpace(v) == "" || len(v) > MaxDimensionValueLen || !ascii(v) {
			errs = append(errs, fmt.Errorf("dimension %s: value %q is not 1 to %d ASCII characters with one that is not a space", k, v, MaxDimensionValueLen))
		}
	}
	if len(metrics) == 0 || len(metrics) > MaxMetrics {
		errs = append(errs, fmt.Errorf("%d metrics, expected 1 to %d", len(metrics), MaxMetrics))
	}
	seen := map[string]bool{}
	for _, m := range metrics {
		if err := checkName("metric name", m.Name); err != nil {
			errs = append(errs, err)
		}
		if _, dup := dimensions[m.Name]; dup || seen[m.Name] {
			errs = append(errs, fmt.Errorf("metric %q: the name is used twice in one document", m.Name))
		}
		seen[m.Name] = true
	}
	return errors.Join(errs...)
}

func checkName(what, s string) error {
	if s == "" || len(s) > MaxNameLen || !ascii(s) || strings.HasPrefix(s, ":") || s == "_aws" {
		return fmt.Errorf("%s %q: expected 1 to %d ASCII characters, not starting with a colon, not _aws", what, s, MaxNameLen)
	}
	return nil
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

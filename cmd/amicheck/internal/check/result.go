package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check.
type Status string

const (
	// Pass: the piece is in place.
	Pass Status = "PASS"
	// Fail: the piece is missing or wrong; Fix says how to repair it.
	Fail Status = "FAIL"
	// Warn: the piece looks in place, but something could not be confirmed
	// or is known to cause trouble.
	Warn Status = "WARN"
	// Skip: the check could not run (an earlier piece is missing, or these
	// credentials may not see it); Detail says why and Fix how to run it.
	Skip Status = "SKIP"
)

// Check names, stable for scripts.
const (
	CheckCaller            = "caller"
	CheckImage             = "image"
	CheckSnapshots         = "snapshots"
	CheckKey               = "key"
	CheckServiceLinkedRole = "service-linked-role"
	// CheckLauncherRole replaces CheckServiceLinkedRole for --launcher ROLE.
	CheckLauncherRole   = "launcher-role"
	CheckKeyPolicyUse   = "key-policy-use"
	CheckKeyPolicyGrant = "key-policy-create-grant"
	CheckGrant          = "grant"
)

// Result is one line of the report. The JSON field names are a stable
// schema: check, status, resource, detail, fix.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	// Resource is what was checked (an AMI id, a key ARN, a role ARN).
	Resource string `json:"resource"`
	Detail   string `json:"detail"`
	Fix      string `json:"fix"`
}

// Report is the outcome of a run.
type Report struct {
	// OK is false when a check failed.
	OK     bool     `json:"ok"`
	Checks []Result `json:"checks"`
}

// NewReport summarizes results.
func NewReport(results []Result) Report {
	r := Report{OK: true, Checks: results}
	if r.Checks == nil {
		r.Checks = []Result{}
	}
	for _, c := range results {
		if c.Status == Fail {
			r.OK = false
		}
	}
	return r
}

// ExitCode is 0 when no check failed and 1 otherwise.
func (r Report) ExitCode() int {
	if r.OK {
		return 0
	}
	return 1
}

// WriteJSON writes the report as one JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes one line per check (status, check, resource, detail)
// and, under a check that did not pass, the fix.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s  %-23s  %s", c.Status, c.Check, c.Detail)
		if c.Resource != "" && !strings.Contains(c.Detail, c.Resource) {
			fmt.Fprintf(&b, " [%s]", c.Resource)
		}
		b.WriteString("\n")
		if c.Fix != "" && c.Status != Pass {
			for i, line := range strings.Split(c.Fix, "\n") {
				prefix := "      fix: "
				if i > 0 {
					prefix = "           "
				}
				b.WriteString(prefix + line + "\n")
			}
		}
	}
	failed := 0
	for _, c := range r.Checks {
		if c.Status == Fail {
			failed++
		}
	}
	if failed == 0 {
		b.WriteString("no check failed\n")
	} else {
		fmt.Fprintf(&b, "%d check(s) failed; the first FAIL is the first piece to fix\n", failed)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

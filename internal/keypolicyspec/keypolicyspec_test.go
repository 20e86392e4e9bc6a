package keypolicyspec_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/customresource"
	"github.com/crossaccountami/crossaccountami/internal/keypolicyspec"
)

const keyArn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestRoundTrip(t *testing.T) {
	stmts, err := keypolicyspec.ParseStatements(`[ {"Sid":"A", "Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"},{"Sid":"B","Effect":"Deny","Action":"kms:*","Resource":"*","Principal":"*"}]`)
	if err != nil {
		t.Fatal(err)
	}
	p := keypolicyspec.Properties{KeyArn: keyArn, Statements: stmts}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	raw := p.CfnProperties()
	raw["ServiceToken"] = "arn:aws:lambda:us-east-1:111111111111:function:f"
	got, err := keypolicyspec.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyArn != keyArn || strings.Join(keypolicyspec.Sids(got.Statements), ",") != "A,B" || string(got.Statements[0].JSON) != `{"Sid":"A","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}` {
		t.Errorf("Decode = %+v", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  map[string]interface{}
		want []string
	}{
		{"missing", map[string]interface{}{}, []string{"KeyArn: required", "Statements: required"}},
		{"alias", map[string]interface{}{"KeyArn": "arn:aws:kms:us-east-1:111111111111:alias/x", "Statements": `[{"Sid":"A","Effect":"Allow"}]`}, []string{"KeyArn:", "alias"}},
		{"not json", map[string]interface{}{"KeyArn": keyArn, "Statements": `{`}, []string{"Statements: expected a JSON array"}},
		{"empty", map[string]interface{}{"KeyArn": keyArn, "Statements": `[]`}, []string{"at least one"}},
		{"no sid", map[string]interface{}{"KeyArn": keyArn, "Statements": `[{"Effect":"Allow"}]`}, []string{"a Sid is required"}},
		{"dup sid", map[string]interface{}{"KeyArn": keyArn, "Statements": `[{"Sid":"A","Effect":"Allow"},{"Sid":"A","Effect":"Allow"}]`}, []string{`"A" is used twice`}},
		{"effect", map[string]interface{}{"KeyArn": keyArn, "Statements": `[{"Sid":"A","Effect":"allow"}]`}, []string{"Effect must be Allow or Deny"}},
		{"not a string", map[string]interface{}{"KeyArn": keyArn, "Statements": []interface{}{}}, []string{"Statements: expected a string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keypolicyspec.Decode(tc.raw)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPhysicalID(t *testing.T) {
	id := keypolicyspec.NewPhysicalID(keyArn, "arn:aws:cloudformation:us-east-1:111111111111:stack/S/uuid", "Stmts")
	got, ok := keypolicyspec.ParsePhysicalID(id.String())
	if !ok || got != id {
		t.Errorf("ParsePhysicalID(%q) = %+v, %v", id, got, ok)
	}
	if other := keypolicyspec.NewPhysicalID(keyArn, "arn:aws:cloudformation:us-east-1:111111111111:stack/S/uuid", "Other"); other == id {
		t.Error("two logical ids give one physical id")
	}
	for _, bad := range []string{"", "00000000-0000-4000-8000-000000000001", keyArn, keyArn + "/xyz"} {
		if _, ok := keypolicyspec.ParsePhysicalID(bad); ok {
			t.Errorf("ParsePhysicalID(%q) ok", bad)
		}
	}
}

func TestRollbackIDForms(t *testing.T) {
	base := keypolicyspec.NewPhysicalID(keyArn, "arn:aws:cloudformation:us-east-1:111111111111:stack/S/uuid", "Stmts")
	for _, tc := range []struct {
		keep []int
		want string
	}{
		{nil, base.String()},
		{[]int{0, 2}, base.String() + "/keep-a"},
		{[]int{1}, base.String() + "/keep-4"},
		{[]int{5}, base.String() + "/keep-04"},
		{[]int{0, 1, 2, 3, 4}, base.String() + "/keep-f8"},
		{[]int{3, 4, 11}, base.String() + "/keep-181"},
	} {
		id := keypolicyspec.RollbackID{PhysicalID: base, Keep: tc.keep}
		if got := id.String(); got != tc.want {
			t.Errorf("RollbackID{Keep: %v}.String() = %q, want %q", tc.keep, got, tc.want)
		}
		got, ok := keypolicyspec.ParseRollbackID(tc.want)
		if !ok || got.PhysicalID != base || !slices.Equal(got.Keep, tc.keep) {
			t.Errorf("ParseRollbackID(%q) = %+v, %v", tc.want, got, ok)
		}
	}
	// Unordered or repeated indexes give the canonical form.
	if got := (keypolicyspec.RollbackID{PhysicalID: base, Keep: []int{2, 0, 2, -1}}).String(); got != base.String()+"/keep-a" {
		t.Errorf("String() = %q", got)
	}
}

func TestRollbackIDReadsEveryPhysicalID(t *testing.T) {
	// An id a resource answered before rollback ids existed.
	const old = keyArn + "/0123456789abcdef"
	got, ok := keypolicyspec.ParseRollbackID(old)
	if !ok || got.KeyArn != keyArn || got.Hash != "0123456789abcdef" || len(got.Keep) != 0 || got.String() != old {
		t.Errorf("ParseRollbackID(%q) = %+v, %v", old, got, ok)
	}
	// A rollback id that keeps statements is not a resource's physical id.
	if _, ok := keypolicyspec.ParsePhysicalID(old + "/keep-a"); ok {
		t.Error("ParsePhysicalID reads a rollback id")
	}
}

func TestRollbackIDRejectsGarbage(t *testing.T) {
	const base = keyArn + "/0123456789abcdef"
	for _, bad := range []string{
		"", "r", "00000000-0000-4000-8000-000000000001", keyArn,
		base + "/", base + "/keep-", base + "/keep-0", base + "/keep-a0", base + "/keep-A", base + "/keep-g",
		base + "/keep- a", base + "/keep-a/keep-a", base + "/kept-a", base + "/a",
		keyArn + "/xyz/keep-a", "arn:aws:kms:us-east-1:111111111111:alias/x/0123456789abcdef/keep-a",
	} {
		if got, ok := keypolicyspec.ParseRollbackID(bad); ok {
			t.Errorf("ParseRollbackID(%q) = %+v, ok", bad, got)
		}
	}
}

func TestRollbackIDRoundTripsEveryBitmap(t *testing.T) {
	base := keypolicyspec.PhysicalID{KeyArn: keyArn, Hash: "0123456789abcdef"}
	for mask := 1; mask < 1<<10; mask++ {
		var keep []int
		for i := 0; i < 10; i++ {
			if mask&(1<<i) != 0 {
				keep = append(keep, i)
			}
		}
		s := keypolicyspec.RollbackID{PhysicalID: base, Keep: keep}.String()
		got, ok := keypolicyspec.ParseRollbackID(s)
		if !ok || !slices.Equal(got.Keep, keep) || got.String() != s {
			t.Fatalf("%v -> %q -> %+v, %v", keep, s, got, ok)
		}
	}
}

// The id of a Create that adopted every statement but one of the largest
// statement list a key policy can hold, on the longest key ARN, fits in a
// physical id.
func TestRollbackIDFitsCloudFormationsLimit(t *testing.T) {
	// The smallest statement the properties accept.
	minimal := len(`{"Sid":"A","Effect":"Allow"}`)
	most := (keypolicyspec.MaxPolicyBytes - 1) / (minimal + 1) // "[" + n statements and commas + "]"
	if most < 1000 {
		t.Fatalf("at most %d statements?", most)
	}
	longestKey := "arn:aws-iso-b:kms:us-isob-east-1:111111111111:key/mrk-0123456789abcdef0123456789abcdef"
	id := keypolicyspec.RollbackID{PhysicalID: keypolicyspec.NewPhysicalID(longestKey, "stack", "Stmts")}
	for i := 1; i < most; i++ {
		id.Keep = append(id.Keep, i)
	}
	s := id.String()
	if len(s) > customresource.MaxPhysicalIDBytes {
		t.Errorf("%d statements kept: the id is %d bytes, over %d", most-1, len(s), customresource.MaxPhysicalIDBytes)
	}
	if got, ok := keypolicyspec.ParseRollbackID(s); !ok || !slices.Equal(got.Keep, id.Keep) || got.KeyArn != longestKey {
		t.Errorf("ParseRollbackID of the long id: %v", ok)
	}
	t.Logf("%d statements, all but the first kept: %d bytes", most, len(s))
}

func TestRollbackIDSplit(t *testing.T) {
	stmts, err := keypolicyspec.ParseStatements(`[{"Sid":"A","Effect":"Allow"},{"Sid":"B","Effect":"Allow"},{"Sid":"C","Effect":"Allow"}]`)
	if err != nil {
		t.Fatal(err)
	}
	base := keypolicyspec.PhysicalID{KeyArn: keyArn, Hash: "0123456789abcdef"}
	for _, tc := range []struct {
		keep         []int
		remove, kept string
	}{
		{nil, "A,B,C", ""},
		{[]int{1}, "A,C", "B"},
		{[]int{0, 2, 7}, "B", "A,C"},
	} {
		remove, kept := keypolicyspec.RollbackID{PhysicalID: base, Keep: tc.keep}.Split(stmts)
		if strings.Join(remove, ",") != tc.remove || strings.Join(kept, ",") != tc.kept {
			t.Errorf("Keep %v: remove %v, keep %v; want %s / %s", tc.keep, remove, kept, tc.remove, tc.kept)
		}
	}
}

func TestSidSuffix(t *testing.T) {
	// The mark is the same at synth (account, region, stack name) and in the
	// handler (the StackId CloudFormation sends); its hex is the first 8 of
	// sha256("111111111111\x00us-east-1\x00AmiSource").
	const want = " [crossaccountami 8b7c4c92]"
	if got := keypolicyspec.SidSuffix("111111111111", "us-east-1", "AmiSource"); got != want {
		t.Errorf("SidSuffix = %q, want %q", got, want)
	}
	got, err := keypolicyspec.SidSuffixOfStack("arn:aws:cloudformation:us-east-1:111111111111:stack/AmiSource/8c3e5d20-0000-4000-8000-000000000001")
	if err != nil || got != want {
		t.Errorf("SidSuffixOfStack = %q, %v; want %q", got, err, want)
	}
	for _, other := range []string{
		keypolicyspec.SidSuffix("111111111111", "us-east-1", "AmiSource2"),
		keypolicyspec.SidSuffix("111111111111", "eu-west-1", "AmiSource"),
		keypolicyspec.SidSuffix("222222222222", "us-east-1", "AmiSource"),
	} {
		if other == want {
			t.Errorf("another stack has the mark %q", other)
		}
	}
	for _, bad := range []string{"", "r", "arn:aws:s3:::bucket", "arn:aws:cloudformation:us-east-1:111111111111:changeSet/x/y"} {
		if _, err := keypolicyspec.SidSuffixOfStack(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("SidSuffixOfStack(%q): %v", bad, err)
		}
	}
}

func TestMarkKeepsEverythingButTheSid(t *testing.T) {
	stmts, err := keypolicyspec.ParseStatements(`[{"Sid":"A","Effect":"Allow","Principal":{"AWS":"arn:${Token[AWS.Partition.9]}:iam::222222222222:root"},"Action":"kms:Decrypt","Resource":"*"},{"Effect":"Deny","Sid":"B \"quoted\"","Action":"kms:*","Resource":"*","Principal":"*"}]`)
	if err != nil {
		t.Fatal(err)
	}
	const suffix = " [crossaccountami 8b7c4c92]"
	marked, err := keypolicyspec.Mark(stmts, suffix)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"Sid":"A [crossaccountami 8b7c4c92]","Effect":"Allow","Principal":{"AWS":"arn:${Token[AWS.Partition.9]}:iam::222222222222:root"},"Action":"kms:Decrypt","Resource":"*"}`,
		`{"Effect":"Deny","Sid":"B \"quoted\" [crossaccountami 8b7c4c92]","Action":"kms:*","Resource":"*","Principal":"*"}`,
	}
	for i, s := range marked {
		if string(s.JSON) != want[i] || s.Sid != stmts[i].Sid+suffix {
			t.Errorf("statement %d: %s (Sid %q), want %s", i, s.JSON, s.Sid, want[i])
		}
	}
	if string(stmts[0].JSON) == string(marked[0].JSON) {
		t.Error("Mark changed its input")
	}
}

func TestDecodeMarkedProperties(t *testing.T) {
	const suffix = " [crossaccountami 8b7c4c92]"
	marked := `[{"Sid":"A [crossaccountami 8b7c4c92]","Effect":"Allow"}]`
	p, err := keypolicyspec.Decode(map[string]interface{}{"KeyArn": keyArn, "Statements": marked, "SidSuffix": suffix})
	if err != nil || p.SidSuffix != suffix || p.Statements[0].Sid != "A"+suffix {
		t.Fatalf("Decode = %+v, %v", p, err)
	}
	if got := p.CfnProperties()["SidSuffix"]; got != suffix {
		t.Errorf("CfnProperties SidSuffix = %v", got)
	}
	// Properties written before marks existed have none.
	legacy, err := keypolicyspec.Decode(map[string]interface{}{"KeyArn": keyArn, "Statements": `[{"Sid":"A","Effect":"Allow"}]`})
	if err != nil || legacy.SidSuffix != "" {
		t.Errorf("legacy Decode = %+v, %v", legacy, err)
	}
	if _, ok := legacy.CfnProperties()["SidSuffix"]; ok {
		t.Error("legacy CfnProperties has a SidSuffix")
	}
	for _, tc := range []struct {
		name  string
		raw   map[string]interface{}
		wants []string
	}{
		{"a Sid without the mark", map[string]interface{}{"KeyArn": keyArn, "SidSuffix": suffix,
			"Statements": `[{"Sid":"A [crossaccountami 8b7c4c92]","Effect":"Allow"},{"Sid":"B","Effect":"Allow"}]`},
			[]string{"Statements:", `"B"`, `end with the SidSuffix " [crossaccountami 8b7c4c92]"`}},
		{"not a mark", map[string]interface{}{"KeyArn": keyArn, "SidSuffix": "-mine", "Statements": `[{"Sid":"A-mine","Effect":"Allow"}]`},
			[]string{"SidSuffix:", `"-mine"`, "[crossaccountami <8 hex digits>]"}},
		{"not a string", map[string]interface{}{"KeyArn": keyArn, "SidSuffix": []interface{}{}, "Statements": marked},
			[]string{"SidSuffix: expected a string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keypolicyspec.Decode(tc.raw)
			for _, w := range tc.wants {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not contain %q", err, w)
				}
			}
		})
	}
}

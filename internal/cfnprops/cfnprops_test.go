package cfnprops_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/cfnprops"
)

func TestReader(t *testing.T) {
	raw := map[string]interface{}{
		"Name":     "n",
		"Null":     nil,
		"Number":   1.5,
		"List":     []interface{}{"a", "b"},
		"BadItem":  []interface{}{"a", true},
		"NotList":  "a",
		"Map":      map[string]interface{}{"k": "v"},
		"BadValue": map[string]interface{}{"k": 2.0},
	}
	tests := []struct {
		name    string
		read    func(r *cfnprops.Reader) interface{}
		want    interface{}
		wantErr string
	}{
		{"string", func(r *cfnprops.Reader) interface{} { return r.String("Name") }, "n", ""},
		{"absent string", func(r *cfnprops.Reader) interface{} { return r.String("Missing") }, "", ""},
		{"null string", func(r *cfnprops.Reader) interface{} { return r.String("Null") }, "", ""},
		{"number for a string", func(r *cfnprops.Reader) interface{} { return r.String("Number") }, "", "Number: expected a string, got 1.5"},
		{"list", func(r *cfnprops.Reader) interface{} { return r.List("List") }, []string{"a", "b"}, ""},
		{"absent list", func(r *cfnprops.Reader) interface{} { return r.List("Missing") }, []string(nil), ""},
		{"bad item", func(r *cfnprops.Reader) interface{} { return r.List("BadItem") }, []string{"a"}, "BadItem: expected a list of strings, got the item true"},
		{"string for a list", func(r *cfnprops.Reader) interface{} { return r.List("NotList") }, []string(nil), `NotList: expected a list of strings, got "a"`},
		{"map", func(r *cfnprops.Reader) interface{} { return r.Map("Map") }, map[string]string{"k": "v"}, ""},
		{"absent map", func(r *cfnprops.Reader) interface{} { return r.Map("Missing") }, map[string]string(nil), ""},
		{"bad value", func(r *cfnprops.Reader) interface{} { return r.Map("BadValue") }, map[string]string{}, `BadValue: value of "k" must be a string, got 2`},
		{"list for a map", func(r *cfnprops.Reader) interface{} { return r.Map("List") }, map[string]string(nil), `List: expected a map of strings, got ["a","b"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cfnprops.NewReader(raw)
			if got := tt.read(r); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			err := r.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestReaderJoinsEveryProblem(t *testing.T) {
	r := cfnprops.NewReader(map[string]interface{}{"A": 1.0, "B": true})
	r.String("A")
	r.List("B")
	r.Failf("C: expected true or false, got %s", cfnprops.Show("maybe"))
	want := "A: expected a string, got 1\nB: expected a list of strings, got true\nC: expected true or false, got \"maybe\""
	if err := r.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q", err, want)
	}
}

func TestBool(t *testing.T) {
	raw := map[string]interface{}{"T": "true", "F": "false", "E": "", "Bad": "yes", "Num": 1.0}
	r := cfnprops.NewReader(raw)
	if !r.Bool("T") || r.Bool("F") || r.Bool("E") || r.Bool("Absent") {
		t.Error("true/false/empty/absent read wrong")
	}
	if r.Err() != nil {
		t.Fatalf("unexpected error: %v", r.Err())
	}
	r.Bool("Bad")
	r.Bool("Num")
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), `Bad: expected true or false, got "yes"`) || !strings.Contains(err.Error(), "Num: expected true or false, got 1") {
		t.Errorf("error = %v", err)
	}
}

func TestResourceHash(t *testing.T) {
	a := cfnprops.ResourceHash("arn:aws:cloudformation:us-east-1:1:stack/s/u1", "L")
	if a != cfnprops.ResourceHash("arn:aws:cloudformation:us-east-1:1:stack/s/u1", "L") || !cfnprops.IsResourceHash(a) {
		t.Errorf("%q: not stable or not a resource hash", a)
	}
	if a == cfnprops.ResourceHash("arn:aws:cloudformation:us-east-1:1:stack/s/u2", "L") || cfnprops.IsResourceHash("xyz") {
		t.Error("two stack instances share a hash, or a non-hash passes")
	}
}

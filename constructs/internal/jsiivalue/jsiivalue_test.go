package jsiivalue_test

import (
	"reflect"
	"testing"

	"github.com/crossaccountami/crossaccountami/constructs/internal/jsiivalue"
)

func ptr(s string) *string { return &s }

func TestStrings(t *testing.T) {
	tests := []struct {
		name string
		in   *[]*string
		want []string
	}{
		{"nil list", nil, nil},
		{"empty list", &[]*string{}, []string{}},
		{"nil items left out", &[]*string{ptr("a"), nil, ptr("")}, []string{"a", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jsiivalue.Strings(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Strings = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestStringMap(t *testing.T) {
	tests := []struct {
		name string
		in   *map[string]*string
		want map[string]string
	}{
		{"nil map", nil, nil},
		{"nil values left out", &map[string]*string{"a": ptr("1"), "b": nil}, map[string]string{"a": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jsiivalue.StringMap(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("StringMap = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestIsUnresolved(t *testing.T) {
	for _, tc := range []struct {
		s    *string
		want bool
	}{
		{nil, false},
		{ptr("arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"), false},
		{ptr("${Token[TOKEN.123]}"), true},
		{ptr("arn:${Token[AWS.Partition.4]}:iam::111111111111:root"), true},
	} {
		if got := jsiivalue.IsUnresolved(tc.s); got != tc.want {
			t.Errorf("IsUnresolved(%v) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestString(t *testing.T) {
	if got := jsiivalue.String(nil); got != "" {
		t.Errorf("String(nil) = %q, want \"\"", got)
	}
	if got := jsiivalue.String(ptr("o-abcdefghij")); got != "o-abcdefghij" {
		t.Errorf("String(ptr) = %q", got)
	}
}

func TestShow(t *testing.T) {
	for in, want := range map[string]string{
		"us-east-1":                 `"us-east-1"`,
		"":                          `""`,
		"${Token[AWS.AccountId.2]}": "a value known only at deploy time",
		"arn:${Token[AWS.Partition.4]}:iam::111111111111:root": "a value known only at deploy time",
	} {
		if got := jsiivalue.Show(in); got != want {
			t.Errorf("Show(%q) = %q, want %q", in, got, want)
		}
	}
}

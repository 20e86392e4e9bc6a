package deref_test

import (
	"reflect"
	"testing"

	"github.com/crossaccountami/crossaccountami/constructs/internal/deref"
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
			if got := deref.Strings(tt.in); !reflect.DeepEqual(got, tt.want) {
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
			if got := deref.StringMap(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("StringMap = %#v, want %#v", got, tt.want)
			}
		})
	}
}

package copylifecycle

import (
	"testing"
	"time"
)

func TestDeadlineOf(t *testing.T) {
	m := &Machine{}
	signed := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	url := func(expires string) string {
		return "https://b.s3.amazonaws.com/k?X-Amz-Date=20261202T120000Z&X-Amz-Expires=" + expires + "&X-Amz-Signature=s"
	}
	for _, tc := range []struct {
		name string
		url  string
		wait time.Duration
		now  time.Time
		want time.Time
	}{
		{"ServiceTimeout after the signing time, less the answer margin", url("7200"), time.Hour, signed.Add(5 * time.Minute), signed.Add(time.Hour - 30*time.Second)},
		{"no later than the margin before the URL expires", url("1800"), time.Hour, signed.Add(time.Minute), signed.Add(30*time.Minute - 30*time.Second)},
		{"no signing time: from the arrival, less the event age bound", "https://b.s3.amazonaws.com/k?Signature=s", time.Hour, signed, signed.Add(time.Hour - 240*time.Second - 30*time.Second)},
		{"a Signature Version 2 expiry bounds it too", "https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIDEXAMPLE&Expires=1796214600&Signature=s", time.Hour, signed, signed.Add(30*time.Minute - 30*time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.deadlineOf(tc.url, tc.wait, tc.now); !got.Equal(tc.want) {
				t.Errorf("deadline %s, want %s", got, tc.want)
			}
		})
	}
}

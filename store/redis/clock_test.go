package redis

import (
	"testing"
	"time"
)

func TestParseClockOffset(t *testing.T) {
	for _, tc := range []struct {
		in  string
		d   time.Duration
		set bool
	}{
		{"", 0, false},
		{"1.5s", 1500 * time.Millisecond, true},
		{"-2s", -2 * time.Second, true},
		{"soon", 0, false},
	} {
		if d, set := parseClockOffset(tc.in); d != tc.d || set != tc.set {
			t.Errorf("parseClockOffset(%q) = %v, %v; want %v, %v", tc.in, d, set, tc.d, tc.set)
		}
	}
}

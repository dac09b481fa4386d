package cli

import (
	"math"
	"testing"
	"time"
)

func TestFmtDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{250 * time.Millisecond, "250ms"},
		{5825500 * time.Microsecond, "5.826s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m"},
		{90 * time.Minute, "1h30m"},
		{720 * time.Hour, "30d"},
		{36*time.Hour + 5*time.Second, "1d12h5s"},
		{time.Hour + 500*time.Millisecond, "1h500ms"},
		{-65 * time.Second, "-1m5s"},
		{math.MinInt64, "-106751d23h47m16.854775807s"}, // too large to round; must not recurse forever
	} {
		if got := fmtDuration(tc.d); got != tc.want {
			t.Errorf("fmtDuration(%d) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestRelativeTimes(t *testing.T) {
	t.Parallel()
	e := &env{now: func() time.Time { return testNow }}
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "-"},
		{testNow.Add(400 * time.Millisecond), "2025-06-01 12:00:00 UTC (now)"},
		{testNow.Add(90 * time.Second), "2025-06-01 12:01:30 UTC (in 1m30s)"},
		{testNow.Add(-(2*time.Hour + 5*time.Minute + 10*time.Second)), "2025-06-01 09:54:50 UTC (2h5m ago)"},
		{testNow.Add(29*24*time.Hour + 23*time.Hour + 40*time.Minute), "2025-07-01 11:40:00 UTC (in 30d)"},
		{time.Date(2025, 6, 1, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600)), "2025-06-01 12:00:00 UTC (now)"},
	} {
		if got := e.time(tc.t); got != tc.want {
			t.Errorf("time(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

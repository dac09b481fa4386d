package integration

import (
	"fmt"
	"net/http"
	"testing"
)

// In shadow mode, zone-level or handler-level, requests over the limit are
// served, and later handlers see {http.rate_limit.exceeded} = true.
func TestShadowServesAndReportsExceeded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, zoneOpt, handlerOpt string
	}{
		{"zone shadow", "shadow", ""},
		{"handler shadow", "", "shadow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Start(t, Config{Site: fmt.Sprintf(`
rate_limit {
	zone z {
		key static
		events 2
		window 10s
		%s
	}
	%s
}
respond "exceeded={http.rate_limit.exceeded} zone={http.rate_limit.zone}"`, tc.zoneOpt, tc.handlerOpt)})
			for i := range 5 {
				resp := c.Get(t, "/")
				if resp.Status != http.StatusOK {
					t.Fatalf("request %d: status %d in shadow mode, want 200 (body %q)", i+1, resp.Status, resp.Body)
				}
				want := "exceeded=false"
				if i >= 2 {
					want = "exceeded=true zone=z"
				}
				if resp.Body[:min(len(want), len(resp.Body))] != want {
					t.Errorf("request %d: body %q, want prefix %q", i+1, resp.Body, want)
				}
			}
		})
	}
}

// A shadow zone next to an enforcing one: the shadow zone never refuses, the
// enforcing zone still does.
func TestShadowZoneBesideEnforcingZone(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone watch {
		key static
		events 1
		window 10s
		shadow
	}
	zone enforce {
		key static
		events 3
		window 10s
	}
}
respond "exceeded={http.rate_limit.exceeded}"`})
	c.expectStatuses(t, "/", repeat(http.StatusOK, 3, http.StatusTooManyRequests))
}

package integration

import (
	"net/http"
	"testing"
)

func exemptSite(exempt string) Config {
	return Config{Site: `
rate_limit {
	zone z {
		key static
		events 1
		window 10s
	}
	` + exempt + `
}
respond "ok"`}
}

// An exempt CIDR covering the client skips every zone; one that does not
// cover it changes nothing.
func TestExemptCIDR(t *testing.T) {
	t.Parallel()
	t.Run("covering the client", func(t *testing.T) {
		t.Parallel()
		c := Start(t, exemptSite("exempt 127.0.0.1/32"))
		c.expectStatuses(t, "/", repeat(http.StatusOK, 10))
	})
	t.Run("not covering the client", func(t *testing.T) {
		t.Parallel()
		c := Start(t, exemptSite("exempt 10.0.0.0/8 192.0.2.0/24"))
		c.expectStatuses(t, "/", []int{http.StatusOK, http.StatusTooManyRequests})
	})
}

// Matcher exemptions apply only to the requests they match, and exempt
// requests are not charged.
func TestExemptMatcher(t *testing.T) {
	t.Parallel()
	c := Start(t, exemptSite(`exempt {
		header X-Internal yes
	}`))
	c.expectStatuses(t, "/", repeat(http.StatusOK, 10), "X-Internal", "yes")
	// The exempt requests charged nothing: the one allowed event is
	// still there.
	c.expectStatuses(t, "/", []int{http.StatusOK, http.StatusTooManyRequests})
	c.expectStatuses(t, "/", []int{http.StatusTooManyRequests}, "X-Internal", "no")
	c.expectStatuses(t, "/", repeat(http.StatusOK, 3), "X-Internal", "yes")
}

package integration

import (
	"net/http"
	"testing"
)

// count_if charges only responses that match: successful logins are free,
// failed ones count, and once they are spent every request is refused.
func TestCountIfChargesOnlyMatchingResponses(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone login {
		key static
		events 2
		window 10s
		count_if {
			status 401
		}
	}
}
route {
	respond /bad "denied" 401
	respond /good "welcome" 200
}`})
	c.expectStatuses(t, "/good", repeat(http.StatusOK, 10))
	c.expectStatuses(t, "/bad", []int{http.StatusUnauthorized, http.StatusUnauthorized})
	c.expectStatuses(t, "/good", []int{http.StatusTooManyRequests})
	c.expectStatuses(t, "/bad", []int{http.StatusTooManyRequests})
}

// count_if with a header matcher: only responses carrying the header count.
func TestCountIfHeader(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone z {
		key static
		events 1
		window 10s
		count_if {
			header X-Charge yes
		}
	}
}
route {
	header /paid X-Charge yes
	respond "ok"
}`})
	c.expectStatuses(t, "/free", repeat(http.StatusOK, 5))
	c.expectStatuses(t, "/paid", []int{http.StatusOK, http.StatusTooManyRequests})
	c.expectStatuses(t, "/free", []int{http.StatusTooManyRequests})
}

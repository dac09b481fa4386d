package integration

import (
	"net/http"
	"testing"
)

// A request refused by one zone charges no other zone: zone A (5 for
// everyone) keeps the units of the requests that zone B (2 per user) refused.
func TestDeniedRequestChargesNoZone(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone A {
		key static
		events 5
		window 10s
	}
	zone B {
		key {header.X-User}
		events 2
		window 10s
	}
}
respond "ok"`})

	// u1 spends B's 2 (and 2 of A's 5); B then refuses 3 more.
	c.expectStatuses(t, "/", repeat(http.StatusOK, 2, repeat(http.StatusTooManyRequests, 3)...), "X-User", "u1")

	// A must have exactly 3 left: u2 gets 2 (its B limit), u3 gets 1.
	c.expectStatuses(t, "/", repeat(http.StatusOK, 2), "X-User", "u2")
	last := c.Get(t, "/", "X-User", "u3")
	if last.Status != http.StatusOK {
		t.Fatalf("u3 first request: status %d, want 200: zone A was charged for refused requests", last.Status)
	}
	// A is now the most restrictive zone (0 left, B has 1 for u3).
	if rl := sfMember(t, last.Header, "RateLimit", "A"); rl.param(t, "r") != 0 {
		t.Errorf("RateLimit %q after A's last unit: want A r=0", last.Header.Values("RateLimit"))
	}
	// A is spent: everyone is refused, by zone A.
	denied := c.Get(t, "/", "X-User", "u3")
	if denied.Status != http.StatusTooManyRequests {
		t.Fatalf("u3 second request: status %d, want 429 (zone A spent)", denied.Status)
	}
	if rl := sfMember(t, denied.Header, "RateLimit", "A"); rl.param(t, "r") != 0 {
		t.Errorf("RateLimit %q on A's refusal: want A r=0", denied.Header.Values("RateLimit"))
	}
	c.expectStatuses(t, "/", []int{http.StatusTooManyRequests}, "X-User", "u4")
}

// A zone whose match block does not match the request is not consulted.
func TestZoneMatchScopesTheLimit(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone api {
		match {
			path /api/*
		}
		key static
		events 1
		window 10s
	}
}
respond "ok"`})
	c.expectStatuses(t, "/other", repeat(http.StatusOK, 5))
	c.expectStatuses(t, "/api/x", []int{http.StatusOK, http.StatusTooManyRequests})
	c.expectStatuses(t, "/other", repeat(http.StatusOK, 2))
}

package integration

import (
	"fmt"
	"net/http"
	"testing"
)

func headerSite(mode string) Config {
	return Config{Site: `
rate_limit {
	zone api {
		key static
		events 3
		window 2s
	}
	` + mode + `
}
respond "ok"`}
}

// checkIETF asserts the draft-ietf-httpapi-ratelimit-headers fields for zone
// api (q=3, w=2) with remaining r.
func checkIETF(t *testing.T, h http.Header, r int) {
	t.Helper()
	pol := sfMember(t, h, "RateLimit-Policy", "api")
	if q, w := pol.param(t, "q"), pol.param(t, "w"); q != 3 || w != 2 {
		t.Errorf("RateLimit-Policy %q: q=%d w=%d, want q=3 w=2", h.Values("RateLimit-Policy"), q, w)
	}
	rl := sfMember(t, h, "RateLimit", "api")
	if got := rl.param(t, "r"); got != r {
		t.Errorf("RateLimit %q: r=%d, want %d", h.Values("RateLimit"), got, r)
	}
	if tt := rl.param(t, "t"); tt < 1 || tt > 2 {
		t.Errorf("RateLimit %q: t=%d, want 1..2 (seconds until reset, rounded up)", h.Values("RateLimit"), tt)
	}
}

// checkLegacy asserts the X-RateLimit-* fields with remaining r.
func checkLegacy(t *testing.T, h http.Header, r int) {
	t.Helper()
	if got := h.Get("X-RateLimit-Limit"); got != "3" {
		t.Errorf("X-RateLimit-Limit = %q, want 3", got)
	}
	if got := mustAtoi(t, "X-RateLimit-Remaining", h.Get("X-RateLimit-Remaining")); got != r {
		t.Errorf("X-RateLimit-Remaining = %d, want %d", got, r)
	}
	if reset := mustAtoi(t, "X-RateLimit-Reset", h.Get("X-RateLimit-Reset")); reset < 1 || reset > 2 {
		t.Errorf("X-RateLimit-Reset = %d, want 1..2 seconds", reset)
	}
}

func checkAbsent(t *testing.T, h http.Header, fields ...string) {
	t.Helper()
	for _, f := range fields {
		if v := h.Values(f); len(v) > 0 {
			t.Errorf("unexpected header %s: %q", f, v)
		}
	}
}

// checkRetryAfter asserts a whole number of seconds in [lo, hi].
func checkRetryAfter(t *testing.T, h http.Header, lo, hi int) int {
	t.Helper()
	ra := h.Get("Retry-After")
	if ra == "" {
		t.Fatalf("429 without Retry-After; headers %v", h)
	}
	n := mustAtoi(t, "Retry-After", ra)
	if n < lo || n > hi {
		t.Errorf("Retry-After = %d, want %d..%d", n, lo, hi)
	}
	return n
}

// Each headers mode sets exactly its fields, on allowed and refused responses
// alike, with the remaining count going down.
func TestHeaderModes(t *testing.T) {
	t.Parallel()
	ietf := []string{"RateLimit", "RateLimit-Policy"}
	legacy := []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
	cases := []struct {
		name   string
		mode   string
		ietf   bool
		legacy bool
	}{
		{"default is ietf", "", true, false},
		{"ietf", "headers ietf", true, false},
		{"legacy", "headers legacy", false, true},
		{"ietf and legacy", "headers ietf legacy", true, true},
		{"none", "headers none", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Start(t, headerSite(tc.mode))
			for i := range 4 {
				resp := c.Get(t, "/")
				want, remaining := http.StatusOK, 2-i
				if i == 3 {
					want, remaining = http.StatusTooManyRequests, 0
				}
				if resp.Status != want {
					t.Fatalf("request %d: status %d, want %d", i+1, resp.Status, want)
				}
				t.Run(fmt.Sprintf("request %d", i+1), func(t *testing.T) {
					if tc.ietf {
						checkIETF(t, resp.Header, remaining)
					} else {
						checkAbsent(t, resp.Header, ietf...)
					}
					if tc.legacy {
						checkLegacy(t, resp.Header, remaining)
					} else {
						checkAbsent(t, resp.Header, legacy...)
					}
					if resp.Status == http.StatusTooManyRequests && tc.mode != "headers none" {
						checkRetryAfter(t, resp.Header, 1, 2)
					}
				})
			}
		})
	}
}

// Retry-After and the RateLimit t parameter round a fractional number of
// seconds up: 1.5s is 2, never 1.
func TestRetryAfterRoundsUp(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone z {
		key static
		events 1
		window 1500ms
	}
}
respond "ok"`})
	first := c.Get(t, "/")
	if first.Status != http.StatusOK {
		t.Fatalf("first request: status %d", first.Status)
	}
	if tt := sfMember(t, first.Header, "RateLimit", "z").param(t, "t"); tt != 2 {
		t.Errorf("RateLimit t=%d after the only event of a 1.5s window, want 2 (rounded up)", tt)
	}
	denied := c.Get(t, "/")
	if denied.Status != http.StatusTooManyRequests {
		t.Fatalf("second request: status %d, want 429", denied.Status)
	}
	checkRetryAfter(t, denied.Header, 2, 2)
}

// jitter adds up to the given fraction to Retry-After, never subtracts.
func TestRetryAfterJitter(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone z {
		key {header.X-Client}
		events 1
		window 2s
	}
	jitter 0.5
}
respond "ok"`})
	seen := map[int]int{}
	for i := range 20 {
		client := fmt.Sprintf("client-%d", i)
		c.expectStatuses(t, "/", []int{http.StatusOK}, "X-Client", client)
		denied := c.Get(t, "/", "X-Client", client)
		if denied.Status != http.StatusTooManyRequests {
			t.Fatalf("%s second request: status %d, want 429", client, denied.Status)
		}
		// Base is ceil(2s - a few ms) = 2; up to 50% more is at most 3.
		seen[checkRetryAfter(t, denied.Header, 2, 3)]++
	}
	if seen[3] == 0 {
		t.Errorf("Retry-After values %v: jitter 0.5 never moved a value above the base of 2s", seen)
	}
}

package integration

import (
	"net/http"
	"testing"
	"time"
)

// The caddy-ratelimit form (events + window, sliding log) admits exactly the
// limit, refuses the rest with 429, and admits again once the window has
// moved past the first request.
func TestEventsWindowAdmitsLimitThenRecovers(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone z {
		key static
		events 3
		window 2s
	}
}
respond "ok"`})

	first := time.Now()
	c.expectStatuses(t, "/", repeat(http.StatusOK, 3, http.StatusTooManyRequests, http.StatusTooManyRequests))

	// Denied polls charge nothing, so the first slot frees 2s after the
	// first request, not later.
	c.pollStatus(t, "/", http.StatusOK, 5*time.Second)
	if waited := time.Since(first); waited < 1500*time.Millisecond {
		t.Fatalf("admitted again %s after the first request; the window is 2s", waited)
	} else if waited > 3500*time.Millisecond {
		t.Fatalf("admitted again only %s after the first request; the window is 2s", waited)
	}
}

// Every exact algorithm admits exactly the limit from an idle key, then
// refuses.
func TestAlgorithmsAdmitExactlyTheLimit(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"sliding_log", "gcra", "token_bucket", "fixed_window", "sliding_window"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			// An hour-long window: a fixed window boundary falls inside
			// the test only by a very unlucky draw.
			c := Start(t, Config{Site: `
rate_limit {
	zone z {
		key {header.X-Key}
		algorithm ` + alg + `
		limit 4 1h
	}
}
respond "ok"`})
			c.expectStatuses(t, "/", repeat(http.StatusOK, 4, http.StatusTooManyRequests), "X-Key", "a")
			// Keys are independent.
			c.expectStatuses(t, "/", repeat(http.StatusOK, 4, http.StatusTooManyRequests), "X-Key", "b")
		})
	}
}

// `limit <n> <window>` alone means GCRA: with the default burst of n, an idle
// key gets n at once, and then one more every window/n.
func TestLimitShortFormIsGCRA(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `
rate_limit {
	zone z {
		key static
		limit 2 2s
	}
}
respond "ok"`})
	start := time.Now()
	c.expectStatuses(t, "/", repeat(http.StatusOK, 2, http.StatusTooManyRequests))
	// GCRA frees one unit after window/limit = 1s (a sliding log would
	// wait the full 2s).
	c.pollStatus(t, "/", http.StatusOK, 4*time.Second)
	if waited := time.Since(start); waited < 700*time.Millisecond || waited > 1800*time.Millisecond {
		t.Fatalf("one unit freed after %s, want about 1s", waited)
	}
	c.expectStatuses(t, "/", []int{http.StatusTooManyRequests})
}

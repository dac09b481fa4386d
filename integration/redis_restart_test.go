package integration

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

const (
	restartLimit    = 10
	restartCooldown = time.Second
	restartOutage   = time.Second
	// recoverWithin bounds how long after Redis is back the instances may
	// take to decide with it again: the breaker's cool-down and then some.
	recoverWithin = 10 * time.Second
)

// restartSite limits every request but /warm per X-Key, exactly (sliding
// log) over a window longer than the test.
var restartSite = fmt.Sprintf(`handle /warm {
	respond "warm"
}
handle {
	rate_limit {
		zone r {
			key {header.X-Key}
			algorithm sliding_log
			limit %d 1m
		}
		headers ietf
	}
	respond "ok"
}`, restartLimit)

// Redis restarting with no persistence, under traffic: while it is down
// every request follows on_failure, and once it is back the instances
// enforce limits with it again, without a reload. Nothing answers with any
// other status, and no request fails.
func TestRedisRestartUnderTraffic(t *testing.T) {
	for _, tc := range []struct {
		policy string
		status int // what a fresh key gets while Redis is down
		// outage lists the statuses a busy key may get while Redis is down.
		outage []int
	}{
		{"allow", http.StatusOK, []int{http.StatusOK}},
		{"deny", http.StatusServiceUnavailable, []int{http.StatusServiceUnavailable}},
		// Each instance limits on its own: at most the limit each.
		{"local", http.StatusOK, []int{http.StatusOK, http.StatusTooManyRequests}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			first := startRedis(t, 0)
			insts := startInstances(t, 3, Config{
				Global: redisStore(first, "restart-"+tc.policy+":", time.Second,
					"on_failure "+tc.policy, "breaker_cooldown "+restartCooldown.String()),
				Site: restartSite,
			})
			stop := make(chan struct{})
			bg := make(chan loadResult, 1)
			go func() {
				bg <- runLoad(insts, load{clients: 30, duration: 30 * time.Second, maxPerClient: 20000,
					path: "/", headers: []string{"X-Key", "bg"}, zone: "r"}, stop)
			}()
			stopped := false
			finish := func() loadResult {
				if !stopped {
					stopped = true
					close(stop)
				}
				return <-bg
			}
			defer func() {
				if !stopped {
					finish()
				}
			}()

			time.Sleep(300 * time.Millisecond)
			expectExactly(t, insts, "before", restartLimit)

			killing := time.Now()
			first.Kill()
			killed := time.Now()
			time.Sleep(restartOutage / 2)
			for i, c := range insts {
				resp := c.Get(t, "/", "X-Key", "outage")
				if resp.Status != tc.status {
					t.Errorf("instance %d with Redis down: status %d, want %d", i, resp.Status, tc.status)
				}
				if tc.status == http.StatusServiceUnavailable {
					if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
						t.Errorf("instance %d with Redis down: Retry-After %q, want whole seconds ≥ 1", i, resp.Header.Get("Retry-After"))
					}
				}
			}
			time.Sleep(restartOutage / 2)

			restarting := time.Now()
			startRedis(t, first.Port)
			up := time.Now()
			recovered := awaitEnforcement(t, insts, up)
			t.Logf("Redis down for %s; instances enforced limits again %s after it answered PING",
				up.Sub(killing).Round(time.Millisecond), recovered.Sub(up).Round(time.Millisecond))
			expectExactly(t, insts, "after", restartLimit)
			time.Sleep(300 * time.Millisecond)

			res := finish()
			checkRestartTraffic(t, res, tc.policy, tc.outage, killing, killed, restarting, recovered)
		})
	}
}

// expectExactly sends 2·limit requests for key round-robin over insts and
// fails unless exactly the first limit are admitted.
func expectExactly(t *testing.T, insts []*Caddy, key string, limit int) {
	t.Helper()
	got := exactlyStatuses(t, insts, key, limit)
	if want := repeat(http.StatusOK, limit, repeat(http.StatusTooManyRequests, limit)...); !slices.Equal(got, want) {
		t.Fatalf("key %q over %d instances: statuses %v, want %v", key, len(insts), got, want)
	}
}

func exactlyStatuses(t *testing.T, insts []*Caddy, key string, limit int) []int {
	t.Helper()
	got := make([]int, 2*limit)
	for i := range got {
		got[i] = insts[i%len(insts)].Get(t, "/", "X-Key", key).Status
	}
	return got
}

// awaitEnforcement polls with fresh keys until every instance enforces the
// limit exactly again, and returns when that was first seen.
func awaitEnforcement(t *testing.T, insts []*Caddy, since time.Time) time.Time {
	t.Helper()
	want := repeat(http.StatusOK, restartLimit, repeat(http.StatusTooManyRequests, restartLimit)...)
	var got []int
	for n := 0; time.Since(since) < recoverWithin; n++ {
		got = exactlyStatuses(t, insts, fmt.Sprintf("probe-%d", n), restartLimit)
		if slices.Equal(got, want) {
			return time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("limits not enforced within %s of Redis restarting; last probe %v", recoverWithin, got)
	return time.Time{}
}

// checkRestartTraffic classifies the background requests by when they were
// sent: before the kill only 200 and 429; while Redis was certainly down
// only the policy's statuses (under "local", at most the limit admitted by
// each instance); after recovery only 200 and 429 again, with at most the
// limit admitted (the new Redis started empty); in between, any of them.
// Transport errors fail.
func checkRestartTraffic(t *testing.T, res loadResult, policy string, outage []int, killing, killed, restarting, recovered time.Time) {
	t.Helper()
	localAdmitted := map[int]int{}
	phases := []string{"before", "outage", "restart", "after"}
	counts := map[string]map[int]int{}
	for _, p := range phases {
		counts[p] = map[int]int{}
	}
	for _, s := range res.samples {
		phase := "restart"
		switch {
		case s.recv.Before(killing):
			phase = "before"
		case !s.sent.Before(killed) && s.recv.Before(restarting):
			phase = "outage"
		case !s.sent.Before(recovered):
			phase = "after"
		}
		counts[phase][s.status]++
		if phase == "outage" && s.status == http.StatusOK {
			localAdmitted[s.inst]++
		}
	}
	for _, p := range phases {
		t.Logf("background %s: statuses %v", p, counts[p])
	}
	if res.errs > 0 {
		t.Errorf("%d background requests failed; first: %v", res.errs, res.firstErr)
	}
	allowed := map[string][]int{
		"before":  {http.StatusOK, http.StatusTooManyRequests},
		"outage":  outage,
		"restart": append([]int{http.StatusOK, http.StatusTooManyRequests}, outage...),
		"after":   {http.StatusOK, http.StatusTooManyRequests},
	}
	for _, p := range phases {
		for status, n := range counts[p] {
			if !slices.Contains(allowed[p], status) {
				t.Errorf("background %s: %d requests answered %d, want only %v", p, n, status, allowed[p])
			}
		}
	}
	if len(counts["outage"]) == 0 {
		t.Errorf("no background request was decided while Redis was down")
	}
	if policy == "local" {
		t.Logf("background outage: admitted per instance %v", localAdmitted)
		for inst, n := range localAdmitted {
			if n > restartLimit {
				t.Errorf("instance %d admitted the background key %d times on its own while Redis was down, limit %d", inst, n, restartLimit)
			}
		}
	}
	if n := counts["after"][http.StatusOK]; n > restartLimit {
		t.Errorf("background key admitted %d times after recovery, limit %d", n, restartLimit)
	}
	if n := counts["before"][http.StatusOK]; n > restartLimit {
		t.Errorf("background key admitted %d times before the kill, limit %d", n, restartLimit)
	}
}

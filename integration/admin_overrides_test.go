package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/control"
)

// sharedZoneSite has one zone, "shared", with one counter for every request
// (key static): 2 a minute, sliding log, so a lifted limit admits exactly
// the difference.
func sharedZoneSite(body string) string {
	return fmt.Sprintf(`rate_limit {
	zone shared {
		key static
		events 2
		window 1m
	}
}
respond %q`, body)
}

// effectiveLimit is the zone's limit after overrides, as instance a reports
// it.
func effectiveLimit(t testing.TB, a *adminAPI, zone string) int64 {
	t.Helper()
	var z control.ZoneInfo
	a.call(t, http.StatusOK, "GET", "/zones/"+zone, nil).decode(t, &z)
	return z.Effective.Limit
}

// A zone override set on instance A is applied by instance B within a
// second, survives a config reload that keeps the zone, and its removal on
// B reaches A just as fast.
func TestAdminOverrideAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := startRedis(t, 0)
	cfg := func(body string) Config {
		return Config{Global: redisControl(srv, "override:"), Site: sharedZoneSite(body)}
	}
	insts := startInstances(t, 2, cfg("v1"))
	a, b := newAdminAPI(t, insts[0]), newAdminAPI(t, insts[1])
	insts[1].expectStatuses(t, "/", []int{200, 200, 429})

	start := time.Now()
	a.call(t, http.StatusOK, "PUT", "/zones/shared/override", `{"limit":5}`)
	// A refused request charges nothing, so polling costs no quota.
	pollUntil(t, 5*time.Second, "B admitting under A's override", func() bool {
		return insts[1].Get(t, "/").Status == http.StatusOK
	})
	took := time.Since(start)
	t.Logf("B applied A's override %s after the request was sent", took.Round(time.Millisecond))
	if took >= time.Second {
		t.Errorf("B applied the override after %s, want under 1s", took)
	}
	insts[1].expectStatuses(t, "/", []int{200, 200, 429}) // 5 in all
	if got := effectiveLimit(t, b, "shared"); got != 5 {
		t.Errorf("B's effective limit %d, want 5", got)
	}

	// A reload of both that keeps the zone keeps the override.
	for _, c := range insts {
		c.Reload(t, cfg("v2"))
	}
	var ovs struct {
		ZoneOverrides []control.ZoneOverride `json:"zone_overrides"`
	}
	b.call(t, http.StatusOK, "GET", "/overrides", nil).decode(t, &ovs)
	if len(ovs.ZoneOverrides) != 1 || ovs.ZoneOverrides[0].Limit == nil || *ovs.ZoneOverrides[0].Limit != 5 {
		t.Fatalf("overrides after reload: %+v", ovs)
	}
	b.call(t, http.StatusOK, "DELETE", "/zones/shared/keys?key=static", nil)
	if r := insts[1].Get(t, "/"); r.Status != http.StatusOK || r.Body != "v2" {
		t.Errorf("after reload: %d %q, want 200 v2", r.Status, r.Body)
	}
	insts[1].expectStatuses(t, "/", repeat(http.StatusOK, 4, http.StatusTooManyRequests))

	// Removed on B, gone on A within a second.
	start = time.Now()
	b.call(t, http.StatusNoContent, "DELETE", "/zones/shared/override", nil)
	pollUntil(t, 5*time.Second, "A dropping the override removed on B", func() bool {
		return effectiveLimit(t, a, "shared") == 2
	})
	if took := time.Since(start); took >= time.Second {
		t.Errorf("A dropped the override after %s, want under 1s", took)
	}
	a.call(t, http.StatusOK, "DELETE", "/zones/shared/keys?key=static", nil)
	insts[0].expectStatuses(t, "/", []int{200, 200, 429})
}

// keptStateSite has a zone with a zone override target (/z), a zone keyed
// per client for a key override (/c), and required API keys (/k).
func keptStateSite(body string) string {
	return fmt.Sprintf(`handle /z {
	rate_limit {
		zone per_zone {
			key static
			events 2
			window 1m
		}
	}
	respond %[1]q
}
handle /c {
	rate_limit {
		zone per_client {
			key {header.X-Client}
			events 2
			window 1m
		}
	}
	respond %[1]q
}
handle /k {
	rate_limit {
		api_key {
			header X-API-Key
			require
		}
		zone per_api_key {
			key {http.rate_limit.api_key.id}
			limit 100 1m
		}
	}
	respond %[1]q
}`, body)
}

// With the memory store, overrides and API keys live in Caddy's storage:
// they survive a reload and a restart of the process, and apply to the
// fresh counters of the new process.
func TestAdminOverridesSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := StartIn(t, dir, Config{Site: keptStateSite("v1")})
	a := newAdminAPI(t, c)
	a.call(t, http.StatusOK, "PUT", "/zones/per_zone/override", `{"limit":4}`)
	a.call(t, http.StatusOK, "PUT", "/zones/per_client/keys/override", `{"key":"vip","limit":3}`)
	kept := a.createKey(t, "kept")
	gone := a.createKey(t, "gone")
	a.call(t, http.StatusOK, "POST", "/keys/"+gone.Key.ID+"/revoke", nil)

	check := func(c *Caddy, when string) {
		t.Helper()
		c.expectStatuses(t, "/z", repeat(http.StatusOK, 4, http.StatusTooManyRequests))
		c.expectStatuses(t, "/c", repeat(http.StatusOK, 3, http.StatusTooManyRequests), "X-Client", "vip")
		c.expectStatuses(t, "/c", repeat(http.StatusOK, 2, http.StatusTooManyRequests), "X-Client", "plain-"+when)
		if r := c.Get(t, "/k", "X-API-Key", kept.Secret); r.Status != http.StatusOK {
			t.Errorf("%s: kept key: %d %q", when, r.Status, r.Body)
		}
		r := c.Get(t, "/k", "X-API-Key", gone.Secret)
		if r.Status != http.StatusUnauthorized || unauthorizedReason(t, r) != "revoked" {
			t.Errorf("%s: revoked key: %d %q", when, r.Status, r.Body)
		}
	}
	check(c, "before")

	// A reload keeps the counters (memory store) and the overrides: the
	// quota used above stays used.
	c.Reload(t, Config{Site: keptStateSite("v2")})
	c.expectStatuses(t, "/z", []int{http.StatusTooManyRequests})
	if got := effectiveLimit(t, a, "per_zone"); got != 4 {
		t.Errorf("effective limit after reload: %d, want 4", got)
	}

	// A restart forgets the counters, not the overrides or the keys.
	c = c.Restart(t, Config{Site: keptStateSite("v3")})
	a = newAdminAPI(t, c)
	var ovs struct {
		ZoneOverrides []control.ZoneOverride `json:"zone_overrides"`
		KeyOverrides  []control.KeyOverride  `json:"key_overrides"`
	}
	a.call(t, http.StatusOK, "GET", "/overrides", nil).decode(t, &ovs)
	if len(ovs.ZoneOverrides) != 1 || len(ovs.KeyOverrides) != 1 {
		t.Fatalf("overrides after restart: %+v", ovs)
	}
	var keys []control.KeyInfo
	a.call(t, http.StatusOK, "GET", "/keys", nil).decode(t, &keys)
	if len(keys) != 2 || keys[0].ID != kept.Key.ID || keys[1].Status != "revoked" {
		t.Errorf("keys after restart: %+v", keys)
	}
	if r := c.Get(t, "/z"); r.Body != "v3" {
		t.Errorf("after restart: body %q, want v3", r.Body)
	}
	a.call(t, http.StatusOK, "DELETE", "/zones/per_zone/keys?key=static", nil)
	check(c, "after")
}

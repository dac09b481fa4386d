package integration

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/control"
)

// clientZoneSite has one zone of 2 a minute per X-Client.
const clientZoneSite = `rate_limit {
	zone per_client {
		key {header.X-Client}
		events 2
		window 1m
	}
}
respond "ok"`

// Inspecting a key that has used its quota says what a request would get
// now: not allowed, with the wait, as explain and the next real request
// say. (KeyState.allowed: "whether a request of cost 1 would be allowed
// now"; docs/cli.md shows "Allowed now: no" with "Retry after: 1m5s".)
func TestAdminInspectOfExhaustedKey(t *testing.T) {
	t.Parallel()
	srv := startRedis(t, 0)
	for _, tc := range []struct{ name, global string }{
		{"memory", ""},
		{"redis", redisControl(srv, "inspect:")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Start(t, Config{Global: tc.global, Site: clientZoneSite})
			a := newAdminAPI(t, c)
			c.expectStatuses(t, "/", []int{200, 200}, "X-Client", "spent")

			var st control.KeyState
			a.call(t, http.StatusOK, "GET", "/zones/per_client/keys?key=spent", nil).decode(t, &st)
			var ex control.Explanation
			a.call(t, http.StatusOK, "POST", "/explain", map[string]any{
				"method": "GET", "url": c.URL + "/", "headers": map[string][]string{"X-Client": {"spent"}},
			}).decode(t, &ex)
			if len(ex.Zones) != 1 || ex.Zones[0].Decision != "denied" {
				t.Fatalf("explain: %+v", ex)
			}
			c.expectStatuses(t, "/", []int{429}, "X-Client", "spent")

			if st.Remaining != 0 || st.Limit != 2 {
				t.Errorf("inspect: remaining %d of %d, want 0 of 2", st.Remaining, st.Limit)
			}
			if st.Allowed {
				t.Errorf("inspect says allowed for a key whose next request is refused: %+v", st)
			}
			if wait := time.Duration(st.RetryAfter); wait < 50*time.Second || wait > time.Minute {
				t.Errorf("inspect: retry_after %s, want about a minute (explain says %s)", wait, time.Duration(ex.Zones[0].RetryAfter))
			}
		})
	}
}

// Explain follows Caddy's routing: of mutually exclusive handle blocks,
// only the one a request would run has its zones explained, so a request
// to /open is not reported as needing the API key that only the other
// block requires.
func TestAdminExplainFollowsHandleBlocks(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: openapiSite})
	if r := c.Get(t, "/open"); r.Status != http.StatusOK || r.Body != "open" {
		t.Fatalf("GET /open: %d %q (the API key block must not run)", r.Status, r.Body)
	}
	for path, want := range map[string]string{"/open": "per_ip", "/v1/items": "per_key"} {
		// Unvalidated: the decision's shape is
		// TestAdminOpenAPIExplainWithoutRequiredKey's business.
		var ex control.Explanation
		body := explainRaw(t, c, map[string]any{"method": "GET", "url": c.URL + path})
		if err := json.Unmarshal([]byte(body), &ex); err != nil {
			t.Fatalf("explain %s: %v: %s", path, err, body)
		}
		var zones []string
		for _, z := range ex.Zones {
			zones = append(zones, z.Zone)
		}
		if len(zones) != 1 || zones[0] != want {
			t.Errorf("explain %s: zones %v, want only [%s] (the handle block it runs)", path, zones, want)
		}
		if path == "/open" && (ex.APIKey != nil || ex.Decision != "allowed") {
			t.Errorf("explain /open: api_key %+v, decision %q; a real request passes without a key", ex.APIKey, ex.Decision)
		}
	}
}

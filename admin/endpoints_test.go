package admin

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/control"
)

const v1 = "/rate_limit/v1"

// createKey creates an API key through the API and returns the response.
func (h *harness) createKey(t testing.TB, body string) issuedKey {
	t.Helper()
	r := h.doT(t, http.MethodPost, v1+"/keys", body)
	if r.status != http.StatusCreated {
		t.Fatalf("creating a key: %d %s", r.status, r.body)
	}
	var out issuedKey
	r.json(t, &out)
	return out
}

func int64p(v int64) *int64 { return &v }

// TestEndpoints pins every endpoint's status, content type and body shape.
// harness.do also validates every response against the OpenAPI document.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		// setup prepares the backend and returns what replaces {id} in path.
		setup  func(t *testing.T, h *harness) string
		method string
		path   string
		body   string
		status int
		check  func(t *testing.T, h *harness, r response)
	}
	setZone := func(t *testing.T, h *harness) string {
		if _, _, err := h.fb.ovs.SetZone(context.Background(), control.ZoneOverride{Zone: "api", Limit: int64p(7)}); err != nil {
			t.Fatal(err)
		}
		return ""
	}
	setKey := func(t *testing.T, h *harness) string {
		if _, _, err := h.fb.ovs.SetKey(context.Background(), control.KeyOverride{Zone: "api", KeyHash: testKeyHash("api", "alice"), Limit: int64p(3)}); err != nil {
			t.Fatal(err)
		}
		return ""
	}
	newKey := func(t *testing.T, h *harness) string {
		return h.createKey(t, `{"name":"ci","tier":"gold","labels":{"team":"ops"}}`).Key.ID
	}
	revokedKey := func(t *testing.T, h *harness) string {
		id := newKey(t, h)
		if _, _, err := h.fb.keys.Revoke(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, c := range []tc{
		{name: "version", method: "GET", path: "/version", status: 200, check: func(t *testing.T, _ *harness, r response) {
			if string(r.body) != `{"api":"v1"}` {
				t.Errorf("body %s", r.body)
			}
		}},
		{name: "openapi document is the embedded one", method: "GET", path: "/openapi.json", status: 200, check: func(t *testing.T, _ *harness, r response) {
			if !bytes.Equal(r.body, openapiJSON) {
				t.Error("served document differs from admin/openapi.json")
			}
		}},
		{name: "health ok", method: "GET", path: "/health", status: 200, check: func(t *testing.T, _ *harness, r response) {
			var hl control.Health
			r.json(t, &hl)
			if hl.Status != "ok" || len(hl.Stores) != 1 {
				t.Errorf("health %+v", hl)
			}
		}},
		{name: "health unavailable is 503 with the health body", setup: func(t *testing.T, h *harness) string {
			h.fb.health = control.Health{Status: "unavailable", Stores: map[string]control.StoreHealth{"r": {Name: "r", Needed: true}}}
			return ""
		}, method: "GET", path: "/health", status: 503, check: func(t *testing.T, _ *harness, r response) {
			var hl control.Health
			r.json(t, &hl)
			if hl.Status != "unavailable" || !hl.Stores["r"].Needed {
				t.Errorf("health %+v", hl)
			}
		}},
		{name: "zones list with servers never null", method: "GET", path: "/zones", status: 200, check: func(t *testing.T, _ *harness, r response) {
			if !strings.Contains(string(r.body), `"servers":[]`) || !strings.HasPrefix(string(r.body), `[{"name":"api"`) {
				t.Errorf("body %s", r.body)
			}
		}},
		{name: "zone", method: "GET", path: "/zones/api", status: 200},
		{name: "zone with its override", setup: setZone, method: "GET", path: "/zones/api", status: 200, check: func(t *testing.T, _ *harness, r response) {
			var z control.ZoneInfo
			r.json(t, &z)
			if z.Override == nil || *z.Override.Limit != 7 {
				t.Errorf("zone %+v", z)
			}
		}},
		{name: "unknown zone", method: "GET", path: "/zones/nope", status: 404},
		{name: "zone name with an escaped slash", method: "GET", path: "/zones/a%2Fb", status: 404},
		{name: "zone name too long", method: "GET", path: "/zones/" + strings.Repeat("z", 121), status: 400},
		{name: "trailing slash", method: "GET", path: "/keys/", status: 404},
		{name: "set zone override with ttl", method: "PUT", path: "/zones/api/override", body: `{"limit":50,"mode":"shadow","ttl":"90m"}`, status: 200,
			check: func(t *testing.T, h *harness, r response) {
				var ov control.ZoneOverride
				r.json(t, &ov)
				if ov.Zone != "api" || *ov.Limit != 50 || ov.Mode != "shadow" || !ov.ExpiresAt.Equal(testNow.Add(90*time.Minute)) {
					t.Errorf("override %+v", ov)
				}
				if got := h.fb.ovs.Zone("api"); got == nil || *got.Limit != 50 {
					t.Errorf("registry has %+v", got)
				}
			}},
		{name: "set zone override with expires_at", method: "PUT", path: "/zones/api/override", body: `{"enabled":false,"expires_at":"2031-01-01T00:00:00Z"}`, status: 200},
		{name: "override of an unknown zone", method: "PUT", path: "/zones/nope/override", body: `{"limit":5}`, status: 404,
			check: func(t *testing.T, h *harness, _ response) {
				if zs, _ := h.fb.ovs.List(); len(zs) != 0 {
					t.Errorf("overrides %+v", zs)
				}
			}},
		{name: "remove zone override", setup: setZone, method: "DELETE", path: "/zones/api/override", status: 204,
			check: func(t *testing.T, h *harness, r response) {
				if len(r.body) != 0 || h.fb.ovs.Zone("api") != nil {
					t.Errorf("body %q, override %+v", r.body, h.fb.ovs.Zone("api"))
				}
			}},
		{name: "remove a zone override that is not there", method: "DELETE", path: "/zones/api/override", status: 404},
		{name: "inspect", method: "GET", path: "/zones/api/keys?key=alice", status: 200, check: func(t *testing.T, _ *harness, r response) {
			var st control.KeyState
			r.json(t, &st)
			if st.KeyHash != testKeyHash("api", "alice") || st.Remaining != 99 {
				t.Errorf("state %+v", st)
			}
		}},
		{name: "inspect without a key", method: "GET", path: "/zones/api/keys", status: 400, check: func(t *testing.T, _ *harness, r response) {
			if p := r.problem(t, 400); len(p.Errors) != 1 || p.Errors[0].Parameter != "key" {
				t.Errorf("problem %+v", p)
			}
		}},
		{name: "inspect in an unknown zone", method: "GET", path: "/zones/nope/keys?key=alice", status: 404},
		{name: "inspect by key hash", method: "GET", path: "/zones/api/keys?key_hash=" + testKeyHash("api", "bob"), status: 200, check: func(t *testing.T, _ *harness, r response) {
			var st control.KeyState
			r.json(t, &st)
			if st.KeyHash != testKeyHash("api", "bob") {
				t.Errorf("state %+v", st)
			}
		}},
		{name: "inspect with both key and key_hash", method: "GET", path: "/zones/api/keys?key=a&key_hash=" + testKeyHash("api", "a"), status: 400},
		{name: "inspect with a malformed key_hash", method: "GET", path: "/zones/api/keys?key_hash=xyz", status: 400},
		{name: "reset by key hash", method: "DELETE", path: "/zones/api/keys?key_hash=" + testKeyHash("api", "bob"), status: 200},
		{name: "top keys", method: "GET", path: "/zones/api/top?n=1", status: 200, check: func(t *testing.T, _ *harness, r response) {
			var top control.TopKeys
			r.json(t, &top)
			if top.Zone != "api" || top.Total != 9 || len(top.Keys) != 1 || top.Keys[0].Count != 7 {
				t.Errorf("top %+v", top)
			}
		}},
		{name: "top keys of an unknown zone", method: "GET", path: "/zones/nope/top", status: 404},
		{name: "top keys with n out of range", method: "GET", path: "/zones/api/top?n=65", status: 400},
		{name: "reset answers the state before", method: "DELETE", path: "/zones/api/keys?key=alice", status: 200, check: func(t *testing.T, _ *harness, r response) {
			var st control.KeyState
			r.json(t, &st)
			if st.KeyHash != testKeyHash("api", "alice") {
				t.Errorf("state %+v", st)
			}
		}},
		{name: "set key override, key in the body", method: "PUT", path: "/zones/api/keys/override", body: `{"key":"alice","multiplier":2.5,"burst":4}`, status: 200,
			check: func(t *testing.T, h *harness, r response) {
				var ov control.KeyOverride
				r.json(t, &ov)
				if ov.KeyHash != testKeyHash("api", "alice") || *ov.Multiplier != 2.5 || strings.Contains(string(r.body), "alice") {
					t.Errorf("override %s", r.body)
				}
				if _, keys := h.fb.ovs.List(); len(keys) != 1 {
					t.Errorf("registry has %+v", keys)
				}
			}},
		{name: "set key override, key in the query", method: "PUT", path: "/zones/api/keys/override?key=bob", body: `{"limit":9}`, status: 200},
		{name: "key override with the key twice", method: "PUT", path: "/zones/api/keys/override?key=bob", body: `{"key":"bob","limit":9}`, status: 400},
		{name: "key override without a key", method: "PUT", path: "/zones/api/keys/override", body: `{"limit":9}`, status: 400},
		{name: "key override in an unknown zone", method: "PUT", path: "/zones/nope/keys/override", body: `{"key":"a","limit":9}`, status: 404},
		{name: "remove key override", setup: setKey, method: "DELETE", path: "/zones/api/keys/override?key=alice", status: 204},
		{name: "remove a key override that is not there", method: "DELETE", path: "/zones/api/keys/override?key=alice", status: 404},
		{name: "overrides list is never null", method: "GET", path: "/overrides", status: 200, check: func(t *testing.T, _ *harness, r response) {
			if string(r.body) != `{"zone_overrides":[],"key_overrides":[]}` {
				t.Errorf("body %s", r.body)
			}
		}},
		{name: "overrides list", setup: func(t *testing.T, h *harness) string { setZone(t, h); return setKey(t, h) },
			method: "GET", path: "/overrides", status: 200, check: func(t *testing.T, _ *harness, r response) {
				var l overrideList
				r.json(t, &l)
				if len(l.ZoneOverrides) != 1 || len(l.KeyOverrides) != 1 {
					t.Errorf("list %+v", l)
				}
			}},
		{name: "explain", method: "POST", path: "/explain", body: `{"method":"GET","url":"https://example.com/v1/x","headers":{"X-A":["1"]},"remote_addr":"203.0.113.7:1"}`, status: 200},
		{name: "explain with a field the backend refuses", method: "POST", path: "/explain", body: `{"method":"GET","url":"https://example.com/","server":"other"}`, status: 400,
			check: func(t *testing.T, _ *harness, r response) {
				if p := r.problem(t, 400); p.Field == nil || *p.Field != "/server" {
					t.Errorf("problem %+v", p)
				}
			}},
		{name: "list keys without any", method: "GET", path: "/keys", status: 200, check: func(t *testing.T, _ *harness, r response) {
			if string(r.body) != `[]` {
				t.Errorf("body %s", r.body)
			}
		}},
		{name: "create key", method: "POST", path: "/keys", body: `{"name":"ci","owner":"ops","expires_at":"2031-01-01T00:00:00Z"}`, status: 201,
			check: func(t *testing.T, h *harness, r response) {
				var k issuedKey
				r.json(t, &k)
				if !strings.HasPrefix(k.Secret, "rwk_") || k.Key.Status != "active" || r.header.Get("Location") != v1+"/keys/"+k.Key.ID {
					t.Errorf("key %+v, location %q", k, r.header.Get("Location"))
				}
				if r.header.Get("Cache-Control") != "no-store" {
					t.Error("a secret response must not be cached")
				}
				if _, res := h.fb.keys.Lookup(k.Secret); res != control.LookupOK {
					t.Errorf("the new secret looks up as %v", res)
				}
			}},
		{name: "get key", setup: newKey, method: "GET", path: "/keys/{id}", status: 200, check: func(t *testing.T, _ *harness, r response) {
			var k control.KeyInfo
			r.json(t, &k)
			if k.Name != "ci" || k.Tier != "gold" || k.Labels["team"] != "ops" {
				t.Errorf("key %+v", k)
			}
		}},
		{name: "unknown key", method: "GET", path: "/keys/AAAAAAAAAAAA", status: 404},
		{name: "list keys", setup: newKey, method: "GET", path: "/keys", status: 200, check: func(t *testing.T, _ *harness, r response) {
			if !strings.HasPrefix(string(r.body), `[{"id":`) || strings.Contains(string(r.body), "rwk_") {
				t.Errorf("body %s", r.body)
			}
		}},
		{name: "rotate with the default grace", setup: newKey, method: "POST", path: "/keys/{id}/rotate", status: 200,
			check: func(t *testing.T, _ *harness, r response) {
				var k issuedKey
				r.json(t, &k)
				if !strings.HasPrefix(k.Secret, "rwk_") || k.Key.GraceUntil == nil || !k.Key.GraceUntil.Equal(testNow.Add(defaultGrace)) {
					t.Errorf("rotated %+v", k.Key)
				}
			}},
		{name: "rotate with a grace", setup: newKey, method: "POST", path: "/keys/{id}/rotate", body: `{"grace":"1h"}`, status: 200,
			check: func(t *testing.T, _ *harness, r response) {
				var k issuedKey
				r.json(t, &k)
				if k.Key.GraceUntil == nil || !k.Key.GraceUntil.Equal(testNow.Add(time.Hour)) {
					t.Errorf("rotated %+v", k.Key)
				}
			}},
		{name: "rotate a revoked key", setup: revokedKey, method: "POST", path: "/keys/{id}/rotate", body: `{}`, status: 409},
		{name: "rotate an unknown key", method: "POST", path: "/keys/AAAAAAAAAAAA/rotate", status: 404},
		{name: "revoke", setup: newKey, method: "POST", path: "/keys/{id}/revoke", status: 200, check: func(t *testing.T, h *harness, r response) {
			if !h.fb.wasCalled("Emit:" + EventKeyRevoked) {
				t.Error("no rate_limit_key_revoked event")
			}
			var k control.KeyInfo
			r.json(t, &k)
			if k.Status != "revoked" || k.RevokedAt == nil {
				t.Errorf("key %+v", k)
			}
		}},
		{name: "revoke twice", setup: revokedKey, method: "POST", path: "/keys/{id}/revoke", status: 409},
		{name: "delete a key that still works", setup: newKey, method: "DELETE", path: "/keys/{id}", status: 409,
			check: func(t *testing.T, h *harness, r response) {
				if p := r.problem(t, 409); !strings.Contains(p.Detail, "revoke it first") {
					t.Errorf("problem %+v", p)
				}
				if len(h.fb.keys.List()) != 1 {
					t.Error("a refused delete removed the key")
				}
			}},
		{name: "delete a revoked key", setup: revokedKey, method: "DELETE", path: "/keys/{id}", status: 204,
			check: func(t *testing.T, h *harness, r response) {
				if !h.fb.wasCalled("Emit:" + EventKeyDeleted) {
					t.Error("no rate_limit_key_deleted event")
				}
				if len(r.body) != 0 || len(h.fb.keys.List()) != 0 {
					t.Errorf("body %q, keys left %d", r.body, len(h.fb.keys.List()))
				}
			}},
		{name: "delete an unknown key", method: "DELETE", path: "/keys/AAAAAAAAAAAA", status: 404},
		{name: "export", setup: func(t *testing.T, h *harness) string { setZone(t, h); return newKey(t, h) },
			method: "GET", path: "/export", status: 200, check: func(t *testing.T, _ *harness, r response) {
				var d control.Document
				r.json(t, &d)
				if d.Version != 1 || len(d.APIKeys) != 1 || len(d.APIKeys[0].Secrets) != 1 || len(d.ZoneOverrides) != 1 || d.KeyOverrides == nil {
					t.Errorf("document %s", r.body)
				}
			}},
		{name: "import", method: "POST", path: "/import", body: exportDoc, status: 200, check: func(t *testing.T, h *harness, r response) {
			var res control.ImportResult
			r.json(t, &res)
			if res != (control.ImportResult{Created: 3}) {
				t.Errorf("result %+v", res)
			}
			if _, err := h.fb.keys.Info("AbCdEfGhIjKl"); err != nil {
				t.Error(err)
			}
			if h.fb.ovs.Zone("api") == nil {
				t.Error("zone override not imported")
			}
		}},
		{name: "import with a duplicate changes nothing", method: "POST", path: "/import", body: strings.Replace(exportDoc,
			`"key_overrides":[`, `"key_overrides":[{"zone":"api","key_hash":"0123456789abcdef0123456789ABCDEF","limit":1,"updated_at":"2030-01-01T00:00:00Z"},`, 1),
			status: 400, check: func(t *testing.T, h *harness, r response) {
				p := r.problem(t, 400)
				if p.Field == nil || *p.Field != "/key_overrides/1/key_hash" {
					t.Errorf("problem %+v", p)
				}
				if len(h.fb.keys.List()) != 0 {
					t.Error("a refused import wrote keys")
				}
			}},
		{name: "unknown path", method: "GET", path: "/nope", status: 404},
		{name: "method not allowed", method: "PATCH", path: "/keys", status: 405, check: func(t *testing.T, _ *harness, r response) {
			if r.header.Get("Allow") != "GET, POST" {
				t.Errorf("Allow %q", r.header.Get("Allow"))
			}
		}},
		{name: "control store unavailable", setup: func(t *testing.T, h *harness) string { h.fb.err = control.ErrUnavailable; return "" },
			method: "GET", path: "/overrides", status: 503, check: func(t *testing.T, _ *harness, r response) {
				if p := r.problem(t, 503); !strings.HasSuffix(p.Type, "#admin-unavailable") {
					t.Errorf("problem %+v", p)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, limitOptions{Limit: 1000, Burst: 1000})
			id := ""
			if c.setup != nil {
				id = c.setup(t, h)
			}
			r := h.doT(t, c.method, v1+strings.ReplaceAll(c.path, "{id}", id), c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d; body %s", r.status, c.status, r.body)
			}
			switch {
			case c.status >= 400 && c.path != "/health":
				r.problem(t, c.status)
			case c.status == http.StatusNoContent:
			default:
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("content type %q", ct)
				}
			}
			if r.header.Get("X-Request-ID") == "" {
				t.Error("no X-Request-ID")
			}
			if c.check != nil {
				c.check(t, h, r)
			}
		})
	}
}

// exportDoc is an export document with one key and one override of each
// kind.
const exportDoc = `{"version":1,"exported_at":"2030-01-01T00:00:00Z",
"api_keys":[{"id":"AbCdEfGhIjKl","name":"imported","created_at":"2029-01-01T00:00:00Z",
 "secrets":[{"hash":"` + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" + `"}]}],
"zone_overrides":[{"zone":"api","limit":10,"updated_at":"2030-01-01T00:00:00Z"}],
"key_overrides":[{"zone":"api","key_hash":"0123456789abcdef0123456789abcdef","multiplier":2,"updated_at":"2030-01-01T00:00:00Z"}]}`

// TestImportTwiceChangesNothing pins the idempotence the CLI promises.
func TestImportTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{})
	h.do("POST", v1+"/import", exportDoc)
	before := h.fb.recs.snapshot()
	r := h.do("POST", v1+"/import", exportDoc)
	var res control.ImportResult
	r.json(t, &res)
	if r.status != 200 || res != (control.ImportResult{Unchanged: 3}) {
		t.Fatalf("second import: %d %s", r.status, r.body)
	}
	if h.fb.recs.snapshot() != before {
		t.Error("the second import changed records")
	}
}

// TestExportImportRoundTrip moves keys and overrides between two
// backends: the imported key's secret works on the second.
func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	src, dst := newHarness(t, limitOptions{}), newHarness(t, limitOptions{})
	k := src.createKey(t, `{"name":"moving"}`)
	src.do("PUT", v1+"/zones/api/override", `{"burst":3}`)
	exp := src.do("GET", v1+"/export", "")
	if strings.Contains(string(exp.body), k.Secret) {
		t.Fatal("the export holds a secret")
	}
	r := dst.do("POST", v1+"/import", string(exp.body))
	if r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	if id, res := dst.fb.keys.Lookup(k.Secret); res != control.LookupOK || id.ID != k.Key.ID {
		t.Errorf("imported key looks up as %v", res)
	}
	if ov := dst.fb.ovs.Zone("api"); ov == nil || *ov.Burst != 3 {
		t.Errorf("imported override %+v", ov)
	}
}

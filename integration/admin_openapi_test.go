package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ratewarden/ratewarden/admin"
	"github.com/ratewarden/ratewarden/control"
)

// openapiSite has a zone keyed on the client (/open, log_key, 2 per
// minute) and one keyed on a required API key (everything else).
const openapiSite = `handle /open* {
	rate_limit {
		zone per_ip {
			key {remote_host}
			events 2
			window 1m
			log_key
		}
	}
	respond "open"
}
handle {
	rate_limit {
		api_key {
			header X-API-Key
			require
		}
		zone per_key {
			key {http.rate_limit.api_key.id}
			limit 100 1m
		}
	}
	respond "ok {http.rate_limit.api_key.name}"
}`

// Every operation of the OpenAPI document, with every status it declares,
// answers a real Caddy (memory store) with a response that the document
// the same Caddy serves accepts. An operation or status added to the
// document without an exchange here fails the test.
func TestAdminOpenAPIEndToEnd(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: openapiSite})
	a := newAdminAPI(t, c)

	served := a.all()[0].Body
	if !bytes.Equal(served, admin.OpenAPI()) {
		t.Error("the served OpenAPI document differs from admin/openapi.json")
	}

	var version map[string]string
	a.call(t, http.StatusOK, "GET", "/version", nil).decode(t, &version)
	if version["api"] != "v1" {
		t.Errorf("version: %v", version)
	}
	var health control.Health
	a.call(t, http.StatusOK, "GET", "/health", nil).decode(t, &health)
	if health.Status != "ok" || !health.Stores["default"].OK {
		t.Errorf("health: %+v", health)
	}

	// Zones.
	var zones []control.ZoneInfo
	a.call(t, http.StatusOK, "GET", "/zones", nil).decode(t, &zones)
	names := []string{}
	for _, z := range zones {
		names = append(names, z.Name)
	}
	slices.Sort(names)
	if fmt.Sprint(names) != "[per_ip per_key]" {
		t.Errorf("zones: %v", names)
	}
	var zone control.ZoneInfo
	a.call(t, http.StatusOK, "GET", "/zones/per_ip", nil).decode(t, &zone)
	if zone.Limit != 2 || zone.Algorithm != "sliding_log" || !zone.LogKey {
		t.Errorf("zone per_ip: %+v", zone)
	}
	if p := a.call(t, http.StatusNotFound, "GET", "/zones/nope", nil).problem(t); p.Type != adminProblemType("admin-not-found") {
		t.Errorf("unknown zone: type %q", p.Type)
	}

	// A denial, then the zone's top keys.
	c.expectStatuses(t, "/open", []int{200, 200, 429})
	var top control.TopKeys
	a.call(t, http.StatusOK, "GET", "/zones/per_ip/top?n=5", nil).decode(t, &top)
	if top.Total != 1 || len(top.Keys) != 1 || top.Keys[0].Key != "127.0.0.1" || top.Keys[0].Count != 1 {
		t.Fatalf("top keys: %+v", top)
	}
	hash := top.Keys[0].KeyHash
	a.call(t, http.StatusNotFound, "GET", "/zones/nope/top", nil)
	a.call(t, http.StatusBadRequest, "GET", "/zones/per_ip/top?n=0", nil)

	// Inspect: by raw key and by hash, the same state; nothing charged.
	var byKey, byHash control.KeyState
	a.call(t, http.StatusOK, "GET", "/zones/per_ip/keys?key=127.0.0.1", nil).decode(t, &byKey)
	a.call(t, http.StatusOK, "GET", "/zones/per_ip/keys?key_hash="+hash, nil).decode(t, &byHash)
	if byKey.Remaining != 0 || byKey.KeyHash != hash || byKey.Key != "127.0.0.1" || byHash.KeyHash != hash || byHash.Remaining != 0 {
		t.Errorf("inspect: by key %+v, by hash %+v", byKey, byHash)
	}
	a.call(t, http.StatusBadRequest, "GET", "/zones/per_ip/keys", nil)
	a.call(t, http.StatusNotFound, "GET", "/zones/nope/keys?key=x", nil)

	// Zone override: lifts the limit to 4, so two more requests pass.
	var zov control.ZoneOverride
	a.call(t, http.StatusOK, "PUT", "/zones/per_ip/override", map[string]any{"limit": 4, "ttl": "1h"}).decode(t, &zov)
	if zov.Limit == nil || *zov.Limit != 4 || zov.ExpiresAt == nil {
		t.Errorf("zone override: %+v", zov)
	}
	c.expectStatuses(t, "/open", []int{200, 200, 429})
	p := a.call(t, http.StatusBadRequest, "PUT", "/zones/per_ip/override", `{"limit":"4"}`).problem(t)
	if !slices.Contains(p.fields(), "/limit") {
		t.Errorf("wrong type: fields %v", p.fields())
	}
	a.call(t, http.StatusNotFound, "PUT", "/zones/nope/override", `{"limit":4}`)

	// Key override for the raw key, then removed.
	var kov control.KeyOverride
	a.call(t, http.StatusOK, "PUT", "/zones/per_ip/keys/override", `{"key":"127.0.0.1","limit":7}`).decode(t, &kov)
	if kov.KeyHash != hash || kov.Limit == nil || *kov.Limit != 7 {
		t.Errorf("key override: %+v", kov)
	}
	var ovs struct {
		ZoneOverrides []control.ZoneOverride `json:"zone_overrides"`
		KeyOverrides  []control.KeyOverride  `json:"key_overrides"`
	}
	a.call(t, http.StatusOK, "GET", "/overrides", nil).decode(t, &ovs)
	if len(ovs.ZoneOverrides) != 1 || len(ovs.KeyOverrides) != 1 || ovs.KeyOverrides[0].KeyHash != hash {
		t.Errorf("overrides: %+v", ovs)
	}
	a.call(t, http.StatusBadRequest, "PUT", "/zones/per_ip/keys/override", `{"key":"k","limit":5,"multiplier":2}`)
	a.call(t, http.StatusNotFound, "PUT", "/zones/nope/keys/override", `{"key":"k","limit":5}`)
	a.call(t, http.StatusNoContent, "DELETE", "/zones/per_ip/keys/override?key=127.0.0.1", nil)
	a.call(t, http.StatusNotFound, "DELETE", "/zones/per_ip/keys/override?key=127.0.0.1", nil)
	a.call(t, http.StatusBadRequest, "DELETE", "/zones/per_ip/keys/override", nil)

	// Reset answers the state before, and forgets the counters.
	var before, after control.KeyState
	a.call(t, http.StatusOK, "DELETE", "/zones/per_ip/keys?key=127.0.0.1", nil).decode(t, &before)
	a.call(t, http.StatusOK, "GET", "/zones/per_ip/keys?key=127.0.0.1", nil).decode(t, &after)
	if before.Remaining != 0 || after.Remaining != 4 {
		t.Errorf("reset: before %+v, after %+v", before, after)
	}
	a.call(t, http.StatusBadRequest, "DELETE", "/zones/per_ip/keys?key=a&key_hash="+hash, nil)
	a.call(t, http.StatusNotFound, "DELETE", "/zones/nope/keys?key=x", nil)

	a.call(t, http.StatusNoContent, "DELETE", "/zones/per_ip/override", nil)
	a.call(t, http.StatusNotFound, "DELETE", "/zones/per_ip/override", nil)

	// API keys.
	var issued struct {
		Secret string          `json:"secret"`
		Key    control.KeyInfo `json:"key"`
	}
	r := a.call(t, http.StatusCreated, "POST", "/keys", `{"name":"svc","owner":"team","tier":"gold","labels":{"env":"prod"}}`)
	r.decode(t, &issued)
	id := issued.Key.ID
	if loc := r.Header.Get("Location"); loc != adminBase+"/keys/"+id {
		t.Errorf("Location %q", loc)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("create: Cache-Control %q", cc)
	}
	if got := c.Get(t, "/", "X-API-Key", issued.Secret); got.Status != 200 || got.Body != "ok svc" {
		t.Errorf("the new key: %d %q", got.Status, got.Body)
	}
	a.call(t, http.StatusBadRequest, "POST", "/keys", `{}`)
	var list []control.KeyInfo
	a.call(t, http.StatusOK, "GET", "/keys", nil).decode(t, &list)
	if len(list) != 1 || list[0].ID != id {
		t.Errorf("keys: %+v", list)
	}
	var info control.KeyInfo
	a.call(t, http.StatusOK, "GET", "/keys/"+id, nil).decode(t, &info)
	if info.Name != "svc" || info.Tier != "gold" || info.Status != "active" {
		t.Errorf("key: %+v", info)
	}
	a.call(t, http.StatusNotFound, "GET", "/keys/nOSuchKey000", nil)

	var explained control.Explanation
	a.call(t, http.StatusOK, "POST", "/explain", map[string]any{
		"method": "GET", "url": c.URL + "/v1/items",
		"headers": map[string][]string{"X-API-Key": {issued.Secret}}, "remote_addr": "203.0.113.7:50000",
	}).decode(t, &explained)
	if explained.APIKey == nil || explained.APIKey.ID != id || explained.Decision != "allowed" {
		t.Errorf("explain: %+v", explained)
	}
	a.call(t, http.StatusBadRequest, "POST", "/explain", `{"method":"GET"}`)

	a.call(t, http.StatusOK, "POST", "/keys/"+id+"/rotate", `{"grace":"1m"}`).decode(t, &issued)
	if issued.Key.GraceUntil == nil || issued.Key.RotatedAt == nil {
		t.Errorf("rotate: %+v", issued.Key)
	}
	a.call(t, http.StatusOK, "POST", "/keys/"+id+"/rotate", nil)
	a.call(t, http.StatusNotFound, "POST", "/keys/nOSuchKey000/rotate", nil)
	a.call(t, http.StatusConflict, "DELETE", "/keys/"+id, nil) // still works
	a.call(t, http.StatusOK, "POST", "/keys/"+id+"/revoke", nil).decode(t, &info)
	if info.Status != "revoked" || info.RevokedAt == nil {
		t.Errorf("revoke: %+v", info)
	}
	a.call(t, http.StatusConflict, "POST", "/keys/"+id+"/revoke", nil)
	a.call(t, http.StatusConflict, "POST", "/keys/"+id+"/rotate", nil)
	a.call(t, http.StatusNotFound, "POST", "/keys/nOSuchKey000/revoke", nil)

	// Export, and import of the same document: nothing changes.
	exp := a.call(t, http.StatusOK, "GET", "/export", nil)
	var doc control.Document
	exp.decode(t, &doc)
	if len(doc.APIKeys) != 1 || doc.APIKeys[0].ID != id {
		t.Errorf("export: %+v", doc)
	}
	var res control.ImportResult
	a.call(t, http.StatusOK, "POST", "/import", exp.Body).decode(t, &res)
	if res.Created != 0 || res.Updated != 0 || res.Unchanged != 1 {
		t.Errorf("re-import: %+v", res)
	}
	a.call(t, http.StatusBadRequest, "POST", "/import", `{"version":2}`)
	// The revoked key, deleted, is gone from the listing and the export.
	a.call(t, http.StatusNoContent, "DELETE", "/keys/"+id, nil)
	a.call(t, http.StatusNotFound, "DELETE", "/keys/"+id, nil)
	a.call(t, http.StatusNotFound, "GET", "/keys/"+id, nil)
	a.call(t, http.StatusOK, "GET", "/export", nil).decode(t, &doc)
	if len(doc.APIKeys) != 0 {
		t.Errorf("export after delete: %+v", doc.APIKeys)
	}
	huge := `{"version":1,"api_keys":[],"pad":"` + strings.Repeat("x", 8<<20) + `"}`
	a.call(t, http.StatusRequestEntityTooLarge, "POST", "/import", huge)

	// The admin client limit: GET /keys until refused, then the other
	// limited endpoints are refused too, each with Retry-After.
	limited := false
	for range 20 {
		r := a.send(t, "GET", "/keys", "", nil)
		if r.Status == http.StatusTooManyRequests {
			limited = true
			break
		}
		if r.Status != http.StatusOK {
			t.Fatalf("GET /keys: %d", r.Status)
		}
	}
	if !limited {
		t.Fatal("GET /keys was never limited in 20 calls")
	}
	for _, r := range []adminReply{
		a.call(t, http.StatusTooManyRequests, "GET", "/keys", nil),
		a.call(t, http.StatusTooManyRequests, "POST", "/keys", `{"name":"x"}`),
		a.call(t, http.StatusTooManyRequests, "POST", "/keys/"+id+"/rotate", nil),
	} {
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s %s: Retry-After %q", r.Method, r.Path, r.Header.Get("Retry-After"))
		}
	}

	// A needed store that is down: health answers 503 with the body.
	dead, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	c.Reload(t, Config{
		Global: fmt.Sprintf("rate_limit {\n\tstore redis dead {\n\t\taddress 127.0.0.1:%d\n\t}\n}", dead[0]),
		Site:   openapiSite + "\nhandle /dead {\n\trate_limit {\n\t\tstore dead\n\t\tzone on_dead {\n\t\t\tlimit 5 1m\n\t\t}\n\t}\n}",
	})
	a.call(t, http.StatusServiceUnavailable, "GET", "/health", nil).decode(t, &health)
	if health.Status != "unavailable" || health.Stores["dead"].OK || !health.Stores["dead"].Needed {
		t.Errorf("health with a dead store: %+v", health)
	}

	checkCoverage(t, a)
}

// checkCoverage fails for every documented operation, and every status it
// declares, that the test did not exercise.
func checkCoverage(t *testing.T, a *adminAPI) {
	t.Helper()
	ops := a.operations()
	if len(ops) < 21 {
		t.Errorf("the served document has %d operations, want at least 21", len(ops))
	}
	var missing []string
	for op, codes := range ops {
		seen := a.exercised[op]
		if len(seen) == 0 {
			missing = append(missing, op)
			continue
		}
		for _, code := range codes {
			if !seen[code] {
				missing = append(missing, fmt.Sprintf("%s -> %d", op, code))
			}
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("not exercised: %s", m)
	}
	var done []string
	for op := range a.exercised {
		done = append(done, op)
	}
	slices.Sort(done)
	t.Logf("exercised %d operations: %v", len(done), done)
}

// Explaining a request that lacks the key a handler requires answers a
// decision the document allows (allowed, denied or exempt).
func TestAdminOpenAPIExplainWithoutRequiredKey(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: openapiSite})
	a := newAdminAPI(t, c)
	for _, body := range []string{
		`{"method":"GET","url":"` + c.URL + `/"}`,
		`{"method":"GET","url":"` + c.URL + `/","headers":{"X-API-Key":["rwk_not_a_key"]}}`,
	} {
		var ex control.Explanation
		a.call(t, http.StatusOK, "POST", "/explain", body).decode(t, &ex)
		if ex.APIKey == nil || ex.APIKey.Result == "ok" {
			t.Errorf("explain %s: api_key %+v", body, ex.APIKey)
		}
	}
	// The real request is refused, as explain should say.
	if got := c.Get(t, "/"); got.Status != http.StatusUnauthorized {
		t.Errorf("GET / without a key: %d", got.Status)
	}
}

// Paths under /rate_limit/ that the document does not have answer
// problem+json: 404 for an unknown path, 405 with Allow for a known path
// and another method.
func TestAdminOpenAPIUndocumentedPaths(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: openapiSite})
	a := newAdminAPI(t, c)
	r := a.send(t, "GET", "/nothing/here", "", nil)
	if r.Status != http.StatusNotFound || r.problem(t).Type != adminProblemType("admin-not-found") {
		t.Errorf("unknown path: %d %s", r.Status, r.Body)
	}
	r = a.send(t, "PATCH", "/keys", "", nil)
	if r.Status != http.StatusMethodNotAllowed || r.problem(t).Type != adminProblemType("admin-method-not-allowed") {
		t.Errorf("PATCH /keys: %d %s", r.Status, r.Body)
	}
	if allow := r.Header.Get("Allow"); allow != "GET, POST" {
		t.Errorf("PATCH /keys: Allow %q, want \"GET, POST\"", allow)
	}
}

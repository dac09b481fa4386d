package ratewarden

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/control"
)

// serverApp provisions a config with HTTP servers (not started) and
// returns its rate_limit app. servers is the http app's "servers" JSON;
// %[1]q in it is the test's store name, which every handler must use.
func serverApp(t *testing.T, servers string) *App {
	t.Helper()
	name := uniq("store")
	cfgJSON := fmt.Sprintf(`{"admin":{"disabled":true},"logging":{"logs":{"default":{"writer":{"output":"discard"}}}},
		"storage":{"module":"file_system","root":%q},
		"apps":{"rate_limit":{"stores":{%q:{"backend":"memory"}},"control_store":%q},"http":{"servers":%s}}}`,
		t.TempDir(), name, name, fmt.Sprintf(servers, name))
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		t.Fatalf("config: %v\n%s", err, cfgJSON)
	}
	provisionMu.Lock()
	root, err := caddy.ProvisionContext(&cfg)
	provisionMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(root)
	t.Cleanup(cancel)
	if _, err := ctx.App("http"); err != nil {
		t.Fatalf("provisioning the http app: %v", err)
	}
	app, err := ctx.App("rate_limit")
	if err != nil {
		t.Fatal(err)
	}
	// ProvisionContext provisioned the apps in a root context this test
	// cannot cancel, so cancel above cleans none of the handlers: release
	// them here, or the next test in this process would share their
	// pooled top-keys sketches (zones are pooled by name).
	a := app.(*App)
	for _, hr := range a.handlers() {
		t.Cleanup(func() { _ = hr.h.Cleanup() })
	}
	return a
}

// twoServers has zone "api" on host api.test in server a (inside a
// subroute) and on every request of server b, and zone "logins" with
// log_key on server b only.
const twoServers = `{
	"a":{"listen":["127.0.0.1:0"],"routes":[{"match":[{"host":["api.test"]}],"handle":[{"handler":"subroute","routes":[{"handle":[
		{"handler":"rate_limit","store":%[1]q,"rate_limits":{"api":{"key":"{http.request.header.X-Who}","max_events":3,"window":"1m","algorithm":"gcra"}}}]}]}]}]},
	"b":{"listen":["127.0.0.2:0"],"routes":[{"handle":[
		{"handler":"rate_limit","store":%[1]q,"exempt":{"ranges":["10.0.0.0/8"]},"rate_limits":{
			"api":{"key":"{http.request.header.X-Who}","max_events":3,"window":"1m","algorithm":"gcra"},
			"logins":{"match":[{"path":["/login"]}],"key":"{http.request.header.X-Who}","max_events":1,"window":"1m","log_key":true}}}]}]}}`

// handlerOn returns the first rate_limit handler of server.
func handlerOn(t *testing.T, app *App, server string) *Handler {
	t.Helper()
	for _, hr := range app.handlers() {
		if hr.server == server {
			return hr.h
		}
	}
	t.Fatalf("no rate_limit handler on server %q", server)
	return nil
}

func TestZonesListsEveryServer(t *testing.T) {
	app := serverApp(t, twoServers)
	zones := app.Zones()
	if len(zones) != 2 || zones[0].Name != "api" || zones[1].Name != "logins" {
		t.Fatalf("zones %+v", zones)
	}
	api := zones[0]
	if fmt.Sprint(api.Servers) != "[a b]" || api.Algorithm != "gcra" || api.Limit != 3 || api.Window != "1m0s" ||
		api.Mode != "enforce" || !api.Effective.Enabled || api.Effective.Limit != 3 {
		t.Errorf("api zone %+v", api)
	}
	if _, err := app.Zone("nope"); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("unknown zone: %v", err)
	}
	ctx := context.Background()
	if _, _, err := app.control.overrides.SetZone(ctx, control.ZoneOverride{Zone: "api", Limit: ptr(int64(9)), Mode: "shadow"}); err != nil {
		t.Fatal(err)
	}
	api, err := app.Zone("api")
	if err != nil {
		t.Fatal(err)
	}
	if api.Override == nil || api.Effective.Limit != 9 || api.Effective.Mode != "shadow" || api.Limit != 3 {
		t.Errorf("overridden zone %+v", api)
	}
}

func TestInspectResetAndTop(t *testing.T) {
	app := serverApp(t, twoServers)
	h := handlerOn(t, app, "b")
	ctx := context.Background()
	who := func(s, path string) call { return call{path: path, header: map[string]string{"X-Who": s}} }
	who("carol", "/").admitted(t, h, 2)
	st, err := app.Inspect(ctx, "api", control.KeyRef{Raw: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Remaining != 1 || st.Limit != 3 || !st.Allowed || st.Key != "" || st.KeyHash != hashKey("api", "carol").String() {
		t.Errorf("inspect: %+v", st)
	}
	if again, _ := app.Inspect(ctx, "api", control.KeyRef{Raw: "carol"}); again.Remaining != 1 {
		t.Errorf("inspect charged the key: remaining %d", again.Remaining)
	}
	before, err := app.Reset(ctx, "api", control.KeyRef{Raw: "carol"})
	if err != nil || before.Remaining != 1 {
		t.Fatalf("reset: %+v %v", before, err)
	}
	if got := who("carol", "/").admitted(t, h, 5); got != 3 {
		t.Errorf("after reset admitted %d, want the full 3", got)
	}
	if st, _ := app.Inspect(ctx, "api", control.KeyRef{Raw: "carol"}); st.Allowed || st.RetryAfter <= 0 || st.Remaining != 0 {
		t.Errorf("an exhausted key must inspect as refused with a wait: %+v", st)
	}
	if _, err := app.Inspect(ctx, "nope", control.KeyRef{Raw: "x"}); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("unknown zone: %v", err)
	}
	// By hash, as top keys report keys.
	who("carol", "/").do(t, h)
	byHash, err := app.Inspect(ctx, "api", control.KeyRef{Hash: hashKey("api", "carol").String()})
	if err != nil || byHash.Remaining != 0 || byHash.Key != "" {
		t.Errorf("inspect by hash: %+v %v", byHash, err)
	}
	if _, err := app.Reset(ctx, "api", control.KeyRef{Hash: hashKey("api", "carol").String()}); err != nil {
		t.Fatal(err)
	}
	if st, _ := app.Inspect(ctx, "api", control.KeyRef{Raw: "carol"}); st.Remaining != 3 {
		t.Errorf("reset by hash left remaining %d", st.Remaining)
	}
	var fe *control.FieldError
	if _, err := app.Inspect(ctx, "api", control.KeyRef{Hash: "zz"}); !errors.As(err, &fe) || fe.Field != "/key_hash" {
		t.Errorf("bad hash: %v", err)
	}

	for range 4 {
		who("mallory", "/login").do(t, h)
	}
	who("eve", "/login").admitted(t, h, 2)
	top, err := app.Top("logins", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Keys) != 2 || top.Keys[0].Key != "mallory" || top.Keys[0].Count != 3 || top.Keys[1].Key != "eve" || top.Total != 4 {
		t.Errorf("top keys %+v", top)
	}
}

func TestExplain(t *testing.T) {
	app := serverApp(t, twoServers)
	ctx := context.Background()
	ex, err := app.Explain(ctx, control.ExplainRequest{Method: "GET", URL: "http://api.test/login", Headers: map[string][]string{"X-Who": {"dave"}}, Server: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Zones) != 1 || ex.Zones[0].Zone != "api" || !ex.Zones[0].Matched || ex.Zones[0].Decision != "allowed" ||
		ex.Zones[0].Remaining != 2 || ex.Zones[0].KeyHash != hashKey("api", "dave").String() || ex.Decision != "allowed" {
		t.Errorf("server a: %+v", ex)
	}
	ex, err = app.Explain(ctx, control.ExplainRequest{URL: "http://other.test/", Server: "a"})
	if err != nil || len(ex.Zones) != 0 {
		t.Errorf("a request for another host reaches no zone on a: %+v %v", ex, err)
	}
	ex, err = app.Explain(ctx, control.ExplainRequest{URL: "http://x.test/login", Headers: map[string][]string{"X-Who": {"dave"}}, Server: "b"})
	if err != nil {
		t.Fatal(err)
	}
	byZone := map[string]control.ZoneExplain{}
	for _, z := range ex.Zones {
		byZone[z.Zone] = z
	}
	if l := byZone["logins"]; !l.Matched || l.Key != "dave" || l.Reason != "match set 1 matched" || l.Cost != 1 {
		t.Errorf("logins: %+v", l)
	}
	// Nothing was charged by explaining.
	if st, _ := app.Inspect(ctx, "api", control.KeyRef{Raw: "dave"}); st.Remaining != 3 {
		t.Errorf("explain charged the key: remaining %d", st.Remaining)
	}
	ex, _ = app.Explain(ctx, control.ExplainRequest{URL: "http://x.test/", RemoteAddr: "10.1.2.3", Server: "b"})
	if !ex.Exempt || ex.Decision != "exempt" {
		t.Errorf("exempt client: %+v", ex)
	}
	ex, _ = app.Explain(ctx, control.ExplainRequest{URL: "http://x.test/", Server: "b"})
	if byZone := ex.Zones; len(byZone) != 2 || byZone[1].Matched || byZone[1].Reason != "no match set matched" {
		t.Errorf("logins must not match /: %+v", ex.Zones)
	}
	var fe *control.FieldError
	if _, err := app.Explain(ctx, control.ExplainRequest{URL: "/relative"}); !errors.As(err, &fe) || fe.Field != "/url" {
		t.Errorf("relative URL: %v", err)
	}
	if _, err := app.Explain(ctx, control.ExplainRequest{URL: "http://x.test/", Server: "zzz"}); !errors.As(err, &fe) || fe.Field != "/server" {
		t.Errorf("unknown server: %v", err)
	}
}

func TestHealthOfMemoryStores(t *testing.T) {
	app := serverApp(t, twoServers)
	h := app.Health(context.Background())
	if h.Status != "ok" {
		t.Fatalf("health %+v", h)
	}
	var used control.StoreHealth
	for _, sh := range h.Stores {
		if sh.Name != DefaultStore {
			used = sh
		}
	}
	if !used.OK || !used.Needed || used.Backend != "memory" || fmt.Sprint(used.Zones) != "[api logins]" {
		t.Errorf("store health %+v", used)
	}
	if d := h.Stores[DefaultStore]; d.Needed {
		t.Errorf("the unused default store is marked needed: %+v", d)
	}
}

func TestExplainFollowsRouteGroups(t *testing.T) {
	// Two handle blocks (one group): /open has no limit, everything else
	// has the "per_key" zone. Explaining /open must not report per_key.
	app := serverApp(t, `{"g":{"listen":["127.0.0.3:0"],"routes":[
		{"group":"g1","match":[{"path":["/open"]}],"handle":[{"handler":"static_response","body":"open"}]},
		{"group":"g1","handle":[{"handler":"rate_limit","store":%[1]q,"rate_limits":{"per_key":{"max_events":1,"window":"1m"}}}]}]}}`)
	ctx := context.Background()
	ex, err := app.Explain(ctx, control.ExplainRequest{URL: "http://x.test/open"})
	if err != nil || len(ex.Zones) != 0 {
		t.Errorf("/open: %+v %v, want no zones", ex, err)
	}
	ex, err = app.Explain(ctx, control.ExplainRequest{URL: "http://x.test/other"})
	if err != nil || len(ex.Zones) != 1 || ex.Zones[0].Zone != "per_key" {
		t.Errorf("/other: %+v %v, want per_key", ex, err)
	}
}

package ratewarden

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/control"
)

// appHandler provisions handler JSON in a fresh config and returns it with
// the config's rate_limit app. The handler's counters and the control
// records live in a memory store of the test's own (stores are pooled by
// name, and parallel tests must not share one).
func appHandler(t testing.TB, js string) (*Handler, *App) {
	t.Helper()
	name := uniq("store")
	ctx := newTestContext(t, fmt.Sprintf(`{"stores":{%q:{"backend":"memory"}},"control_store":%q}`, name, name))
	h := new(Handler)
	if err := caddy.StrictUnmarshalJSON([]byte(js), h); err != nil {
		t.Fatalf("decoding handler JSON: %v", err)
	}
	h.Store = name
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("provisioning handler: %v", err)
	}
	app, err := ctx.App("rate_limit")
	if err != nil {
		t.Fatal(err)
	}
	return h, app.(*App)
}

// newKey creates an API key and returns its secret.
func newKey(t testing.TB, app *App, spec control.KeySpec) (string, control.KeyInfo) {
	t.Helper()
	secret, info, err := app.control.keys.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("creating key: %v", err)
	}
	return secret, info
}

// problemReason decodes a 401 problem body's reason and type.
func problemReason(t testing.TB, res result) (reason, typ string) {
	t.Helper()
	var p struct{ Type, Reason string }
	if err := json.Unmarshal([]byte(res.body), &p); err != nil {
		t.Fatalf("body %q: %v", res.body, err)
	}
	return p.Reason, p.Type
}

func TestAPIKeyRequire(t *testing.T) {
	t.Parallel()
	zone := uniq("keyed")
	h, app := appHandler(t, fmt.Sprintf(`{"api_key":{"require":true},"rate_limits":{%q:{"key":"{http.rate_limit.api_key.id}","max_events":100,"window":"1m"}}}`, zone))
	good, info := newKey(t, app, control.KeySpec{Name: "acme", Tier: "gold", Owner: "ops@acme.test"})
	revokedSecret, revoked := newKey(t, app, control.KeySpec{Name: "old"})
	if _, _, err := app.control.keys.Revoke(context.Background(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	// A well-formed key of another registry: unknown here.
	_, otherApp := appHandler(t, fmt.Sprintf(`{"rate_limits":{%q:{"max_events":1,"window":"1m"}}}`, uniq("other")))
	wrong, _ := newKey(t, otherApp, control.KeySpec{Name: "elsewhere"})

	res := call{header: map[string]string{"X-API-Key": good}}.do(t, h)
	if !res.next {
		t.Fatalf("valid key refused: %d %s", res.code, res.body)
	}
	for ph, want := range map[string]string{
		phAPIKeyID: info.ID, phAPIKeyName: "acme", phAPIKeyTier: "gold", phAPIKeyOwner: "ops@acme.test", phAPIKeyResult: "ok",
	} {
		if got := res.placeholder(ph); got != want {
			t.Errorf("{%s} = %q, want %q", ph, got, want)
		}
	}
	if res := (call{header: map[string]string{"Authorization": "Bearer " + good}}).do(t, h); !res.next {
		t.Errorf("valid bearer key refused: %d", res.code)
	}

	for _, tc := range []struct {
		name, header, reason string
	}{
		{"missing", "", "missing"},
		{"malformed", "not-a-key", "malformed"},
		{"unknown key", wrong, "unknown"},
		{"revoked", revokedSecret, "revoked"},
	} {
		c := call{remote: uniqIP()}
		if tc.header != "" {
			c.header = map[string]string{"X-API-Key": tc.header}
		}
		res := c.do(t, h)
		if res.next || res.code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, passed on %v", tc.name, res.code, res.next)
			continue
		}
		reason, typ := problemReason(t, res)
		if reason != tc.reason || typ != problemBase+"api-key-"+tc.reason {
			t.Errorf("%s: reason %q type %q", tc.name, reason, typ)
		}
		if strings.Contains(res.body, good) || (tc.header != "" && strings.Contains(res.body, tc.header)) {
			t.Errorf("%s: the body echoes a key: %s", tc.name, res.body)
		}
		if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, res.header.Get("WWW-Authenticate"))
		}
	}
}

func TestAPIKeyOptionalAndExpired(t *testing.T) {
	t.Parallel()
	zone := uniq("optional")
	h, app := appHandler(t, fmt.Sprintf(`{"api_key":{"query":"api_key"},"rate_limits":{%q:{"max_events":100,"window":"1m"}}}`, zone))
	// Long enough that a loaded machine reaches the first call before it.
	exp := time.Now().Add(time.Second)
	secret, _ := newKey(t, app, control.KeySpec{Name: "brief", ExpiresAt: &exp})

	res := call{path: "/?x=1&api_key=" + secret}.do(t, h)
	if !res.next || res.placeholder(phAPIKeyName) != "brief" {
		t.Fatalf("query key: passed %v, name %q", res.next, res.placeholder(phAPIKeyName))
	}
	if res := (call{}).do(t, h); !res.next || res.placeholder(phAPIKeyID) != "" || res.placeholder(phAPIKeyResult) != "missing" {
		t.Errorf("without require a missing key must pass anonymously: %v %q", res.next, res.placeholder(phAPIKeyResult))
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	res = call{path: "/?api_key=" + secret}.do(t, h)
	if !res.next || res.placeholder(phAPIKeyResult) != "expired" || res.placeholder(phAPIKeyID) != "" {
		t.Errorf("expired key: passed %v, result %q, id %q", res.next, res.placeholder(phAPIKeyResult), res.placeholder(phAPIKeyID))
	}
}

func TestAPIKeyGuessingIsLimited(t *testing.T) {
	t.Parallel()
	zone := uniq("guessed")
	h, app := appHandler(t, fmt.Sprintf(`{"api_key":{"require":true,"failure_limit":3,"failure_window":"1m"},"rate_limits":{%q:{"max_events":100,"window":"1m"}}}`, zone))
	good, _ := newKey(t, app, control.KeySpec{Name: "real"})
	ip := uniqIP()
	codes := []int{}
	for i := range 5 {
		res := call{remote: ip, header: map[string]string{"X-API-Key": fmt.Sprintf("guess-%d", i)}}.do(t, h)
		codes = append(codes, res.code)
	}
	want := []int{401, 401, 401, 429, 429}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("statuses for 5 bad guesses: %v, want %v", codes, want)
	}
	// A right key is always accepted, and other clients are not affected.
	if res := (call{remote: ip, header: map[string]string{"X-API-Key": good}}).do(t, h); !res.next {
		t.Errorf("a right key from a limited client: %d", res.code)
	}
	if res := (call{remote: uniqIP(), header: map[string]string{"X-API-Key": "guess"}}).do(t, h); res.code != 401 {
		t.Errorf("another client's first bad guess: %d, want 401", res.code)
	}
}

func TestAPIKeyZonesKeyAndMatchOnTier(t *testing.T) {
	t.Parallel()
	gold, free := uniq("gold"), uniq("free")
	h, app := appHandler(t, fmt.Sprintf(`{"api_key":{"header":"X-Key","require":true},"rate_limits":{
		%q:{"match":[{"expression":"{http.rate_limit.api_key.tier} == 'gold'"}],"key":"{http.rate_limit.api_key.id}","max_events":5,"window":"1m"},
		%q:{"match":[{"expression":"{http.rate_limit.api_key.tier} != 'gold'"}],"key":"{http.rate_limit.api_key.id}","max_events":2,"window":"1m"}}}`, gold, free))
	g, _ := newKey(t, app, control.KeySpec{Name: "g", Tier: "gold"})
	f1, _ := newKey(t, app, control.KeySpec{Name: "f1"})
	f2, _ := newKey(t, app, control.KeySpec{Name: "f2"})
	for _, tc := range []struct {
		secret string
		want   int
	}{{g, 5}, {f1, 2}, {f2, 2}} {
		if got := (call{header: map[string]string{"X-Key": tc.secret}}).admitted(t, h, 8); got != tc.want {
			t.Errorf("admitted %d of 8, want %d", got, tc.want)
		}
	}
}

func TestQueryParam(t *testing.T) {
	for _, tc := range []struct{ raw, name, want string }{
		{"a=1&api_key=xyz", "api_key", "xyz"},
		{"api_key=a%2Bb", "api_key", "a+b"},
		{"api_keyx=1&api_key=2", "api_key", "2"},
		{"a=1", "api_key", ""},
		{"api_key=%zz", "api_key", "%zz"},
	} {
		if got := queryParam(tc.raw, tc.name); got != tc.want {
			t.Errorf("queryParam(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// api_key_retention reaches the key registry, and a negative one is
// refused when the app is provisioned.
func TestAPIKeyRetentionProvisioning(t *testing.T) {
	t.Parallel()
	name := uniq("store")
	ctx := newTestContext(t, fmt.Sprintf(`{"stores":{%q:{"backend":"memory"}},"control_store":%q,"api_key_retention":"720h"}`, name, name))
	app, err := ctx.App("rate_limit")
	if err != nil {
		t.Fatal(err)
	}
	if got := app.(*App).control.keys.Retention(); got != 720*time.Hour {
		t.Errorf("registry retention %v, want 720h", got)
	}

	bad := &App{APIKeyRetention: caddy.Duration(-time.Hour)}
	if err := bad.Provision(ctx); err == nil || !strings.Contains(err.Error(), "api_key_retention must not be negative") {
		t.Errorf("negative retention: %v", err)
	}
}

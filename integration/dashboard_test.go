package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/ui"
)

// The dashboard tests drive headless Chromium. They do not run in parallel:
// a browser's CPU load would disturb the timing tests, which do.

// artifactsDir holds what the tests leave to look at (git-ignored).
const artifactsDir = "artifacts"

// Key hashes the fake admin API reports.
const (
	fakeHashIP     = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	fakeHashMobile = "f9e8d7c6b5a4938271605f4e3d2c1b0a"
)

// fakeAdmin is a stand-in for the admin API, for the page-level test only:
// zone counts grow at a pace that changes every second, and every
// destructive request is recorded.
type fakeAdmin struct {
	mu       sync.Mutex
	start    time.Time
	seconds  int // whole seconds since start the counts include
	api, web control.ZoneCounts
	actions  []string // "METHOD path?sorted-decoded-query"
}

// advance brings the counts up to now: per second, the api zone decides
// 20, 30 or 40 requests (denying 4 or 10), the web zone 8 or 11 (shadow
// denying 0 or 3).
func (f *fakeAdmin) advance(now time.Time) {
	for ; f.seconds <= int(now.Sub(f.start)/time.Second); f.seconds++ {
		k := uint64(f.seconds)
		f.api.Allowed += 16 + 10*(k%3) - 6*(k%2)
		f.api.Denied += 4 + 6*(k%2)
		f.web.Allowed += 8
		f.web.ShadowDenied += 3 * (k % 2)
	}
}

func (f *fakeAdmin) handler() http.Handler {
	limit := func(n int64) *int64 { return &n }
	two := 2.0
	updated := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	mux := http.NewServeMux()
	mux.Handle("GET /rate_limit/v1/ui/", ui.Handler())
	mux.HandleFunc("GET /rate_limit/v1/zones", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.advance(time.Now())
		api, web := f.api, f.web
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, []control.ZoneInfo{
			{Name: "api", Servers: []string{"srv0"}, Store: "default", Algorithm: "gcra", Limit: 100, Window: "1m0s", Burst: 100, Mode: "enforce",
				Effective: control.EffectivePolicy{Limit: 50, Burst: 100, Mode: "enforce", Enabled: true},
				Override:  &control.ZoneOverride{Zone: "api", Limit: limit(50), UpdatedAt: updated}, KeyOverrides: 1, Counts: api, LogKey: true},
			{Name: "web", Servers: []string{"srv0", "srv1"}, Store: "default", Algorithm: "sliding_window", Limit: 600, Window: "1m0s", Mode: "shadow",
				Effective: control.EffectivePolicy{Limit: 600, Mode: "shadow", Enabled: true}, Counts: web},
		})
	})
	mux.HandleFunc("GET /rate_limit/v1/zones/{zone}/top", func(w http.ResponseWriter, r *http.Request) {
		top := control.TopKeys{Zone: r.PathValue("zone"), Keys: []control.TopKey{}}
		if top.Zone == "api" {
			f.mu.Lock()
			top.Total = f.api.Denied
			f.mu.Unlock()
			top.Keys = []control.TopKey{
				{KeyHash: fakeHashIP, Key: "203.0.113.7", Count: top.Total * 3 / 4, Error: 2},
				{KeyHash: fakeHashMobile, APIKey: "mobile-app", Count: top.Total / 4},
			}
		}
		writeJSON(w, http.StatusOK, top)
	})
	mux.HandleFunc("GET /rate_limit/v1/health", func(w http.ResponseWriter, r *http.Request) {
		h := control.StoreHealth{Name: "default", Zones: []string{"api", "web"}, Needed: true}
		h.Backend, h.OK, h.Topology, h.Breaker, h.OnFailure = "redis", true, "standalone", "closed", "local"
		h.Latency = 420 * time.Microsecond
		writeJSON(w, http.StatusOK, control.Health{Status: "ok", Stores: map[string]control.StoreHealth{"default": h}})
	})
	mux.HandleFunc("GET /rate_limit/v1/overrides", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"zone_overrides": []control.ZoneOverride{{Zone: "api", Limit: limit(50), UpdatedAt: updated}},
			"key_overrides":  []control.KeyOverride{{Zone: "api", KeyHash: fakeHashMobile, Multiplier: &two, UpdatedAt: updated}},
		})
	})
	mux.HandleFunc("GET /rate_limit/v1/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []control.KeyInfo{{ID: "k_1", Name: "mobile-app", Tier: "gold", CreatedAt: updated, Status: "active"},
			{ID: "k_2", Name: "old-app", CreatedAt: updated, RevokedAt: &updated, Status: "revoked"}})
	})
	destructive := func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.actions = append(f.actions, r.Method+" "+r.URL.Path+"?"+r.URL.Query().Encode())
		f.mu.Unlock()
		switch {
		case r.URL.Query().Get("key") == "nobody":
			w.Header().Set("Content-Type", "application/problem+json")
			writeJSON(w, http.StatusNotFound, map[string]any{"type": "about:blank#admin-not-found", "title": "Not Found", "status": 404,
				"detail": `zone "api" or its key: not found`})
		case strings.HasSuffix(r.URL.Path, "/keys"):
			writeJSON(w, http.StatusOK, control.KeyState{Zone: r.PathValue("zone"), Limit: 100, Remaining: 7})
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("DELETE /rate_limit/v1/zones/{zone}/keys", destructive)
	mux.HandleFunc("DELETE /rate_limit/v1/zones/{zone}/keys/override", destructive)
	mux.HandleFunc("DELETE /rate_limit/v1/zones/{zone}/override", destructive)
	mux.HandleFunc("POST /rate_limit/v1/keys/{id}/revoke", destructive)
	mux.HandleFunc("DELETE /rate_limit/v1/keys/{id}", destructive)
	return sameOriginOnly(mux)
}

// sameOriginOnly refuses browser requests as Caddy's admin endpoint does:
// those made in no-cors mode, and those whose Origin (or else Referer) is
// another host. Navigations pass: the real endpoint refuses a navigation
// without a Referer too, which TestDashboardAgainstRealCaddy deals with.
func sameOriginOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode, browser := r.Header["Sec-Fetch-Mode"]
		if browser && strings.Contains(mode[0], "no-cors") {
			http.Error(w, "no-cors request refused", http.StatusBadRequest)
			return
		}
		_, hasOrigin := r.Header["Origin"]
		if (hasOrigin || browser) && r.Header.Get("Sec-Fetch-Mode") != "navigate" {
			origin := r.Header.Get("Origin")
			if origin == "" {
				origin = r.Header.Get("Referer")
			}
			u, err := url.Parse(origin)
			if err != nil || u.Host != r.Host {
				http.Error(w, fmt.Sprintf("origin %q not allowed", origin), http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// takeActions returns the destructive requests seen so far, and forgets
// them.
func (f *fakeAdmin) takeActions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.actions
	f.actions = nil
	return out
}

// number waits until the attribute attr of css is a number, and returns it.
func number(b *Browser, css, attr string) float64 {
	b.t.Helper()
	var n float64
	b.Eventually(15*time.Second, css+" ["+attr+"] to be a number", func() (bool, string) {
		v, _ := b.Query(css, attr)
		var err error
		n, err = strconv.ParseFloat(v, 64)
		return err == nil, strconv.Quote(v)
	})
	return n
}

// changes waits until the attribute attr of css is a number other than
// from, and returns it.
func changes(b *Browser, css, attr string, from float64) float64 {
	b.t.Helper()
	var n float64
	b.Eventually(15*time.Second, css+" ["+attr+"] to change from "+fmt.Sprint(from), func() (bool, string) {
		v, _ := b.Query(css, attr)
		var err error
		n, err = strconv.ParseFloat(v, 64)
		return err == nil && n != from, strconv.Quote(v)
	})
	return n
}

// statusSays waits until #status has kind and contains want.
func statusSays(b *Browser, kind, want string) {
	b.t.Helper()
	b.Eventually(10*time.Second, fmt.Sprintf("#status to be %s and say %q", kind, want), func() (bool, string) {
		k, _ := b.Query("#status", "data-kind")
		text, _ := b.Query("#status", "")
		return k == kind && strings.Contains(text, want), k + ": " + text
	})
}

// saveScreenshot grows the window to the page's height and saves a PNG of
// it in artifacts/name.
func saveScreenshot(b *Browser, name string) {
	b.t.Helper()
	b.ExecuteScript(nil, "window.scrollTo(0, 0)")
	for range 3 {
		var fit struct{ Page, View int }
		b.ExecuteScript(&fit, "return {Page: document.documentElement.scrollHeight, View: window.innerHeight}")
		if fit.View >= fit.Page || fit.Page > 4000 {
			break
		}
		var outer int
		b.ExecuteScript(&outer, "return window.outerHeight")
		b.SetWindowSize(1440, outer+fit.Page-fit.View)
	}
	png := b.Screenshot()
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(artifactsDir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: integration/%s", path)
}

// The page against a fake admin API: live numbers, chart, top keys, and
// destructive actions that ask first and send the right request.
func TestDashboardPageWithFakeAPI(t *testing.T) {
	fake := &fakeAdmin{start: time.Now()}
	srv := httptest.NewServer(fake.handler())
	t.Cleanup(srv.Close)
	b := StartBrowser(t)
	b.SetWindowSize(1440, 1000)
	b.Navigate(srv.URL + "/rate_limit/v1/ui/")

	// Rates come from the count deltas between polls, which differ.
	row := `#zones tr[data-zone="api"]`
	first := number(b, row+" td.rate", "data-value")
	second := changes(b, row+" td.rate", "data-value", first)
	for _, r := range []float64{first, second} {
		if r < 10 || r > 60 {
			t.Errorf("api decisions/s %v: want about 20 to 40", r)
		}
	}
	if d := number(b, row+" td.denial", "data-value"); d <= 0 || d >= 1 {
		t.Errorf("api denial ratio %v: want between 0 and 1", d)
	}
	points := number(b, "#chart", "data-points")
	changes(b, "#chart", "data-points", points)
	for _, css := range []string{`#chart path.rate-line[data-zone="api"]`, `#chart path.denial-line[data-zone="web"]`} {
		if _, ok := b.Query(css, "d"); !ok {
			t.Errorf("chart has no %s", css)
		}
	}
	effective := b.FindElement(row + " td.effective")
	if cls := effective.Attribute("class"); !strings.Contains(cls, "overridden") {
		t.Errorf("api effective cell class %q: want overridden (a live override is in force)", cls)
	}
	if text := effective.Text(); text != "50 · enforce" {
		t.Errorf("api effective cell %q, want the overridden limit and the mode", text)
	}
	if cls, _ := b.Query(`#zones tr[data-zone="web"] td.effective`, "class"); strings.Contains(cls, "overridden") {
		t.Errorf("web effective cell class %q: want no highlight", cls)
	}
	// The stylesheet loaded under the CSP: the highlight has a background.
	var bg string
	b.ExecuteScript(&bg, `return getComputedStyle(document.querySelector(arguments[0])).backgroundColor`, row+" td.effective")
	if bg == "" || bg == "rgba(0, 0, 0, 0)" {
		t.Errorf("overridden cell background %q: style.css did not apply", bg)
	}

	ipRow := `#top-keys tr[data-zone="api"][data-key-hash="` + fakeHashIP + `"]`
	b.Eventually(10*time.Second, "the top keys", func() (bool, string) {
		text, _ := b.Query(ipRow, "")
		return strings.Contains(text, "203.0.113.7"), text
	})
	for _, css := range []string{
		`#health[data-status="ok"] tr[data-store="default"]`,
		`#overrides tr[data-zone="api"] button.remove-zone-override`,
		`#overrides tr[data-key-hash="` + fakeHashMobile + `"] button.remove-key-override`,
		`table#keys tr[data-key-id="k_1"] button.revoke-key`,
		`table#keys tr[data-key-id="k_2"] button.delete-key`,
	} {
		if _, ok := b.Query(css, ""); !ok {
			t.Errorf("no %s on the page", css)
		}
	}

	// Cancelling the confirmation sends nothing.
	fake.takeActions()
	b.FindElement(ipRow + " button.reset-key").Click()
	if q := b.DismissAlert(); !strings.Contains(q, "203.0.113.7") || !strings.Contains(q, `"api"`) {
		t.Errorf("confirmation %q: want the key and the zone named", q)
	}
	statusSays(b, "info", "Cancelled")
	if got := fake.takeActions(); len(got) != 0 {
		t.Fatalf("a cancelled reset sent %v", got)
	}

	want := func(action string) {
		t.Helper()
		b.Eventually(5*time.Second, action, func() (bool, string) {
			got := fake.takeActions()
			return slices.Equal(got, []string{action}), fmt.Sprint(got)
		})
	}
	b.FindElement(ipRow + " button.reset-key").Click()
	b.AcceptAlert()
	want("DELETE /rate_limit/v1/zones/api/keys?key_hash=" + fakeHashIP)
	statusSays(b, "ok", "7 of 100 left")

	// The form: a raw key that needs escaping, in the other zone.
	b.FindElement(`#reset-zone option[value="web"]`).Click()
	b.FindElement("#reset-key").SendKeys("user 42/x&y")
	b.FindElement("#reset-submit").Click()
	if q := b.AcceptAlert(); !strings.Contains(q, "user 42/x&y") {
		t.Errorf("confirmation %q: want the raw key", q)
	}
	want("DELETE /rate_limit/v1/zones/web/keys?" + url.Values{"key": {"user 42/x&y"}}.Encode())
	statusSays(b, "ok", `Reset key "user 42/x&y" in zone web`)

	// An API error shows the problem's title and detail.
	b.FindElement(`#reset-zone option[value="api"]`).Click()
	b.FindElement("#reset-key").SendKeys("nobody")
	b.FindElement("#reset-submit").Click()
	b.AcceptAlert()
	statusSays(b, "error", `Not Found: zone "api" or its key: not found`)
	fake.takeActions()

	b.FindElement(`#overrides tr[data-key-hash="` + fakeHashMobile + `"] button.remove-key-override`).Click()
	b.AcceptAlert()
	want("DELETE /rate_limit/v1/zones/api/keys/override?key_hash=" + fakeHashMobile)
	b.FindElement(`#overrides tr[data-zone="api"] button.remove-zone-override`).Click()
	b.AcceptAlert()
	want("DELETE /rate_limit/v1/zones/api/override?")

	// API keys: revoke one that works, delete one that no longer does.
	b.FindElement(`table#keys tr[data-key-id="k_1"] button.revoke-key`).Click()
	if q := b.AcceptAlert(); !strings.Contains(q, "k_1") || !strings.Contains(q, "mobile-app") {
		t.Errorf("confirmation %q: want the key named", q)
	}
	want("POST /rate_limit/v1/keys/k_1/revoke?")
	statusSays(b, "ok", "Revoked API key k_1 (mobile-app)")
	b.FindElement(`table#keys tr[data-key-id="k_2"] button.delete-key`).Click()
	if q := b.AcceptAlert(); !strings.Contains(q, "k_2") || !strings.Contains(q, "revoked") {
		t.Errorf("confirmation %q: want the key and its status named", q)
	}
	want("DELETE /rate_limit/v1/keys/k_2?")
	statusSays(b, "ok", "Deleted API key k_2 (old-app)")
	saveScreenshot(b, "dashboard-fake.png")
}

// adminCall sends method path (under the admin endpoint) with a JSON body
// and decodes a 2xx answer into out; another status fails the test.
func adminCall(t *testing.T, c *Caddy, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.Admin+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// inspect reads a raw key's state through the admin API.
func inspect(t *testing.T, c *Caddy, zone, key string) control.KeyState {
	t.Helper()
	var st control.KeyState
	adminCall(t, c, http.MethodGet, "/rate_limit/v1/zones/"+zone+"/keys?key="+url.QueryEscape(key), nil, &st)
	return st
}

// openDashboard loads the page from the admin endpoint. Caddy's admin
// endpoint refuses a browser navigation that carries neither Origin nor
// Referer (as when the address is typed), answering 403 "client is not
// allowed to access from origin ”"; when it does, the page is opened as if
// from a link on the admin origin itself, whose Referer it accepts.
func openDashboard(t *testing.T, b *Browser, page string) {
	t.Helper()
	b.Navigate(page)
	if text, _ := b.Query("body", ""); strings.Contains(text, "not allowed to access from origin") {
		t.Logf("Caddy's admin endpoint refused the plain navigation (%s); opening the page with a same-origin Referer", strings.TrimSpace(text))
		b.NavigateWithReferrer(page, page)
	}
}

// The dashboard served by a real Caddy under traffic: live numbers and a
// chart that move, and key resets, from a top-keys row and from the form,
// that really reset the key.
func TestDashboardAgainstRealCaddy(t *testing.T) {
	c := Start(t, Config{Site: `
rate_limit {
	zone per_user {
		key {header.X-User}
		events 3
		window 1h
		log_key
	}
	zone site {
		key static
		limit 5000 1s
	}
}
respond "ok"`})
	page := c.Admin + "/rate_limit/v1/ui/"
	if resp, err := c.Client.Get(page); err != nil {
		t.Fatalf("GET %s: %v", page, err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: status %d, %s: the admin API does not serve the dashboard (mount ui.Handler() at /rate_limit/v1/ui/)",
				page, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	// Two keys spent (3 allowed, then denied), to be reset through the page;
	// a live zone override, a key override and an API key to show.
	for _, key := range []string{"victim", "victim2"} {
		c.expectStatuses(t, "/", repeat(http.StatusOK, 3, http.StatusTooManyRequests, http.StatusTooManyRequests), "X-User", key)
		if st := inspect(t, c, "per_user", key); st.Remaining != 0 {
			t.Fatalf("%s after 5 requests: remaining %d, want 0", key, st.Remaining)
		}
	}
	victim := inspect(t, c, "per_user", "victim")
	adminCall(t, c, http.MethodPut, "/rate_limit/v1/zones/site/override", map[string]any{"limit": 8000}, nil)
	adminCall(t, c, http.MethodPut, "/rate_limit/v1/zones/per_user/keys/override", map[string]any{"key": "vip", "multiplier": 2}, nil)
	var issued struct {
		Key control.KeyInfo `json:"key"`
	}
	adminCall(t, c, http.MethodPost, "/rate_limit/v1/keys", map[string]any{"name": "dashboard-test", "tier": "gold"}, &issued)

	// Traffic whose pace changes every half second: fresh users (allowed)
	// and three spent ones (denied).
	varyingTraffic(t, c, 5, 3)

	b := StartBrowser(t)
	b.SetWindowSize(1440, 1000)
	openDashboard(t, b, page)

	row := `#zones tr[data-zone="per_user"]`
	first := number(b, row+" td.rate", "data-value")
	changes(b, row+" td.rate", "data-value", first)
	b.Eventually(15*time.Second, "per_user to deny some requests", func() (bool, string) {
		v, _ := b.Query(row+" td.denial", "data-value")
		d, err := strconv.ParseFloat(v, 64)
		return err == nil && d > 0 && d < 1, strconv.Quote(v)
	})
	points := number(b, "#chart", "data-points")
	changes(b, "#chart", "data-points", points)
	if _, ok := b.Query(`#chart path.rate-line[data-zone="per_user"]`, "d"); !ok {
		t.Error("the chart has no decisions/s line for per_user")
	}
	if cls, _ := b.Query(`#zones tr[data-zone="site"] td.effective`, "class"); !strings.Contains(cls, "overridden") {
		t.Errorf("site effective cell class %q: want overridden", cls)
	}

	// Reset from the victim's top-keys row.
	victimRow := `#top-keys tr[data-zone="per_user"][data-key-hash="` + victim.KeyHash + `"]`
	b.Eventually(15*time.Second, "the victim among the top keys", func() (bool, string) {
		text, ok := b.Query(victimRow, "")
		return ok && strings.Contains(text, "victim"), text
	})
	b.FindElement(victimRow + " button.reset-key").Click()
	if q := b.AcceptAlert(); !strings.Contains(q, "victim") {
		t.Errorf("confirmation %q: want the key named", q)
	}
	statusSays(b, "ok", "Reset key victim in zone per_user")
	if st := inspect(t, c, "per_user", "victim"); st.Remaining != 3 {
		t.Errorf("victim after the reset from its top-keys row: remaining %d, want 3", st.Remaining)
	}

	// Reset from the form, by raw key.
	b.FindElement(`#reset-zone option[value="per_user"]`).Click()
	b.FindElement("#reset-key").SendKeys("victim2")
	b.FindElement("#reset-submit").Click()
	b.AcceptAlert()
	statusSays(b, "ok", `Reset key "victim2" in zone per_user (it had 0 of 3 left)`)
	if st := inspect(t, c, "per_user", "victim2"); st.Remaining != 3 {
		t.Errorf("victim2 after the reset from the form: remaining %d, want 3", st.Remaining)
	}

	for _, css := range []string{
		`#health[data-status="ok"] tr[data-store="default"]`,
		`#overrides tr[data-zone="site"] button.remove-zone-override`,
		`#overrides tr[data-zone="per_user"] button.remove-key-override`,
		`table#keys tr[data-key-id]`,
	} {
		if _, ok := b.Query(css, ""); !ok {
			t.Errorf("no %s on the page", css)
		}
	}
	if errText, _ := b.Query(`#poll-status[data-kind="error"]`, ""); errText != "" {
		t.Errorf("the page reports polling errors: %s", errText)
	}
	saveScreenshot(b, "dashboard.png")

	// The API key: revoked from its row, then, shown as revoked, deleted.
	keyRow := `table#keys tr[data-key-id="` + issued.Key.ID + `"]`
	b.FindElement(keyRow + " button.revoke-key").Click()
	b.AcceptAlert()
	statusSays(b, "ok", "Revoked API key "+issued.Key.ID)
	var info control.KeyInfo
	adminCall(t, c, http.MethodGet, "/rate_limit/v1/keys/"+issued.Key.ID, nil, &info)
	if info.Status != "revoked" {
		t.Errorf("key after the page revoked it: %+v", info)
	}
	b.Eventually(10*time.Second, "the revoked key's delete button", func() (bool, string) {
		text, ok := b.Query(keyRow+" button.delete-key", "")
		return ok, text
	})
	b.FindElement(keyRow + " button.delete-key").Click()
	b.AcceptAlert()
	statusSays(b, "ok", "Deleted API key "+issued.Key.ID)
	var left []control.KeyInfo
	adminCall(t, c, http.MethodGet, "/rate_limit/v1/keys", nil, &left)
	if len(left) != 0 {
		t.Errorf("keys after the page deleted the only one: %+v", left)
	}
}

// varyingTraffic sends requests to c until stop is called or the test
// ends, at a pace that changes every half second (1 to burst requests every
// 50ms): fresh users, which are allowed, and `hot` users that spend their
// quota and are denied.
func varyingTraffic(t *testing.T, c *Caddy, burst, hot int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			for j := range 1 + (i/10)%burst {
				user := fmt.Sprintf("hot-%d", j%hot)
				if (i+j)%2 == 0 {
					user = fmt.Sprintf("u-%d-%d", i, j)
				}
				_, _ = c.Do(ctx, "/", "X-User", user)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

package cli

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// syncBuffer is a bytes.Buffer that a running command and the test can
// share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dashboardRun is one `rate-limit dashboard` running in-process.
type dashboardRun struct {
	// url is the proxy's origin, http://127.0.0.1:<port>.
	url    string
	stderr *syncBuffer
	stop   func()
}

// startDashboard runs `rate-limit --address address dashboard` on a free
// loopback port until the test ends (or stop is called), when it must
// return without error and stop listening.
func startDashboard(t *testing.T, address string) *dashboardRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := NewCommand(Options{})
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.SetArgs([]string{"--address", address, "dashboard", "--listen", "127.0.0.1:0"})
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	var page string
	deadline := time.After(10 * time.Second)
	for page == "" {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("dashboard exited before serving: %v; stderr %q", err, stderr.String())
		case <-deadline:
			cancel()
			t.Fatalf("no Dashboard line after 10s; stdout %q", stdout.String())
		case <-time.After(5 * time.Millisecond):
		}
		line, _, complete := strings.Cut(stdout.String(), "\n")
		if complete {
			var ok bool
			if page, ok = strings.CutPrefix(line, "Dashboard: "); !ok || !strings.HasSuffix(page, dashboardPage) {
				cancel()
				t.Fatalf("first line %q, want Dashboard: http://...%s", line, dashboardPage)
			}
		}
	}
	r := &dashboardRun{url: strings.TrimSuffix(page, dashboardPage), stderr: stderr}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("dashboard stopped with %v, want a clean exit; stderr %q", err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("dashboard still running 10s after its context ended")
			}
			if conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://")); err == nil {
				conn.Close()
				t.Errorf("%s still accepts connections after the dashboard stopped", r.url)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCaddyAdmin runs Caddy's own admin endpoint in this process at
// listen, with Ratewarden's admin API on it (package admin, imported by
// the tests, registers it), until the test ends. Caddy has one admin
// endpoint per process: its tests must not run in parallel.
func startCaddyAdmin(t *testing.T, listen string) {
	t.Helper()
	cfg := fmt.Sprintf(`{"admin": {"listen": %q, "config": {"persist": false}},
		"logging": {"logs": {"default": {"writer": {"output": "discard"}}}}}`, listen)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatalf("starting Caddy's admin endpoint at %s: %v", listen, err)
	}
	t.Cleanup(func() {
		// Stop leaves the admin endpoint running; a config without one
		// stops it.
		if err := caddy.Load([]byte(`{"admin": {"disabled": true, "config": {"persist": false}}}`), true); err != nil {
			t.Errorf("stopping Caddy's admin endpoint: %v", err)
		}
		caddy.Stop()
	})
}

// proxyCase is one request to the dashboard proxy and what it must answer.
type proxyCase struct {
	name   string
	method string // default GET
	path   string
	// host replaces the Host header when set.
	host string
	// headers are sent as given. In them and in host, "{self}" becomes
	// the proxy's origin and "{port}" its port.
	headers map[string]string
	status  int
	// body must be part of the response body.
	body string
	// allowOrigin, when set, is the Access-Control-Allow-Origin Caddy must
	// answer with: the origin its check saw. "{admin}" is the admin
	// endpoint's origin.
	allowOrigin string
	// location is the Location header a redirect must have.
	location string
}

// Headers a browser sends.
var (
	typedNavigation = map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}
	pageFetch       = map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Referer": "{self}/rate_limit/v1/ui/"}
	pageWrite       = map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Origin": "{self}", "Referer": "{self}/rate_limit/v1/ui/"}
)

// with is h plus the header k: v, or without k when v is "".
func with(h map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(h)+len(kv)/2)
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// run sends each case to the proxy at d, for an admin endpoint whose
// origin is admin.
func (d *dashboardRun) run(t *testing.T, admin string, cases []proxyCase) {
	t.Helper()
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(cmp.Or(tc.method, http.MethodGet), d.url+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(d.url, "http://"))
			fill := strings.NewReplacer("{self}", d.url, "{port}", port).Replace
			for k, v := range tc.headers {
				req.Header.Set(k, fill(v))
			}
			if tc.host != "" {
				req.Host = fill(tc.host)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d; body %q", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("body %q, want it to contain %q", body, tc.body)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if tc.allowOrigin != "" {
				want := strings.ReplaceAll(tc.allowOrigin, "{admin}", admin)
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
					t.Errorf("Access-Control-Allow-Origin %q, want %q: Caddy did not see the admin origin", got, want)
				}
			}
		})
	}
}

// The proxy in front of Caddy's real admin endpoint: what a browser may
// do through it, and what it may not.
func TestDashboardProxyAgainstCaddyAdmin(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		admin := freeAddr(t)
		startCaddyAdmin(t, admin)
		d := startDashboard(t, admin)
		d.run(t, "http://"+admin, []proxyCase{
			{name: "a typed navigation to the page", path: "/rate_limit/v1/ui/", headers: typedNavigation,
				status: http.StatusOK, body: `<table id="zones">`, allowOrigin: "{admin}"},
			{name: "the page's fetch", path: "/rate_limit/v1/version", headers: pageFetch,
				status: http.StatusOK, body: `"api":"v1"`, allowOrigin: "{admin}"},
			{name: "the page's module script", path: "/rate_limit/v1/ui/app.js",
				headers: with(pageFetch, "Sec-Fetch-Dest", "script"), status: http.StatusOK, body: "../zones"},
			{name: "the page's write, with its Origin", method: http.MethodDelete, path: "/rate_limit/v1/zones/api/override",
				headers: pageWrite, status: http.StatusServiceUnavailable, allowOrigin: "{admin}"},
			{name: "a client that is no browser", path: "/rate_limit/v1/version", status: http.StatusOK, body: `"api":"v1"`},
			{name: "the page at localhost", path: "/rate_limit/v1/ui/", host: "localhost:{port}",
				headers: with(pageFetch, "Referer", "http://localhost:{port}/rate_limit/v1/ui/"), status: http.StatusOK},

			{name: "another origin", path: "/rate_limit/v1/version", headers: with(pageWrite, "Origin", "http://evil.example"),
				status: http.StatusForbidden, body: "client is not allowed to access from origin 'http://evil.example'"},
			{name: "another port of the same host", path: "/rate_limit/v1/version", headers: with(pageWrite, "Origin", "http://127.0.0.1:1"),
				status: http.StatusForbidden, body: "not allowed"},
			{name: "the null origin", path: "/rate_limit/v1/version", headers: with(pageWrite, "Origin", "null"),
				status: http.StatusForbidden, body: "origin 'null'"},
			{name: "another origin's Referer", path: "/rate_limit/v1/version", headers: with(pageFetch, "Referer", "http://evil.example/page"),
				status: http.StatusForbidden, body: "referer 'http://evil.example/page'"},
			{name: "a cross-site request without Origin", path: "/rate_limit/v1/version", headers: with(pageFetch, "Sec-Fetch-Site", "cross-site", "Referer", ""),
				status: http.StatusForbidden, body: "cross-site request"},
			{name: "a same-site request from another port", path: "/rate_limit/v1/version", headers: with(pageFetch, "Sec-Fetch-Site", "same-site", "Referer", ""),
				status: http.StatusForbidden, body: "same-site request"},
			{name: "a link from another site", path: "/rate_limit/v1/ui/", headers: with(typedNavigation, "Sec-Fetch-Site", "cross-site"),
				status: http.StatusForbidden},
			{name: "a rebound DNS name", path: "/rate_limit/v1/version", host: "evil.example:{port}", headers: pageFetch,
				status: http.StatusForbidden, body: "host not allowed: evil.example:"},
			{name: "a forwarded port (ssh -L)", path: "/rate_limit/v1/version", host: "localhost:8080",
				headers: with(pageWrite, "Origin", "http://localhost:8080", "Referer", ""), status: http.StatusOK, allowOrigin: "{admin}"},
			{name: "another port's origin at a forwarded port", path: "/rate_limit/v1/version", host: "localhost:8080",
				headers: with(pageWrite, "Referer", ""), status: http.StatusForbidden, body: "not allowed"},
			{name: "a rebound DNS name without a port", path: "/rate_limit/v1/version", host: "evil.example",
				status: http.StatusForbidden, body: "host not allowed: evil.example"},

			{name: "Caddy's config", path: "/config/", status: http.StatusNotFound},
			{name: "the API prefix itself", path: "/rate_limit/v1", status: http.StatusNotFound},
			{name: "dot segments out of the API", path: "/rate_limit/v1/../../config/", status: http.StatusNotFound},
			{name: "an empty segment", path: "/rate_limit/v1//ui/", status: http.StatusNotFound},
			{name: "the root", path: "/", headers: typedNavigation, status: http.StatusNotFound},

			{name: "no-cors, refused by Caddy", path: "/rate_limit/v1/ui/app.js", headers: with(pageFetch, "Sec-Fetch-Mode", "no-cors"),
				status: http.StatusBadRequest, body: "Disabling same-origin restrictions is not allowed."},
			{name: "a WebSocket, refused by Caddy", path: "/rate_limit/v1/version", headers: with(pageFetch, "Connection", "Upgrade", "Upgrade", "websocket"),
				status: http.StatusBadRequest, body: "WebSocket connections aren't allowed."},
			{name: "the page without its slash", path: "/rate_limit/v1/ui", headers: typedNavigation,
				status: http.StatusTemporaryRedirect, location: "/rate_limit/v1/ui/"},
		})
	})

	t.Run("unix socket", func(t *testing.T) {
		dir, err := os.MkdirTemp("", "rw-dash") // short: socket paths are limited
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		admin := "unix/" + filepath.Join(dir, "admin.sock")
		startCaddyAdmin(t, admin)
		d := startDashboard(t, admin)
		d.run(t, "", []proxyCase{
			{name: "a typed navigation to the page", path: "/rate_limit/v1/ui/", headers: typedNavigation,
				status: http.StatusOK, body: `<table id="zones">`},
			{name: "the page's fetch", path: "/rate_limit/v1/version", headers: pageFetch, status: http.StatusOK, body: `"api":"v1"`},
			{name: "the page's write, with its Origin", method: http.MethodDelete, path: "/rate_limit/v1/zones/api/override",
				headers: pageWrite, status: http.StatusServiceUnavailable},
			{name: "another origin", path: "/rate_limit/v1/version", headers: with(pageWrite, "Origin", "http://evil.example"),
				status: http.StatusForbidden, body: "origin 'http://evil.example'"},
			{name: "a cross-site request", path: "/rate_limit/v1/version", headers: with(pageFetch, "Sec-Fetch-Site", "cross-site", "Referer", ""),
				status: http.StatusForbidden},
			{name: "no-cors, refused by the proxy as Caddy would", path: "/rate_limit/v1/ui/app.js", headers: with(pageFetch, "Sec-Fetch-Mode", "no-cors"),
				status: http.StatusBadRequest, body: "Disabling same-origin restrictions is not allowed."},
			{name: "Caddy's config", path: "/config/", status: http.StatusNotFound},
		})
	})
}

// upstreamRequest is what the stand-in admin endpoint received.
type upstreamRequest struct {
	host   string
	header http.Header
}

// What the proxy changes in a request and a response, seen by a stand-in
// for the admin endpoint: Host, Origin and Referer name the admin
// endpoint, nothing else changes, and a redirect to the admin origin points
// back at the proxy.
func TestDashboardProxyRewrites(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []upstreamRequest
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, upstreamRequest{r.Host, r.Header.Clone()})
		mu.Unlock()
		if loc := r.URL.Query().Get("redirect"); loc != "" {
			http.Redirect(w, r, strings.ReplaceAll(loc, "{upstream}", "http://"+r.Host), http.StatusMovedPermanently)
		}
	}))
	t.Cleanup(upstream.Close)
	admin := upstream.Listener.Addr().String()
	d := startDashboard(t, admin)
	take := func() upstreamRequest {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 {
			t.Fatalf("upstream got %d requests, want 1", len(got))
		}
		r := got[0]
		got = nil
		return r
	}

	t.Run("headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, d.url+"/rate_limit/v1/zones/api/keys?key=a", strings.NewReader("{}"))
		sent := map[string]string{
			"Origin":         d.url,
			"Referer":        d.url + "/rate_limit/v1/ui/?tab=keys",
			"Sec-Fetch-Site": "same-origin",
			"Sec-Fetch-Mode": "cors",
			"Sec-Fetch-Dest": "empty",
			"Cookie":         "a=b",
			"Authorization":  "Bearer t",
			"Content-Type":   "application/json",
			"Accept":         "application/json",
			"User-Agent":     "browser/1",
			"X-Custom":       "kept",
		}
		for k, v := range sent {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := take()
		if r.host != admin {
			t.Errorf("Host %q, want the admin address %q", r.host, admin)
		}
		want := with(sent, "Origin", "http://"+admin, "Referer", "http://"+admin+"/rate_limit/v1/ui/?tab=keys")
		for k, v := range want {
			if g := r.header.Get(k); g != v {
				t.Errorf("%s %q, want %q", k, g, v)
			}
		}
	})

	t.Run("a typed navigation gets a Referer", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, d.url+"/rate_limit/v1/ui/", nil)
		for k, v := range typedNavigation {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := take()
		if g := r.header.Get("Origin"); g != "http://"+admin {
			t.Errorf("Origin %q, want http://%s", g, admin)
		}
		if g := r.header.Get("Referer"); g != "http://"+admin+"/rate_limit/v1/ui/" {
			t.Errorf("Referer %q, want the admin origin and the path", g)
		}
	})

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name, location, want string
	}{
		{"to the admin origin", "{upstream}/rate_limit/v1/ui/", "{self}/rate_limit/v1/ui/"},
		{"to the admin origin, with a query", "{upstream}/rate_limit/v1/ui/?a=1", "{self}/rate_limit/v1/ui/?a=1"},
		{"relative", "/rate_limit/v1/ui/", "/rate_limit/v1/ui/"},
		{"to another origin", "http://elsewhere.example/x", "http://elsewhere.example/x"},
	} {
		t.Run("redirect "+tc.name, func(t *testing.T) {
			resp, err := client.Get(d.url + "/rate_limit/v1/ui?redirect=" + url.QueryEscape(tc.location))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			take()
			want := strings.ReplaceAll(tc.want, "{self}", d.url)
			if g := resp.Header.Get("Location"); g != want {
				t.Errorf("Location %q, want %q", g, want)
			}
		})
	}
}

// When nothing answers at the admin address, the page gets 502 and the
// error output says where the proxy looked.
func TestDashboardProxyAdminDown(t *testing.T) {
	t.Parallel()
	admin := freeAddr(t)
	d := startDashboard(t, admin)
	resp, err := http.Get(d.url + "/rate_limit/v1/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "reaching the admin endpoint at " + admin + " (is Caddy running there?)"
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), want) {
		t.Errorf("status %d, body %q; want 502 saying %q", resp.StatusCode, body, want)
	}
	if !strings.Contains(d.stderr.String(), "error: GET /rate_limit/v1/version: "+want) {
		t.Errorf("stderr %q, want the failure reported", d.stderr.String())
	}
}

// The proxy lets whoever reaches it use the admin API, so it listens on
// loopback addresses only; and it needs an admin address it can dial.
func TestDashboardRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"every interface", []string{"--listen", "0.0.0.0:2020"}, "serves loopback addresses only"},
		{"every interface, no host", []string{"--listen", ":2020"}, "serves loopback addresses only"},
		{"every IPv6 interface", []string{"--listen", "[::]:2020"}, "serves loopback addresses only"},
		{"a public address", []string{"--listen", "192.0.2.1:2020"}, "serves loopback addresses only"},
		{"a host name", []string{"--listen", "dashboard.example:2020"}, "serves loopback addresses only"},
		{"a port alone", []string{"--listen", "2020"}, "want a loopback host:port"},
		{"an admin address of a file descriptor", []string{"--address", "fd/3"}, "over TCP or a unix socket only"},
		{"an admin port range", []string{"--address", "127.0.0.1:2019-2020"}, "want one port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"dashboard"}, tc.args...)
			if !strings.HasPrefix(tc.args[0], "--address") {
				args = append(args, "--address", "127.0.0.1:2019")
			}
			res := runCLI("", args...)
			if res.err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(res.stderr, "error: ") || !strings.Contains(res.stderr, tc.want) || strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one error line saying %q", res.stderr, tc.want)
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

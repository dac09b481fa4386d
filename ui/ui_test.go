package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// serve sends one request to Handler and returns the recorded response.
func serve(t *testing.T, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return string(b)
}

func TestHandlerServesAssetsWithTheirTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path, contentType, contains string
	}{
		{"the page at the ui directory", "/rate_limit/v1/ui/", "text/html; charset=utf-8", "<table id=\"zones\">"},
		{"the page by name", "/rate_limit/v1/ui/index.html", "text/html; charset=utf-8", "<svg id=\"chart\""},
		{"the script", "/rate_limit/v1/ui/app.js", "text/javascript; charset=utf-8", "../zones"},
		{"the chart module", "/rate_limit/v1/ui/chart.js", "text/javascript; charset=utf-8", "export function drawChart"},
		{"the stylesheet", "/rate_limit/v1/ui/style.css", "text/css; charset=utf-8", ".series-0"},
		{"any prefix", "/elsewhere/ui/", "text/html; charset=utf-8", "Ratewarden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := serve(t, http.MethodGet, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if b := body(t, resp); !strings.Contains(b, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
		})
	}
}

func TestHandlerSendsSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		// The admin endpoint checks a browser request's Origin, or else its
		// Referer: the page must keep sending a same-origin referrer.
		"Referrer-Policy": "same-origin",
	}
	for _, path := range []string{"/rate_limit/v1/ui/", "/rate_limit/v1/ui/app.js", "/rate_limit/v1/ui/style.css", "/rate_limit/v1/ui/missing.js"} {
		resp := serve(t, http.MethodGet, path)
		for name, value := range want {
			if got := resp.Header.Get(name); got != value {
				t.Errorf("GET %s: %s %q, want %q", path, name, got, value)
			}
		}
	}
}

func TestHandlerRefusesWhatIsNotAnAsset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"an unknown asset", http.MethodGet, "/rate_limit/v1/ui/missing.js", http.StatusNotFound, ""},
		{"a file of another type in the embed", http.MethodGet, "/rate_limit/v1/ui/assets", http.StatusNotFound, ""},
		{"a subdirectory", http.MethodGet, "/rate_limit/v1/ui/sub/app.js", http.StatusNotFound, ""},
		{"a path outside the ui directory", http.MethodGet, "/rate_limit/v1/zones", http.StatusNotFound, ""},
		{"a write method", http.MethodPost, "/rate_limit/v1/ui/", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"a delete", http.MethodDelete, "/rate_limit/v1/ui/app.js", http.StatusMethodNotAllowed, "GET, HEAD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := serve(t, tc.method, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q, want application/problem+json", ct)
			}
			var p problem
			if err := json.Unmarshal([]byte(body(t, resp)), &p); err != nil {
				t.Fatalf("decoding the problem: %v", err)
			}
			if p.Status != tc.status || p.Title == "" || !strings.HasPrefix(p.Type, problemBase) || !strings.Contains(p.Detail, tc.path) {
				t.Errorf("problem %+v: want status %d, a title, an admin problem type and the path in the detail", p, tc.status)
			}
		})
	}
}

func TestHandlerRedirectsTheDirectoryWithoutSlash(t *testing.T) {
	t.Parallel()
	resp := serve(t, http.MethodGet, "/rate_limit/v1/ui")
	if resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("status %d, want 301", resp.StatusCode)
	}
	// Built from the request's own path, so that it holds under any prefix.
	if loc := resp.Header.Get("Location"); loc != "/rate_limit/v1/ui/" {
		t.Errorf("Location %q, want /rate_limit/v1/ui/", loc)
	}
}

func TestHandlerHeadSendsNoBody(t *testing.T) {
	t.Parallel()
	get := serve(t, http.MethodGet, "/rate_limit/v1/ui/app.js")
	head := serve(t, http.MethodHead, "/rate_limit/v1/ui/app.js")
	if head.StatusCode != http.StatusOK {
		t.Fatalf("HEAD status %d, want 200", head.StatusCode)
	}
	if b := body(t, head); b != "" {
		t.Errorf("HEAD sent %d body bytes", len(b))
	}
	if h, g := head.Header.Get("Content-Length"), get.Header.Get("Content-Length"); h == "" || h != g {
		t.Errorf("HEAD Content-Length %q, GET %q: want the same, set", h, g)
	}
}

// The page's CSP allows no inline code, and Caddy's admin endpoint refuses
// browser requests made in no-cors mode: index.html may only load its
// script as a module and its stylesheet with crossorigin, both by relative
// URL.
func TestIndexHasNoInlineCodeAndOnlyRelativeCORSLoads(t *testing.T) {
	t.Parallel()
	page := body(t, serve(t, http.MethodGet, "/rate_limit/v1/ui/"))
	forbidden := []struct{ what, re string }{
		{"an inline <style> element", `(?i)<style`},
		{"a style attribute", `(?i)\sstyle\s*=`},
		{"an event handler attribute", `(?i)\son[a-z]+\s*=`},
		{"a javascript: URL", `(?i)javascript:`},
		{"an absolute URL", `(?i)(src|href|action)\s*=\s*"(/|[a-z]+://)`},
		{"a script with a body", `(?i)<script[^>]*>\s*[^<\s]`},
	}
	for _, f := range forbidden {
		if loc := regexp.MustCompile(f.re).FindStringIndex(page); loc != nil {
			t.Errorf("index.html has %s: %q", f.what, page[loc[0]:min(loc[1]+40, len(page))])
		}
	}
	scripts := regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(page, -1)
	if len(scripts) == 0 {
		t.Fatal("index.html loads no script")
	}
	for _, s := range scripts {
		if !strings.Contains(s, `type="module"`) || !strings.Contains(s, `src="app.js"`) {
			t.Errorf("script tag %s: want type=\"module\" src=\"app.js\" (a classic script is a no-cors request)", s)
		}
	}
	for _, l := range regexp.MustCompile(`(?i)<link[^>]*rel="stylesheet"[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(l, `crossorigin="anonymous"`) {
			t.Errorf("stylesheet %s: want crossorigin=\"anonymous\" (else a no-cors request)", l)
		}
	}
}

// Every file the page refers to is served, and the scripts talk only to
// their own origin, through relative URLs, and never write HTML.
func TestScriptsUseRelativeURLsAndNoHTMLInjection(t *testing.T) {
	t.Parallel()
	page := body(t, serve(t, http.MethodGet, "/rate_limit/v1/ui/"))
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	for _, name := range []string{"app.js", "chart.js"} {
		js := body(t, serve(t, http.MethodGet, "/rate_limit/v1/ui/"+name))
		refs = append(refs, regexp.MustCompile(`from "\./([^"]+)"`).FindAllStringSubmatch(js, -1)...)
		code := strings.ReplaceAll(js, `"http://www.w3.org/2000/svg"`, "")
		for _, bad := range []string{"://", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", `fetch("/`, "fetch('/"} {
			if strings.Contains(code, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
	for _, m := range refs {
		if strings.HasPrefix(m[1], "data:") {
			continue
		}
		if resp := serve(t, http.MethodGet, "/rate_limit/v1/ui/"+m[1]); resp.StatusCode != http.StatusOK {
			t.Errorf("the page refers to %s, which answers %d", m[1], resp.StatusCode)
		}
	}
}

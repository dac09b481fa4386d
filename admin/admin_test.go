package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestModule(t *testing.T) {
	t.Parallel()
	info := Router{}.CaddyModule()
	if info.ID != "admin.api.rate_limit" {
		t.Errorf("module ID %q", info.ID)
	}
	if _, ok := info.New().(caddy.AdminRouter); !ok {
		t.Error("the module is not an AdminRouter")
	}
	for _, r := range (Router{}).Routes() {
		if r.Pattern == "/rate_limit/" || r.Pattern == basePath+"/ui/" {
			continue // the problem+json fallback and the dashboard
		}
		method, path, hasMethod := strings.Cut(r.Pattern, " ")
		if !hasMethod || method == "" || !strings.HasPrefix(path, basePath+"/") {
			t.Errorf("route %q is not a method pattern under %s", r.Pattern, basePath)
		}
	}
}

// TestNotConfigured runs the router as Caddy builds it, with no
// rate_limit app in the (absent) active config: every endpoint that needs
// the app answers 503, and the static ones still work.
func TestNotConfigured(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mount(mux, Router{}.Routes())
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", v1 + "/zones", "", http.StatusServiceUnavailable},
		{"GET", v1 + "/health", "", http.StatusServiceUnavailable},
		{"POST", v1 + "/keys", `{"name":"x"}`, http.StatusServiceUnavailable},
		{"GET", v1 + "/version", "", http.StatusOK},
		{"GET", v1 + "/openapi.json", "", http.StatusOK},
	} {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		r := response{req: req, status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		if c.status == http.StatusOK {
			if r.status != http.StatusOK {
				t.Errorf("%s %s: %d %s", c.method, c.path, r.status, r.body)
			}
			continue
		}
		p := r.problem(t, c.status)
		if p.Type != problemBase+slugNotConfigured || p.Detail != "rate_limit app not configured" {
			t.Errorf("%s %s: problem %+v", c.method, c.path, p)
		}
		testValidator(t).RequireResponse(t, req, r.status, r.header, r.body)
	}
}

// TestDashboardMounted checks that the dashboard is served beside the API.
func TestDashboardMounted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{})
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", v1 + "/ui/", http.StatusOK},
		{"POST", v1 + "/ui/", http.StatusMethodNotAllowed},
	} {
		r := h.do(c.method, c.path, "")
		if r.status != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, r.status, c.status)
		}
		if c.status == http.StatusOK && !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s %s: content type %q", c.method, c.path, r.header.Get("Content-Type"))
		}
	}
	if r := h.do("GET", v1+"/ui", ""); r.status/100 != 3 || r.header.Get("Location") != v1+"/ui/" {
		t.Errorf("GET %s/ui: %d to %q, want a redirect to the directory", v1, r.status, r.header.Get("Location"))
	}
}

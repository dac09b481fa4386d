package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestVersionRoute(t *testing.T) {
	routes := Router{}.Routes()
	if len(routes) != 1 || routes[0].Pattern != "/rate_limit/v1/version" {
		t.Fatalf("routes = %+v", routes)
	}
	for _, tc := range []struct {
		method string
		status int
	}{
		{http.MethodGet, http.StatusOK},
		{http.MethodPost, http.StatusMethodNotAllowed},
	} {
		w := httptest.NewRecorder()
		err := routes[0].Handler.ServeHTTP(w, httptest.NewRequest(tc.method, "/rate_limit/v1/version", nil))
		if tc.status == http.StatusOK {
			if err != nil || w.Body.String() != `{"api":"v1"}` {
				t.Errorf("%s: err %v, body %q", tc.method, err, w.Body)
			}
			continue
		}
		apiErr, ok := err.(caddy.APIError)
		if !ok || apiErr.HTTPStatus != tc.status {
			t.Errorf("%s: error %v, want status %d", tc.method, err, tc.status)
		}
	}
	if id := (Router{}).CaddyModule().ID; id != "admin.api.rate_limit" {
		t.Errorf("module ID %q", id)
	}
}

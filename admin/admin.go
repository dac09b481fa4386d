// Package admin is Ratewarden's admin API, mounted on Caddy's admin
// endpoint under /rate_limit/. It reaches running state only through the
// rate_limit app, looked up per request.
package admin

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(Router{})
}

// Router is the admin.api.rate_limit module. For now it serves only a
// version document; keys, overrides, inspect/reset and health come next.
type Router struct{}

// CaddyModule returns the Caddy module information.
func (Router) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.rate_limit",
		New: func() caddy.Module { return new(Router) },
	}
}

// Routes returns the admin routes.
func (Router) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: "/rate_limit/v1/version",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if r.Method != http.MethodGet {
				return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed}
			}
			w.Header().Set("Content-Type", "application/json")
			_, err := w.Write([]byte(`{"api":"v1"}`))
			return err
		}),
	}}
}

// Interface guards
var _ caddy.AdminRouter = (*Router)(nil)

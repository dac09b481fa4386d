// Package admin is Ratewarden's admin API, mounted on Caddy's admin
// endpoint under /rate_limit/v1. It reaches running state only through the
// rate_limit app, looked up per request: admin routers are built anew on
// every config load and never cleaned up, so they hold no state of the app.
//
// Every request body is checked against the OpenAPI 3.1 document in
// openapi.json (served at /rate_limit/v1/openapi.json) with kin-openapi's
// openapi3filter before a handler sees it, and every error is an
// application/problem+json body whose type is documented in
// docs/problems.md.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/ui"
)

func init() {
	caddy.RegisterModule(Router{})
}

// basePath is the prefix of every route.
const basePath = "/rate_limit/v1"

// Router is the admin.api.rate_limit module. It has no configuration; the
// fields are for tests.
type Router struct {
	// backend finds the running rate_limit app. Default: the active
	// config's app, looked up per request.
	backend func() (Backend, error)
	// auditLog returns the audit logger. Default: the backend's.
	auditLog func() *zap.Logger
	// now is the admin rate limiter's clock. Default: time.Now.
	now func() time.Time
	// limits configures the admin rate limiter. Default: 30 per minute,
	// burst 10, per client.
	limits limitOptions
}

// CaddyModule returns the Caddy module information.
func (Router) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.rate_limit",
		New: func() caddy.Module { return new(Router) },
	}
}

// Routes returns the admin routes. Each call starts a fresh admin rate
// limiter, which lives as long as the admin server using the routes.
func (rt Router) Routes() []caddy.AdminRoute {
	a := &api{
		backend:  rt.backend,
		auditLog: rt.auditLog,
		now:      rt.now,
		limiter:  newClientLimiter(rt.limits),
	}
	if a.backend == nil {
		a.backend = activeBackend
	}
	if a.now == nil {
		a.now = time.Now
	}
	eps := endpoints()
	routes := make([]caddy.AdminRoute, 0, len(eps)+2)
	a.probe = http.NewServeMux()
	for _, ep := range eps {
		pattern := ep.method + " " + basePath + ep.path
		routes = append(routes, caddy.AdminRoute{Pattern: pattern, Handler: a.handler(ep)})
		a.probe.Handle(pattern, http.NotFoundHandler())
	}
	// The dashboard: a page that calls this API from the browser.
	dashboard := ui.Handler()
	routes = append(routes, caddy.AdminRoute{
		Pattern: basePath + "/ui/",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			dashboard.ServeHTTP(w, r)
			return nil
		}),
	})
	// Everything else under /rate_limit/ is a problem+json 404 or 405
	// rather than ServeMux's plain text.
	routes = append(routes, caddy.AdminRoute{Pattern: "/rate_limit/", Handler: caddy.AdminHandlerFunc(a.fallback)})
	return routes
}

// activeBackend is the active config's rate_limit app.
func activeBackend() (Backend, error) {
	app, err := caddy.ActiveContext().AppIfConfigured("rate_limit")
	if err != nil {
		return nil, err
	}
	b, ok := app.(Backend)
	if !ok {
		return nil, fmt.Errorf("the rate_limit app (%T) does not serve the admin API", app)
	}
	return b, nil
}

// api serves the routes of one Routes call.
type api struct {
	backend  func() (Backend, error)
	auditLog func() *zap.Logger
	now      func() time.Time
	limiter  *clientLimiter
	// probe holds the same patterns as the routes, to tell a 405 from a
	// 404 in the fallback.
	probe *http.ServeMux
}

// endpoint is one route.
type endpoint struct {
	method, path string
	body         bodyRule
	// limited endpoints count against the admin client rate limit.
	limited bool
	// static endpoints need no backend.
	static bool
	serve  func(c *call)
}

// endpoints is the route table.
func endpoints() []endpoint {
	small := bodyRule{max: maxBody}
	return []endpoint{
		{method: http.MethodGet, path: "/version", static: true, serve: serveVersion},
		{method: http.MethodGet, path: "/openapi.json", static: true, serve: serveOpenAPI},
		{method: http.MethodGet, path: "/health", serve: serveHealth},
		{method: http.MethodGet, path: "/zones", serve: serveZones},
		{method: http.MethodGet, path: "/zones/{zone}", serve: serveZone},
		{method: http.MethodPut, path: "/zones/{zone}/override", body: small, serve: serveSetZoneOverride},
		{method: http.MethodDelete, path: "/zones/{zone}/override", serve: serveRemoveZoneOverride},
		{method: http.MethodGet, path: "/zones/{zone}/top", serve: serveTop},
		{method: http.MethodGet, path: "/zones/{zone}/keys", serve: serveInspect},
		{method: http.MethodDelete, path: "/zones/{zone}/keys", serve: serveReset},
		{method: http.MethodPut, path: "/zones/{zone}/keys/override", body: small, serve: serveSetKeyOverride},
		{method: http.MethodDelete, path: "/zones/{zone}/keys/override", serve: serveRemoveKeyOverride},
		{method: http.MethodGet, path: "/overrides", serve: serveOverrides},
		{method: http.MethodPost, path: "/explain", body: small, serve: serveExplain},
		{method: http.MethodGet, path: "/keys", limited: true, serve: serveListKeys},
		{method: http.MethodPost, path: "/keys", body: small, limited: true, serve: serveCreateKey},
		{method: http.MethodGet, path: "/keys/{id}", serve: serveKey},
		{method: http.MethodDelete, path: "/keys/{id}", serve: serveDeleteKey},
		{method: http.MethodPost, path: "/keys/{id}/rotate", body: bodyRule{max: maxBody, optional: true}, limited: true, serve: serveRotateKey},
		{method: http.MethodPost, path: "/keys/{id}/revoke", serve: serveRevokeKey},
		{method: http.MethodGet, path: "/export", serve: serveExport},
		{method: http.MethodPost, path: "/import", body: bodyRule{max: maxImportBody}, serve: serveImport},
	}
}

// call is one request being served.
type call struct {
	a    *api
	w    http.ResponseWriter
	r    *http.Request
	b    Backend
	id   string // request ID
	body []byte // validated JSON, or nil
}

// handler runs the steps every endpoint shares, in order: request ID,
// admin rate limit, body checks, OpenAPI validation, backend lookup.
func (a *api) handler(ep endpoint) caddy.AdminHandler {
	return caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		c := &call{a: a, w: w, r: r, id: requestID(r)}
		w.Header().Set("X-Request-ID", c.id)
		if ep.limited {
			if ok, wait := a.limiter.allow(clientID(r), a.now()); !ok {
				p := newProblem(http.StatusTooManyRequests, slugRateLimited,
					fmt.Sprintf("too many admin requests from this client; retry after %d seconds", retrySeconds(wait)))
				p.retryAfter = retrySeconds(wait)
				c.fail(p)
				return nil
			}
		}
		body, p := readBody(w, r, ep.body)
		if p != nil {
			c.fail(p)
			return nil
		}
		if p := validateRequest(r.Context(), r, ep.path, body); p != nil {
			c.fail(p)
			return nil
		}
		c.body = body
		if !ep.static {
			b, err := a.backend()
			if err != nil {
				c.fail(backendProblem(err))
				return nil
			}
			c.b = b
		}
		ep.serve(c)
		return nil
	})
}

// backendProblem is the 503 for a rate_limit app that cannot be reached.
func backendProblem(err error) *problem {
	if errors.Is(err, caddy.ErrNotConfigured) {
		return newProblem(http.StatusServiceUnavailable, slugNotConfigured, "rate_limit app not configured")
	}
	p := newProblem(http.StatusServiceUnavailable, slugNotConfigured, "rate_limit app not available")
	p.cause = err
	return p
}

// fallback answers every other request under /rate_limit/.
func (a *api) fallback(w http.ResponseWriter, r *http.Request) error {
	c := &call{a: a, w: w, r: r, id: requestID(r)}
	w.Header().Set("X-Request-ID", c.id)
	if allow := a.allowedMethods(r); len(allow) > 0 {
		p := newProblem(http.StatusMethodNotAllowed, slugMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
		p.allow = allow
		c.fail(p)
		return nil
	}
	c.fail(newProblem(http.StatusNotFound, slugNotFound, "no admin API endpoint at "+r.URL.Path))
	return nil
}

// allowedMethods lists the methods the routes have for r's path.
func (a *api) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.probe.Handler(probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// decode decodes the validated body into v, or answers 400 and returns
// false.
func (c *call) decode(v any) bool {
	if c.body == nil {
		return true
	}
	if p := decodeBody(c.body, v); p != nil {
		c.fail(p)
		return false
	}
	return true
}

// reply sends v as JSON with status.
func (c *call) reply(status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		c.fail(internalProblem(fmt.Errorf("encoding the response: %w", err)))
		return
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	_, _ = c.w.Write(body)
}

// fail sends p.
func (c *call) fail(p *problem) { writeProblem(c.w, c.r, c.id, p) }

// failErr sends the problem err maps to; what names the object.
func (c *call) failErr(err error, what string) { c.fail(errorProblem(err, what)) }

// audit logs one change.
func (c *call) audit(action, object string, before, after any) {
	log := c.b.AuditLogger()
	if c.a.auditLog != nil {
		log = c.a.auditLog()
	}
	control.Audit(log, control.AuditEvent{
		Action:    action,
		Object:    object,
		Before:    before,
		After:     after,
		RequestID: c.id,
		Actor:     actor(c.r),
	})
}

func serveVersion(c *call) { c.reply(http.StatusOK, map[string]string{"api": "v1"}) }

func serveOpenAPI(c *call) {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(openapiJSON)
}

// Interface guards
var _ caddy.AdminRouter = (*Router)(nil)

package ratewarden

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store"
)

// Explain implements admin.Backend. It runs a synthetic request through
// each server's routes (route matchers decide which rate_limit handlers it
// reaches, subroutes included; a terminal route stops the walk) and asks
// every zone of those handlers what it would do. Nothing is charged: the
// store call peeks. Handlers that would answer the request before a later
// route are not simulated, so a later handler may be listed that a real
// request would not reach.
func (a *App) Explain(ctx context.Context, req control.ExplainRequest) (control.Explanation, error) {
	httpApp := a.httpApp()
	if httpApp == nil {
		return control.Explanation{}, fmt.Errorf("no HTTP servers: %w", control.ErrNotFound)
	}
	names := make([]string, 0, len(httpApp.Servers))
	for n := range httpApp.Servers {
		if req.Server == "" || req.Server == n {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return control.Explanation{}, &control.FieldError{Field: "/server", Reason: fmt.Sprintf("no server named %q", req.Server)}
	}
	sort.Strings(names)
	out := control.Explanation{Decision: outcomeAllowed, Zones: []control.ZoneExplain{}}
	for _, n := range names {
		srv := httpApp.Servers[n]
		r, err := syntheticRequest(ctx, req, srv)
		if err != nil {
			return control.Explanation{}, err
		}
		var reached []*Handler
		walkRoutes(srv.Routes, r, map[string]bool{}, func(h *Handler) { reached = append(reached, h) })
		for _, h := range reached {
			if err := h.explain(r, n, &out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// syntheticRequest builds the request to explain, prepared as the server
// would prepare it (replacer, client IP, vars).
func syntheticRequest(ctx context.Context, req control.ExplainRequest, srv *caddyhttp.Server) (*http.Request, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(req.URL)
	if err != nil || u.Host == "" {
		return nil, &control.FieldError{Field: "/url", Reason: "must be an absolute URL such as https://example.com/path"}
	}
	r, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, &control.FieldError{Field: "/method", Reason: err.Error()}
	}
	for k, vs := range req.Headers {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	if h := r.Header.Get("Host"); h != "" {
		r.Host = h
	}
	r.RemoteAddr = req.RemoteAddr
	if r.RemoteAddr == "" {
		r.RemoteAddr = "127.0.0.1:0"
	}
	if _, _, err := net.SplitHostPort(r.RemoteAddr); err != nil {
		r.RemoteAddr = net.JoinHostPort(strings.Trim(r.RemoteAddr, "[]"), "0")
	}
	if u.Scheme == "https" {
		r.TLS = &tls.ConnectionState{} // so `protocol https` matches
	}
	repl := caddy.NewReplacer()
	return caddyhttp.PrepareRequest(r, repl, nullWriter{}, srv), nil
}

// walkRoutes calls fn for each rate_limit handler in routes, descending
// into subroutes. With a request r, only the handlers r reaches count: as
// in Caddy, a route applies when its matchers match, once a route of a
// group (a `handle` block, say) has matched the group's other routes are
// skipped (groups holds the groups matched so far), and a terminal route
// ends the walk (the result is true then). With r nil, every handler
// counts.
func walkRoutes(routes caddyhttp.RouteList, r *http.Request, groups map[string]bool, fn func(*Handler)) bool {
	for _, rt := range routes {
		if r != nil {
			if rt.Group != "" && groups[rt.Group] {
				continue
			}
			if len(rt.MatcherSets) > 0 {
				if ok, err := rt.MatcherSets.AnyMatchWithError(r); err != nil || !ok {
					continue
				}
			}
			if rt.Group != "" {
				groups[rt.Group] = true
			}
		}
		for _, mh := range rt.Handlers {
			switch v := mh.(type) {
			case *Handler:
				fn(v)
			case *caddyhttp.Subroute:
				if walkRoutes(v.Routes, r, groups, fn) {
					return true
				}
			}
		}
		if r != nil && rt.Terminal {
			return true
		}
	}
	return false
}

// explain adds this handler's zones to out.
func (h *Handler) explain(r *http.Request, server string, out *control.Explanation) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if h.Exempt.exempts(r) {
		out.Exempt = true
		out.Decision = outcomeExempt
		for _, z := range h.zones {
			out.Zones = append(out.Zones, control.ZoneExplain{Server: server, Zone: z.name, Reason: "request is exempt"})
		}
		return nil
	}
	if a := h.APIKey; a != nil {
		id, res := a.keys.Lookup(a.token(r))
		ak := &control.ExplainAPIKey{Result: res.String()}
		a.setPlaceholders(repl, id, res)
		if res == control.LookupOK {
			ak.ID, ak.Name, ak.Tier = id.ID, id.Name, id.Tier
		} else if a.Require {
			out.Decision = "unauthorized"
		}
		out.APIKey = ak
	}
	var reqs []store.Request
	var idx []int
	for _, z := range h.zones {
		ze := control.ZoneExplain{Server: server, Zone: z.name}
		lz, enabled := h.live(z)
		var ok bool
		ok, ze.Reason, ze.Errors = explainMatch(z, r, enabled)
		if ok {
			ze.Matched = true
			key, raw, err := z.key(repl)
			if err != nil {
				ze.Errors = append(ze.Errors, "key_expression failed, keyed on the client IP: "+err.Error())
			}
			cost, err := z.cost(repl)
			if err != nil {
				ze.Errors = append(ze.Errors, "cost_expression failed, charged 1: "+err.Error())
			}
			ze.KeyHash, ze.Cost = key.String(), cost
			if z.LogKey {
				ze.Key = raw
			}
			p, shadow := h.effective(z, lz, key)
			ze.Limit = p.Limit
			reqs = append(reqs, store.Request{Zone: z.name, Key: key, Algorithm: z.alg, Policy: p, Cost: cost, Shadow: shadow, Peek: true})
			idx = append(idx, len(out.Zones))
		}
		out.Zones = append(out.Zones, ze)
	}
	if len(reqs) == 0 {
		return nil
	}
	dec := make([]algorithms.Decision, len(reqs))
	if err := h.store.Take(r.Context(), reqs, dec); err != nil {
		return fmt.Errorf("asking the store: %w: %v", control.ErrUnavailable, err)
	}
	for i, d := range dec {
		ze := &out.Zones[idx[i]]
		ze.Remaining, ze.RetryAfter = d.Remaining, control.Millis(d.RetryAfter)
		switch {
		case d.Allowed:
			ze.Decision = outcomeAllowed
		case reqs[i].Shadow:
			ze.Decision = outcomeShadowDenied
		default:
			ze.Decision = outcomeDenied
			if out.Decision == outcomeAllowed {
				out.Decision = outcomeDenied
			}
		}
	}
	return nil
}

// explainMatch tells whether a zone applies to r, and why.
func explainMatch(z *Zone, r *http.Request, enabled bool) (bool, string, []string) {
	if !enabled {
		return false, "zone disabled by a live override", nil
	}
	if len(z.matchers) == 0 {
		return true, "zone has no matchers: applies to every request", nil
	}
	var errs []string
	for i, set := range z.matchers {
		ok, err := set.MatchWithError(r)
		if err != nil {
			errs = append(errs, fmt.Sprintf("match set %d failed: %v", i+1, err))
			return true, fmt.Sprintf("match set %d failed, so the zone applies", i+1), errs
		}
		if ok {
			return true, fmt.Sprintf("match set %d matched", i+1), nil
		}
	}
	return false, "no match set matched", nil
}

// nullWriter is the response writer of a synthetic request.
type nullWriter struct{}

func (nullWriter) Header() http.Header         { return http.Header{} }
func (nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nullWriter) WriteHeader(int)             {}

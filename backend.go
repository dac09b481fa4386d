package ratewarden

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/admin"
	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store"
)

// This file is the app's side of the admin API (admin.Backend): it finds
// the running handlers by walking the config's HTTP servers.

// zoneRef is one zone of one handler on one server.
type zoneRef struct {
	server string
	h      *Handler
	z      *Zone
}

// handlerRef is one handler on one server.
type handlerRef struct {
	server string
	h      *Handler
}

// handlers lists every rate_limit handler of the config, by server, in
// route order. Handlers in subroutes, named routes and error routes count.
func (a *App) handlers() []handlerRef {
	httpApp := a.httpApp()
	if httpApp == nil {
		return nil
	}
	names := make([]string, 0, len(httpApp.Servers))
	for n := range httpApp.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []handlerRef
	for _, n := range names {
		srv := httpApp.Servers[n]
		add := func(h *Handler) { out = append(out, handlerRef{server: n, h: h}) }
		walkRoutes(srv.Routes, nil, nil, add)
		for _, rt := range srv.NamedRoutes {
			if rt != nil {
				walkRoutes(caddyhttp.RouteList{*rt}, nil, nil, add)
			}
		}
		if srv.Errors != nil {
			walkRoutes(srv.Errors.Routes, nil, nil, add)
		}
	}
	return out
}

// httpApp returns the config's HTTP app, or nil.
func (a *App) httpApp() *caddyhttp.App {
	if a.ctx.Context == nil {
		return nil
	}
	v, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return nil
	}
	httpApp, _ := v.(*caddyhttp.App)
	return httpApp
}

// zoneRefs lists every zone occurrence, grouped by name in name order.
func (a *App) zoneRefs() map[string][]zoneRef {
	out := make(map[string][]zoneRef)
	for _, hr := range a.handlers() {
		for _, z := range hr.h.zones {
			out[z.name] = append(out[z.name], zoneRef{server: hr.server, h: hr.h, z: z})
		}
	}
	return out
}

// zone returns the first occurrence of a zone, or ErrNotFound.
func (a *App) zone(name string) (zoneRef, error) {
	refs := a.zoneRefs()[name]
	if len(refs) == 0 {
		return zoneRef{}, fmt.Errorf("zone %q: %w", name, control.ErrNotFound)
	}
	return refs[0], nil
}

// Zones implements admin.Backend.
func (a *App) Zones() []control.ZoneInfo {
	refs := a.zoneRefs()
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]control.ZoneInfo, 0, len(names))
	for _, n := range names {
		out = append(out, a.zoneInfo(refs[n]))
	}
	return out
}

// Zone implements admin.Backend.
func (a *App) Zone(name string) (control.ZoneInfo, error) {
	refs := a.zoneRefs()[name]
	if len(refs) == 0 {
		return control.ZoneInfo{}, fmt.Errorf("zone %q: %w", name, control.ErrNotFound)
	}
	return a.zoneInfo(refs), nil
}

// zoneInfo describes a zone from its occurrences.
func (a *App) zoneInfo(refs []zoneRef) control.ZoneInfo {
	first := refs[0]
	z := first.z
	info := control.ZoneInfo{
		Name:      z.name,
		Store:     storeName(first.h.Store),
		Algorithm: z.Algorithm,
		Limit:     z.MaxEvents,
		Burst:     z.Burst,
		Mode:      mode(z.Shadow),
		LogKey:    z.LogKey,
	}
	if !z.concurrency {
		info.Window = time.Duration(z.Window).String()
	}
	seen := map[string]bool{}
	for _, r := range refs {
		if !seen[r.server] {
			seen[r.server] = true
			info.Servers = append(info.Servers, r.server)
		}
	}
	// Counters belong to the zone name, shared by all its occurrences.
	for _, r := range refs {
		if c := r.z.counters; c != nil {
			info.Counts = control.ZoneCounts{
				Allowed:      readCounter(c.allowed),
				Denied:       readCounter(c.denied),
				ShadowDenied: readCounter(c.shadowDenied),
			}
			break
		}
	}
	info.Effective = control.EffectivePolicy{Limit: z.policy.Limit, Burst: z.policy.Burst, Mode: info.Mode, Enabled: true}
	if a.control != nil {
		if ov := a.control.overrides.Zone(z.name); ov != nil {
			info.Override = ov
			p, shadow := applyZoneOverride(z.policy, z.Shadow, ov)
			info.Effective = control.EffectivePolicy{Limit: p.Limit, Burst: p.Burst, Mode: mode(shadow),
				Enabled: ov.Enabled == nil || *ov.Enabled}
		}
		_, keys := a.control.overrides.List()
		for _, k := range keys {
			if k.Zone == z.name {
				info.KeyOverrides++
			}
		}
	}
	return info
}

// counterValue reads a Prometheus counter.
func readCounter(c prometheus.Counter) uint64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return uint64(m.Counter.GetValue())
}

func mode(shadow bool) string {
	if shadow {
		return "shadow"
	}
	return "enforce"
}

func storeName(n string) string {
	if n == "" {
		return DefaultStore
	}
	return n
}

// KeyHash implements admin.Backend.
func (a *App) KeyHash(zone, key string) (string, error) {
	ref, err := a.zone(zone)
	if err != nil {
		return "", err
	}
	return hashKey(zone, ref.z.maskIP(key)).String(), nil
}

// keyRequest builds the store request that inspects a key of a zone with
// its effective policy.
func (a *App) keyRequest(zone string, key control.KeyRef) (zoneRef, store.Request, error) {
	ref, err := a.zone(zone)
	if err != nil {
		return zoneRef{}, store.Request{}, err
	}
	k := hashKey(zone, ref.z.maskIP(key.Raw))
	if key.Hash != "" {
		b, err := hex.DecodeString(key.Hash)
		if err != nil || len(b) != len(k) {
			return zoneRef{}, store.Request{}, &control.FieldError{Field: "/key_hash", Reason: "must be 32 lowercase hex digits"}
		}
		copy(k[:], b)
	}
	lz, _ := ref.h.live(ref.z)
	p, shadow := ref.h.effective(ref.z, lz, k)
	return ref, store.Request{Zone: zone, Key: k, Algorithm: ref.z.alg, Policy: p, Cost: 1, Shadow: shadow, Peek: true}, nil
}

// Inspect implements admin.Backend.
func (a *App) Inspect(ctx context.Context, zone string, key control.KeyRef) (control.KeyState, error) {
	ref, req, err := a.keyRequest(zone, key)
	if err != nil {
		return control.KeyState{}, err
	}
	// The state (remaining, reset) as it is, without charging anything...
	var d algorithms.Decision
	if ins, ok := ref.h.store.(store.Inspector); ok {
		d, err = ins.Inspect(ctx, req)
	}
	// ...and whether a request of cost 1 would pass now, and when it will:
	// a peek charges nothing either.
	out := make([]algorithms.Decision, 1)
	if err == nil {
		err = ref.h.store.Take(ctx, []store.Request{req}, out)
	}
	if err != nil {
		return control.KeyState{}, fmt.Errorf("inspecting key: %w: %v", control.ErrUnavailable, err)
	}
	if _, ok := ref.h.store.(store.Inspector); !ok {
		d = out[0]
		if d.Allowed {
			d.Remaining += req.Cost // the peek reports what would be left after it
		}
	}
	st := control.KeyState{
		Zone: zone, KeyHash: req.Key.String(), Limit: req.Policy.Limit,
		Remaining: d.Remaining, Allowed: out[0].Allowed, RetryAfter: control.Millis(out[0].RetryAfter), ResetAfter: control.Millis(d.ResetAfter),
	}
	if ref.z.LogKey && key.Raw != "" {
		st.Key = ref.z.maskIP(key.Raw)
	}
	if a.control != nil {
		st.Override = a.control.overrides.Key(zone, req.Key)
	}
	return st, nil
}

// Reset implements admin.Backend.
func (a *App) Reset(ctx context.Context, zone string, key control.KeyRef) (control.KeyState, error) {
	before, err := a.Inspect(ctx, zone, key)
	if err != nil {
		return before, err
	}
	ref, req, err := a.keyRequest(zone, key)
	if err != nil {
		return before, err
	}
	rs, ok := ref.h.store.(store.Resetter)
	if !ok {
		return before, fmt.Errorf("store %q cannot reset keys: %w", storeName(ref.h.Store), control.ErrConflict)
	}
	if err := rs.Reset(ctx, zone, req.Key); err != nil {
		return before, fmt.Errorf("resetting key: %w: %v", control.ErrUnavailable, err)
	}
	return before, nil
}

// Overrides implements admin.Backend.
func (a *App) Overrides() (*control.Overrides, error) {
	if a.control == nil {
		return nil, fmt.Errorf("no control store: %w", control.ErrUnavailable)
	}
	return a.control.overrides, nil
}

// APIKeys implements admin.Backend.
func (a *App) APIKeys() (*control.Keys, error) {
	if a.control == nil {
		return nil, fmt.Errorf("no control store: %w", control.ErrUnavailable)
	}
	return a.control.keys, nil
}

// Now implements admin.Backend.
func (a *App) Now() time.Time { return time.Now() }

// AuditLogger implements admin.Backend.
func (a *App) AuditLogger() *zap.Logger { return a.auditLog }

// Health implements admin.Backend. A store is needed when a handler or the
// control plane uses it; the status is ok only when every needed store is.
func (a *App) Health(ctx context.Context) control.Health {
	zones := map[string][]string{}
	needed := map[string]bool{a.controlStore: a.controlStore != ""}
	for _, hr := range a.handlers() {
		n := storeName(hr.h.Store)
		needed[n] = true
		for _, z := range hr.h.zones {
			zones[n] = append(zones[n], z.name)
		}
	}
	out := control.Health{Status: "ok", Stores: map[string]control.StoreHealth{}}
	for _, n := range a.StoreNames() {
		sh := control.StoreHealth{Name: n, Needed: needed[n], Zones: dedupe(zones[n])}
		if hc, ok := a.stores[n].(store.HealthChecker); ok {
			sh.Health = hc.CheckHealth(ctx)
		} else {
			sh.Health = store.Health{Backend: a.backends[n], OK: true}
		}
		if sh.Needed && !sh.OK {
			out.Status = "unavailable"
		}
		out.Stores[n] = sh
	}
	return out
}

// dedupe sorts names and drops repeats.
func dedupe(names []string) []string {
	sort.Strings(names)
	out := names[:0]
	for i, n := range names {
		if i == 0 || n != names[i-1] {
			out = append(out, n)
		}
	}
	return out
}

// Interface guards
var _ admin.Backend = (*App)(nil)

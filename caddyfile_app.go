package ratewarden

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// parseGlobalOption parses the global `rate_limit` option into the
// rate_limit app. Syntax:
//
//	rate_limit {
//		store <backend> [<name>] {
//			<backend options...>
//		}
//		control_store <name>
//		api_key_retention <duration>
//	}
//
// control_store names the store that keeps API keys and live overrides
// (default: "default"). api_key_retention deletes API keys revoked or
// expired at least that long ago (default: keep them).
//
// <backend> is a rate_limit.stores module, such as memory. <name> defaults
// to "default", the store handlers use unless they name another.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		if prev, ok := existing.(httpcaddyfile.App); ok {
			if err := json.Unmarshal(prev.Value, app); err != nil {
				return nil, err
			}
		}
	}
	d.Next() // option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "store":
			if err := app.unmarshalStore(d); err != nil {
				return nil, err
			}
		case "control_store":
			if app.ControlStore != "" {
				return nil, d.Err("control_store specified more than once")
			}
			name, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			app.ControlStore = name
		case "api_key_retention":
			if app.APIKeyRetention != 0 {
				return nil, d.Err("api_key_retention specified more than once")
			}
			arg, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(arg)
			if err != nil || dur <= 0 {
				return nil, d.Errf("api_key_retention: want a positive duration such as 720h or 30d, got %q", arg)
			}
			app.APIKeyRetention = caddy.Duration(dur)
		default:
			return nil, d.Errf("unrecognized rate_limit global option %q", d.Val())
		}
	}
	return httpcaddyfile.App{Name: "rate_limit", Value: caddyconfig.JSON(app, nil)}, nil
}

// unmarshalStore parses one `store <backend> [<name>] { ... }` block.
func (a *App) unmarshalStore(d *caddyfile.Dispenser) error {
	seg := d.NewFromNextSegment()
	seg.Next() // "store"
	if !seg.NextArg() {
		return seg.ArgErr()
	}
	backend := seg.Val()
	name := DefaultStore
	if seg.NextArg() {
		name = seg.Val()
	}
	if seg.NextArg() {
		return seg.ArgErr()
	}
	if _, dup := a.StoresRaw[name]; dup {
		return seg.Errf("store %q is defined more than once", name)
	}
	raw, err := parseStoreBlock(seg, backend)
	if err != nil {
		return err
	}
	if a.StoresRaw == nil {
		a.StoresRaw = make(map[string]json.RawMessage)
	}
	a.StoresRaw[name] = raw
	return nil
}

// parseStoreBlock parses seg, a `store <backend> ... { ... }` segment, with
// the backend's own Caddyfile syntax, and returns the store module's JSON
// with its "backend" field.
func parseStoreBlock(seg *caddyfile.Dispenser, backend string) (json.RawMessage, error) {
	info, err := caddy.GetModule("rate_limit.stores." + backend)
	if err != nil {
		return nil, seg.Errf("unknown store backend %q", backend)
	}
	mod := info.New()
	unm, ok := mod.(caddyfile.Unmarshaler)
	if !ok {
		return nil, seg.Errf("store backend %q has no Caddyfile syntax", backend)
	}
	seg.Reset()
	if err := unm.UnmarshalCaddyfile(seg); err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(mod, "backend", backend, nil), nil
}

// unmarshalStore parses a handler's store line: `store <name>` names one of
// the app's stores; `store <backend> { ... }`, with a block, defines one
// for this handler alone (StoreConfig).
func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) error {
	if h.Store != "" || len(h.StoreConfig) > 0 {
		return d.Err("store specified more than once")
	}
	seg := d.NewFromNextSegment()
	// The segment leaves d on the block's closing brace, if there is one.
	// (An empty block has no tokens in the segment, but still counts.)
	block := d.Val() == "}"
	seg.Next() // "store"
	args := seg.RemainingArgs()
	if len(args) != 1 {
		return seg.ArgErr()
	}
	if !block {
		h.Store = args[0]
		return nil
	}
	raw, err := parseStoreBlock(seg, args[0])
	if err != nil {
		return err
	}
	h.StoreConfig = raw
	return nil
}

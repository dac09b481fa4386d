package memory

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ratewarden/ratewarden/store"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the memory store as a Caddy module, rate_limit.stores.memory.
// Counters live in this Caddy process only; they survive `caddy reload`
// (the store is pooled under its name) but not a restart. Control records
// (API keys, overrides) live in Caddy's configured storage, so they survive
// a restart too; see records.go.
type Module struct {
	// Shards is the number of independently locked parts of the key space,
	// rounded up to a power of two. Default: 256.
	Shards int `json:"shards,omitempty"`

	// MaxKeys bounds the keys held, and so memory. When full, a new key
	// evicts the entry that expires soonest among 8 sampled entries of its
	// shard, which forgets that key's counter. Default: 1000000.
	MaxKeys int `json:"max_keys,omitempty"`

	// SweepInterval is how often expired keys are deleted. Default: 1m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	*Store `json:"-"`
	name   string
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.stores.memory",
		New: func() caddy.Module { return new(Module) },
	}
}

func (m *Module) options() Options {
	return Options{Shards: m.Shards, MaxKeys: m.MaxKeys, SweepInterval: m.SweepInterval}
}

// Provision loads the pooled store for this name, or creates it, points
// its control records at this config's storage and registers the store
// metrics (see metrics.go).
func (m *Module) Provision(ctx caddy.Context) error {
	if err := registerCollectors(ctx); err != nil {
		return fmt.Errorf("registering memory store metrics: %w", err)
	}
	m.name = store.NameFromContext(ctx)
	s, err := Load(m.name, m.options())
	if err != nil {
		return err
	}
	m.Store = s
	s.UseStorage(configStorage(ctx), m.name)
	return nil
}

// Cleanup releases this config's use of the pooled store.
func (m *Module) Cleanup() error {
	if m.Store == nil {
		return nil
	}
	return Release(m.name)
}

// SetSweepInterval changes the sweep interval of the running store. The
// handler calls it for caddy-ratelimit's handler-level sweep_interval.
func (m *Module) SetSweepInterval(d time.Duration) {
	m.SweepInterval = caddy.Duration(d)
	m.Store.apply(m.options().withDefaults())
}

// UnmarshalCaddyfile parses the store block of the global rate_limit option:
//
//	store memory [<name>] {
//		shards         <n>
//		max_keys       <n>
//		sweep_interval <duration>
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "store"
	d.RemainingArgs()
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("%s specified more than once", opt)
		}
		seen[opt] = true
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "shards", "max_keys":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return d.Errf("%s must be a whole number greater than zero, got %q", opt, val)
			}
			if opt == "shards" {
				m.Shards = n
			} else {
				m.MaxKeys = n
			}
		case "sweep_interval":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("invalid sweep_interval %q: want a positive duration such as 30s", val)
			}
			m.SweepInterval = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized memory store option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddy.CleanerUpper    = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
	_ store.Store           = (*Module)(nil)
	_ store.Inspector       = (*Module)(nil)
	_ store.Resetter        = (*Module)(nil)
	_ store.Records         = (*Module)(nil)
	_ store.HealthChecker   = (*Module)(nil)
)

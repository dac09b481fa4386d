package redis

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ratewarden/ratewarden/store"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the Redis store as a Caddy module, rate_limit.stores.redis.
// Counters live in Redis, so every Caddy instance configured with the same
// server and key prefix shares them, and they survive reloads and restarts
// of Caddy. Clients are pooled by connection settings: a reload that keeps
// them reuses the open connections.
type Module struct {
	Options

	*Store   `json:"-"`
	poolKey  string
	released bool
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.stores.redis",
		New: func() caddy.Module { return new(Module) },
	}
}

// Provision expands placeholders in the connection settings and loads the
// pooled client for them. It does not connect: an unreachable Redis fails
// decisions, not the config load. Each config load gets a circuit breaker
// of its own, closed.
func (m *Module) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	opts := m.Options
	opts.Addresses = make([]string, len(m.Addresses))
	for i, a := range m.Addresses {
		opts.Addresses[i] = repl.ReplaceKnown(a, "")
	}
	opts.URL = repl.ReplaceKnown(opts.URL, "")
	opts.Username = repl.ReplaceKnown(opts.Username, "")
	opts.Password = repl.ReplaceKnown(opts.Password, "")
	opts.KeyPrefix = repl.ReplaceKnown(opts.KeyPrefix, "")
	if err := opts.validate(); err != nil {
		return fmt.Errorf("provisioning redis store: %w", err)
	}
	opts.Name = store.NameFromContext(ctx)
	opts.Logger = ctx.Logger()
	opts = opts.withDefaults()
	if err := registerCollectors(ctx); err != nil {
		return fmt.Errorf("registering redis store metrics: %w", err)
	}
	c, key, err := loadClient(opts)
	if err != nil {
		return err
	}
	m.poolKey = key
	m.Store = New(c, opts)
	return nil
}

// Cleanup releases this config's use of the pooled client. The store stays
// usable until the pool closes the client, since handlers of the old config
// may still be finishing requests.
func (m *Module) Cleanup() error {
	if m.Store == nil || m.released {
		return nil
	}
	m.released = true
	m.Store.Close()
	return releaseClient(m.poolKey)
}

// UnmarshalCaddyfile parses the store block of the global rate_limit option:
//
//	store redis [<name>] {
//		address    <host:port> [<host:port>...]
//		url        <redis://...|rediss://...>
//		username   <user>
//		password   <password>
//		db         <n>
//		key_prefix <prefix>
//		timeout    <duration>
//		on_failure allow|deny|local
//		breaker_failures <n>
//		breaker_cooldown <duration>
//	}
//
// Give address or url, not both; several addresses are a Redis Cluster.
// Every connection value may be a placeholder such as {env.REDIS_PASSWORD}.
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
		args := d.RemainingArgs()
		if len(args) == 0 || (len(args) > 1 && opt != "address") {
			return d.ArgErr()
		}
		switch opt {
		case "address":
			m.Addresses = args
		case "url":
			m.URL = args[0]
		case "username":
			m.Username = args[0]
		case "password":
			m.Password = args[0]
		case "db":
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 0 {
				return d.Errf("db must be a whole number, zero or more, got %q", args[0])
			}
			m.DB = n
		case "key_prefix":
			m.KeyPrefix = args[0]
		case "timeout", "breaker_cooldown":
			dur, err := caddy.ParseDuration(args[0])
			if err != nil || dur <= 0 {
				return d.Errf("invalid %s %q: want a positive duration such as 50ms", opt, args[0])
			}
			if opt == "timeout" {
				m.Timeout = caddy.Duration(dur)
			} else {
				m.BreakerCooldown = caddy.Duration(dur)
			}
		case "on_failure":
			switch args[0] {
			case OnFailureAllow, OnFailureDeny, OnFailureLocal:
				m.OnFailure = args[0]
			default:
				return d.Errf("on_failure must be allow, deny or local, got %q", args[0])
			}
		case "breaker_failures":
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 {
				return d.Errf("breaker_failures must be a whole number greater than zero, got %q", args[0])
			}
			m.BreakerFailures = n
		default:
			return d.Errf("unrecognized redis store option %q", opt)
		}
	}
	if m.URL != "" && len(m.Addresses) > 0 {
		return d.Err("give either address or url, not both")
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
)

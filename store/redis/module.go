package redis

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

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

// Provision expands placeholders in the connection settings, loads the
// pooled client for them and pings Redis once (see startup.go). An
// unreachable Redis is logged and fails decisions to on_failure, not the
// config load, unless RequireStore is set. Each config load gets a circuit
// breaker of its own, closed unless that ping failed, whose changes are
// emitted through the config's events app (see events.go): ctx must be a
// config's context.
func (m *Module) Provision(ctx caddy.Context) error {
	opts := m.Options.expanded(caddy.NewReplacer())
	if err := opts.validate(); err != nil {
		return fmt.Errorf("provisioning redis store: %w", err)
	}
	opts.Name = store.NameFromContext(ctx)
	opts.Logger = ctx.Logger()
	opts = opts.withDefaults()
	if clockOffsetSet {
		opts.Logger.Warn("test-only clock offset in effect: this store's local clock is shifted; unset the variable outside tests",
			zap.String("variable", TestClockOffsetEnv), zap.Duration("offset", clockOffset))
	}
	if err := registerCollectors(ctx); err != nil {
		return fmt.Errorf("registering redis store metrics: %w", err)
	}
	app, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("provisioning redis store: loading the events app: %w", err)
	}
	events, ok := app.(*caddyevents.App)
	if !ok {
		return fmt.Errorf("provisioning redis store: the events app is a %T", app)
	}
	opts.Notify = func(event string, data map[string]any) { events.Emit(ctx, event, data) }
	c, key, err := loadClient(opts)
	if err != nil {
		return err
	}
	m.poolKey = key
	if opts.topology() == "" {
		// NewClient's default address, for errors and events.
		opts.Addresses = []string{"localhost:6379"}
	}
	if opts.OnFailure == OnFailureLocal {
		// The pooled limiter, so that its counters survive reloads.
		opts.local = loadLocal(opts.Name)
	}
	m.Store = New(c, opts)
	answered, err := m.Store.checkStartup(ctx, opts)
	if err != nil {
		_ = m.release()
		return err
	}
	m.Store.adopt(opts.BreakerFailures, answered)
	return nil
}

// release gives back this config's uses of the pooled client and fallback
// limiter.
func (m *Module) release() error {
	m.released = true
	m.Store.g.retire()
	m.Store.Close()
	if m.Store.g.localPooled {
		releaseLocal(m.Store.name)
	}
	return releaseClient(m.poolKey)
}

// expanded returns o with the placeholders of its connection settings
// replaced, leaving o, which the JSON config shows, as configured.
func (o Options) expanded(repl *caddy.Replacer) Options {
	expand := func(v string) string { return repl.ReplaceKnown(v, "") }
	all := func(vs []string) []string {
		if vs == nil {
			return nil
		}
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = expand(v)
		}
		return out
	}
	o.Addresses = all(o.Addresses)
	o.SentinelAddresses = all(o.SentinelAddresses)
	for _, p := range []*string{&o.URL, &o.Username, &o.Password, &o.KeyPrefix,
		&o.SentinelMaster, &o.SentinelUsername, &o.SentinelPassword} {
		*p = expand(*p)
	}
	if o.Shards != nil {
		shards := make(map[string]string, len(o.Shards))
		for name, addr := range o.Shards {
			shards[name] = expand(addr)
		}
		o.Shards = shards
	}
	if o.TLS != nil {
		t := *o.TLS
		for _, p := range []*string{&t.CA, &t.Cert, &t.Key, &t.ServerName} {
			*p = expand(*p)
		}
		o.TLS = &t
	}
	return o
}

// Cleanup releases this config's use of the pooled client. The store stays
// usable until the pool closes the client, since handlers of the old config
// may still be finishing requests.
func (m *Module) Cleanup() error {
	if m.Store == nil || m.released {
		return nil
	}
	return m.release()
}

// UnmarshalCaddyfile parses the store block of the global rate_limit option:
//
//	store redis [<name>] {
//		address    <host:port> [<host:port>...]
//		url        <redis://...|rediss://...>
//		sentinel   <master-name> <host:port> [<host:port>...]
//		sentinel_username <user>
//		sentinel_password <password>
//		shard      <name> <host:port>
//		username   <user>
//		password   <password>
//		db         <n>
//		tls {
//			ca          <file>
//			cert        <file>
//			key         <file>
//			server_name <name>
//			insecure_skip_verify
//		}
//		pool_size      <n>
//		min_idle_conns <n>
//		dial_timeout   <duration>
//		read_timeout   <duration>
//		write_timeout  <duration>
//		key_prefix <prefix>
//		timeout    <duration>
//		on_failure allow|deny|local
//		breaker_failures <n>
//		breaker_cooldown <duration>
//		pipelining on|off
//		pipeline_max_batch <n>
//		pipeline_width <n>
//		deny_cache [<max entries>]
//		require_store
//	}
//
// Give one of address, url, sentinel or shard: one address is a standalone
// server, several are a Redis Cluster's seed nodes, and shard, repeated
// once per shard, makes a client-side ring. A tls block, even empty, turns
// TLS on. Every connection value may be a placeholder such as
// {env.REDIS_PASSWORD}. require_store makes an unreachable Redis at
// start-up fail the config load instead of only logging an error.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "store"
	d.RemainingArgs()
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] && opt != "shard" {
			return d.Errf("%s specified more than once", opt)
		}
		seen[opt] = true
		if opt == "tls" {
			if err := m.unmarshalTLS(d); err != nil {
				return err
			}
			continue
		}
		args := d.RemainingArgs()
		switch opt {
		case "require_store":
			if len(args) != 0 {
				return d.ArgErr()
			}
			m.RequireStore = true
			continue
		case "address":
			if len(args) == 0 {
				return d.ArgErr()
			}
			m.Addresses = args
			continue
		case "sentinel":
			if len(args) < 2 {
				return d.Errf("sentinel needs the master name and at least one sentinel address")
			}
			m.SentinelMaster, m.SentinelAddresses = args[0], args[1:]
			continue
		case "deny_cache":
			m.DenyCache = DefaultDenyCacheSize
			if len(args) > 1 {
				return d.ArgErr()
			}
			if len(args) == 1 {
				n, err := strconv.Atoi(args[0])
				if err != nil || n <= 0 {
					return d.Errf("deny_cache must be a whole number of entries greater than zero, got %q", args[0])
				}
				m.DenyCache = n
			}
			continue
		case "shard":
			if len(args) != 2 {
				return d.Errf("shard needs a name and an address, such as: shard a 10.0.0.5:6379")
			}
			if _, dup := m.Shards[args[0]]; dup {
				return d.Errf("shard %q specified more than once", args[0])
			}
			if m.Shards == nil {
				m.Shards = map[string]string{}
			}
			m.Shards[args[0]] = args[1]
			continue
		}
		if len(args) != 1 {
			return d.ArgErr()
		}
		if err := m.unmarshalOne(d, opt, args[0]); err != nil {
			return err
		}
	}
	if err := m.Options.validateConn(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// unmarshalOne parses a subdirective that takes exactly one value.
func (m *Module) unmarshalOne(d *caddyfile.Dispenser, opt, arg string) error {
	switch opt {
	case "url":
		m.URL = arg
	case "username":
		m.Username = arg
	case "password":
		m.Password = arg
	case "sentinel_username":
		m.SentinelUsername = arg
	case "sentinel_password":
		m.SentinelPassword = arg
	case "db", "pool_size", "min_idle_conns":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 {
			return d.Errf("%s must be a whole number, zero or more, got %q", opt, arg)
		}
		switch opt {
		case "db":
			m.DB = n
		case "pool_size":
			m.PoolSize = n
		default:
			m.MinIdleConns = n
		}
	case "key_prefix":
		m.KeyPrefix = arg
	case "timeout", "breaker_cooldown", "dial_timeout", "read_timeout", "write_timeout":
		dur, err := caddy.ParseDuration(arg)
		if err != nil || dur <= 0 {
			return d.Errf("invalid %s %q: want a positive duration such as 50ms", opt, arg)
		}
		switch opt {
		case "timeout":
			m.Timeout = caddy.Duration(dur)
		case "breaker_cooldown":
			m.BreakerCooldown = caddy.Duration(dur)
		case "dial_timeout":
			m.DialTimeout = caddy.Duration(dur)
		case "read_timeout":
			m.ReadTimeout = caddy.Duration(dur)
		default:
			m.WriteTimeout = caddy.Duration(dur)
		}
	case "on_failure":
		switch arg {
		case OnFailureAllow, OnFailureDeny, OnFailureLocal:
			m.OnFailure = arg
		default:
			return d.Errf("on_failure must be allow, deny or local, got %q", arg)
		}
	case "breaker_failures", "pipeline_max_batch", "pipeline_width":
		n, err := strconv.Atoi(arg)
		if err != nil || n <= 0 {
			return d.Errf("%s must be a whole number greater than zero, got %q", opt, arg)
		}
		switch opt {
		case "breaker_failures":
			m.BreakerFailures = n
		case "pipeline_max_batch":
			m.PipelineMaxBatch = n
		default:
			m.PipelineWidth = n
		}
	case "pipelining":
		switch arg {
		case "on":
			m.DisablePipelining = false
		case "off":
			m.DisablePipelining = true
		default:
			return d.Errf("pipelining must be on or off, got %q", arg)
		}
	default:
		return d.Errf("unrecognized redis store option %q", opt)
	}
	return nil
}

// unmarshalTLS parses the tls block; d is on the word tls.
func (m *Module) unmarshalTLS(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	t := new(TLS)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("tls %s specified more than once", opt)
		}
		seen[opt] = true
		args := d.RemainingArgs()
		if opt == "insecure_skip_verify" {
			if len(args) != 0 {
				return d.ArgErr()
			}
			t.InsecureSkipVerify = true
			continue
		}
		if len(args) != 1 {
			return d.ArgErr()
		}
		switch opt {
		case "ca":
			t.CA = args[0]
		case "cert":
			t.Cert = args[0]
		case "key":
			t.Key = args[0]
		case "server_name":
			t.ServerName = args[0]
		default:
			return d.Errf("unrecognized redis store tls option %q", opt)
		}
	}
	m.TLS = t
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

package redis

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/store/memory"
)

// Options configures the Redis store. Its fields are JSON-ready, so the
// Caddy module embeds it as its configuration.
type Options struct {
	// Throughput holds the pipelining and deny-cache settings; its fields
	// sit inline in the JSON (disable_pipelining, pipeline_max_batch,
	// pipeline_width, deny_cache).
	Throughput

	// Addresses are the Redis servers, as host:port. One address is a
	// standalone server; several are the seed nodes of a Redis Cluster.
	// Placeholders such as {env.REDIS_ADDR} are expanded.
	// Default: localhost:6379. Example: ["10.0.0.5:6379"].
	Addresses []string `json:"addresses,omitempty"`

	// URL is a redis:// URL, or rediss:// for TLS, used instead of
	// Addresses. It may carry a user name, a password and a database
	// number; the fields below override them when set. Placeholders are
	// expanded, and the URL is never logged or shown in errors.
	// Example: "rediss://default:{env.REDIS_PASSWORD}@redis.internal:6380/0".
	URL string `json:"url,omitempty"`

	// SentinelMaster is the name of the primary that Redis Sentinel
	// watches (the name in "sentinel monitor"). With it, the store asks the
	// sentinels at SentinelAddresses where the primary is, and follows it
	// through failovers. Every command goes to the primary: reads are never
	// routed to replicas, which could lag behind. Default: none.
	// Example: "mymaster".
	SentinelMaster string `json:"sentinel_master,omitempty"`

	// SentinelAddresses are the sentinels, as host:port. Give them with
	// SentinelMaster. Placeholders are expanded.
	// Example: ["10.0.0.5:26379", "10.0.0.6:26379", "10.0.0.7:26379"].
	SentinelAddresses []string `json:"sentinel_addresses,omitempty"`

	// SentinelUsername and SentinelPassword authenticate the store to the
	// sentinels, when they require it (sentinel's own requirepass or ACL);
	// Username and Password below are for the Redis servers. Use a
	// placeholder for the password; it is expanded at provision time and
	// never logged. Default: none.
	SentinelUsername string `json:"sentinel_username,omitempty"`
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// Shards are standalone Redis servers that share the keys among
	// themselves by consistent hashing on the client (a go-redis Ring), for
	// operators who shard by hand instead of running a Cluster. Each maps a
	// shard's name to its host:port. The name, not the address, places the
	// keys: move a shard to a new address under the same name and its keys
	// stay with it. A shard that is down takes its keys' decisions to
	// OnFailure until the ring notices and rehashes them to the others
	// (within seconds), which restarts their counters. Placeholders in the
	// addresses are expanded. Default: none.
	// Example: {"a": "10.0.0.5:6379", "b": "10.0.0.6:6379"}.
	Shards map[string]string `json:"shards,omitempty"`

	// TLS turns TLS on and configures it. A rediss:// URL turns it on too;
	// a tls block then adds to the URL's settings. Default: off.
	TLS *TLS `json:"tls,omitempty"`

	// Username is the ACL user name. Default: none (the default user).
	Username string `json:"username,omitempty"`

	// Password authenticates the connection. Use a placeholder such as
	// {env.REDIS_PASSWORD} or {file./run/secrets/redis} rather than the
	// secret itself; it is expanded at provision time and never logged.
	Password string `json:"password,omitempty"`

	// DB is the database number of a standalone server (Cluster only has
	// database 0). Default: 0.
	DB int `json:"db,omitempty"`

	// PoolSize is the most connections the store keeps open to each Redis
	// server. Default: 10 per CPU (go-redis's). Example: 50.
	PoolSize int `json:"pool_size,omitempty"`

	// MinIdleConns is how many idle connections the store keeps open to
	// each server, so a burst does not wait on new connections.
	// Default: 0. Example: 8.
	MinIdleConns int `json:"min_idle_conns,omitempty"`

	// DialTimeout bounds opening a connection. A decision never waits past
	// Timeout, whatever this is. Default: 5s. Example: "1s".
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// ReadTimeout and WriteTimeout bound each socket read and write. A
	// decision never waits past Timeout, whatever these are; they matter
	// for the connection pool's own traffic.
	// Default: 3s for reads, and ReadTimeout for writes. Example: "500ms".
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// KeyPrefix starts every key the store writes, so several Caddy
	// deployments can share one Redis. It must not contain braces.
	// Default: "ratewarden:". Example: "shop:rl:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// Timeout is the budget of one decision, from the call to the reply,
	// retries included. Past it the decision fails, and OnFailure
	// applies. Default: 50ms. Example: "20ms".
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// OnFailure decides requests when Redis cannot: when a decision fails
	// or times out, and at once, without asking Redis, while the circuit
	// breaker is open.
	//
	//   - "allow" lets the request through (fail open).
	//   - "deny" refuses it with 503 Service Unavailable and a Retry-After
	//     of the time left until the breaker probes Redis again (at least
	//     1s).
	//   - "local" decides with an in-memory limiter of this Caddy instance,
	//     with the same algorithm and limits. Its counters are its own and
	//     start empty: with N instances behind a load balancer, each admits
	//     the full limit, so during an outage a client can get up to N
	//     times the limit cluster-wide (exactly the limit when the load
	//     balancer pins each client to one instance). If N times the limit
	//     is too much for what the limit protects, configure the zones'
	//     limits for the outage (limit/N each, which Redis then also
	//     applies) or use "deny". The local counters are kept until they
	//     expire, but Redis decides again as soon as it is back.
	//
	// Default: allow. Example: "local".
	OnFailure string `json:"on_failure,omitempty"`

	// BreakerFailures is how many consecutive failed or timed-out decisions
	// open the circuit breaker. While it is open, decisions do not wait on
	// Redis: OnFailure applies at once. A denied request is not a failure,
	// nor is a request whose client went away. Default: 5. Example: 10.
	BreakerFailures int `json:"breaker_failures,omitempty"`

	// BreakerCooldown is how long the breaker stays open. Then one decision
	// probes Redis (half-open): if it succeeds the breaker closes and Redis
	// decides again, otherwise it stays open for another cooldown.
	// Default: 5s. Example: "2s".
	BreakerCooldown caddy.Duration `json:"breaker_cooldown,omitempty"`

	// RequireStore makes an unreachable Redis fail the config load. When
	// the module is provisioned it pings Redis once, within DialTimeout
	// (1s when unset). If Redis does not answer, by default Caddy starts
	// anyway: the store logs one error naming its topology and addresses,
	// and OnFailure decides until Redis answers. With RequireStore the
	// config is refused with that error instead, so a reload keeps the
	// running config. Default: false. Example: true.
	RequireStore bool `json:"require_store,omitempty"`

	// Name labels the store's metrics and log entries. The module sets it
	// to the store's configured name. Default: "default".
	Name string `json:"-"`

	// Logger receives the breaker's state changes, once per change.
	// Default: none.
	Logger *zap.Logger `json:"-"`

	// Notify, when set, receives the store's events, EventStoreDown and
	// EventStoreUp, once per change (see events.go). It runs on a
	// goroutine of the store's, never on a decision's, one event at a
	// time and in order. The module emits them as Caddy events.
	// Default: none.
	Notify func(event string, data map[string]any) `json:"-"`

	// local, when set, is the limiter of the local policy, shared across
	// config loads (the module's pooled one; see locals); otherwise the
	// store makes its own.
	local *memory.Store
}

// Values of Options.OnFailure.
const (
	OnFailureAllow = "allow"
	OnFailureDeny  = "deny"
	OnFailureLocal = "local"
)

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = caddy.Duration(DefaultTimeout)
	}
	if o.OnFailure == "" {
		o.OnFailure = OnFailureAllow
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = caddy.Duration(DefaultBreakerCooldown)
	}
	if o.Name == "" {
		o.Name = "default"
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// validate reports settings that cannot work, without naming secrets.
func (o Options) validate() error {
	if err := o.validateConn(); err != nil {
		return err
	}
	if err := o.Throughput.validate(); err != nil {
		return err
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		return fmt.Errorf("key_prefix %q must not contain braces: they would become the Cluster hash tag of every key", o.KeyPrefix)
	}
	switch o.OnFailure {
	case "", OnFailureAllow, OnFailureDeny, OnFailureLocal:
	default:
		return fmt.Errorf("on_failure must be allow, deny or local, got %q", o.OnFailure)
	}
	if o.BreakerFailures < 0 {
		return fmt.Errorf("breaker_failures must be one or more, got %d", o.BreakerFailures)
	}
	if o.BreakerCooldown < 0 {
		return fmt.Errorf("breaker_cooldown must be positive, got %v", time.Duration(o.BreakerCooldown))
	}
	if o.DB < 0 {
		return fmt.Errorf("db must not be negative, got %d", o.DB)
	}
	if len(o.Addresses) > 1 && o.DB != 0 {
		return fmt.Errorf("several addresses mean a Redis Cluster, which has only db 0, got db %d", o.DB)
	}
	if o.PoolSize < 0 {
		return fmt.Errorf("pool_size must not be negative, got %d", o.PoolSize)
	}
	if o.MinIdleConns < 0 {
		return fmt.Errorf("min_idle_conns must not be negative, got %d", o.MinIdleConns)
	}
	if o.PoolSize > 0 && o.MinIdleConns > o.PoolSize {
		return fmt.Errorf("min_idle_conns (%d) must not exceed pool_size (%d)", o.MinIdleConns, o.PoolSize)
	}
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"dial_timeout", o.DialTimeout}, {"read_timeout", o.ReadTimeout}, {"write_timeout", o.WriteTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s must be positive, got %v", d.name, time.Duration(d.v))
		}
	}
	return nil
}

// validateConn reports a topology that is ambiguous or half given. It
// names fields, never their values, since some hold secrets.
func (o Options) validateConn() error {
	var given []string
	if len(o.Addresses) > 0 {
		given = append(given, "addresses")
	}
	if o.URL != "" {
		given = append(given, "url")
	}
	if o.SentinelMaster != "" || len(o.SentinelAddresses) > 0 {
		given = append(given, "sentinel")
	}
	if len(o.Shards) > 0 {
		given = append(given, "shards")
	}
	if len(given) > 1 {
		return fmt.Errorf("give one of addresses, url, sentinel or shards, got %s", strings.Join(given, " and "))
	}
	switch {
	case o.SentinelMaster != "" && len(o.SentinelAddresses) == 0:
		return errors.New("sentinel_master needs sentinel_addresses")
	case o.SentinelMaster == "" && len(o.SentinelAddresses) > 0:
		return errors.New("sentinel_addresses need sentinel_master, the name of the monitored primary")
	case o.SentinelMaster == "" && (o.SentinelUsername != "" || o.SentinelPassword != ""):
		return errors.New("sentinel_username and sentinel_password need sentinel_master and sentinel_addresses")
	}
	for i, a := range o.SentinelAddresses {
		if a == "" {
			return fmt.Errorf("sentinel_addresses[%d] is empty", i)
		}
	}
	for i, a := range o.Addresses {
		if a == "" {
			return fmt.Errorf("addresses[%d] is empty", i)
		}
	}
	for name, addr := range o.Shards {
		if name == "" {
			return errors.New("shards: a shard has an empty name")
		}
		if addr == "" {
			return fmt.Errorf("shards: shard %q has an empty address", name)
		}
	}
	if o.TLS != nil {
		if err := o.TLS.validate(); err != nil {
			return err
		}
	}
	return nil
}

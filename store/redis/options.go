package redis

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Options configures the Redis store. Its fields are JSON-ready, so the
// Caddy module embeds it as its configuration.
type Options struct {
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

	// Username is the ACL user name. Default: none (the default user).
	Username string `json:"username,omitempty"`

	// Password authenticates the connection. Use a placeholder such as
	// {env.REDIS_PASSWORD} or {file./run/secrets/redis} rather than the
	// secret itself; it is expanded at provision time and never logged.
	Password string `json:"password,omitempty"`

	// DB is the database number of a standalone server (Cluster only has
	// database 0). Default: 0.
	DB int `json:"db,omitempty"`

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

	// Name labels the store's metrics and log entries. The module sets it
	// to the store's configured name. Default: "default".
	Name string `json:"-"`

	// Logger receives the breaker's state changes, once per change.
	// Default: none.
	Logger *zap.Logger `json:"-"`
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
	if o.URL != "" && len(o.Addresses) > 0 {
		return errors.New("set either url or addresses, not both")
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
	return nil
}

// NewClient returns a client for the connection settings in opts: a plain
// client for a URL or one address, a Cluster client for several addresses.
// It does not connect; the first command does. Errors never contain the
// URL or the password.
func NewClient(opts Options) (goredis.UniversalClient, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.URL != "" {
		o, err := goredis.ParseURL(opts.URL)
		if err != nil {
			// url.Parse quotes the whole URL, password included.
			return nil, errors.New("parsing the redis url: want redis://[user:password@]host:port[/db] or rediss://... (the url is not shown, as it may hold a password)")
		}
		if opts.Username != "" {
			o.Username = opts.Username
		}
		if opts.Password != "" {
			o.Password = opts.Password
		}
		if opts.DB != 0 {
			o.DB = opts.DB
		}
		o.ContextTimeoutEnabled = true
		return goredis.NewClient(o), nil
	}
	addrs := opts.Addresses
	if len(addrs) == 0 {
		addrs = []string{"localhost:6379"}
	}
	return goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:    addrs,
		Username: opts.Username,
		Password: opts.Password,
		DB:       opts.DB,
		// Honour each decision's deadline, not only the socket timeouts.
		ContextTimeoutEnabled: true,
	}), nil
}

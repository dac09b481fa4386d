package redis

import (
	"errors"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
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
	// retries included. Past it the decision fails, and the handler's
	// failure policy applies. Default: 50ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = caddy.Duration(DefaultTimeout)
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

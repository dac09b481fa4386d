package redis

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
)

// clients holds the Redis clients shared across config loads, keyed by a
// hash of their connection settings. It is the package's only state.
var clients = caddy.NewUsagePool()

// pooledClient is a client in the pool; the pool closes it when its last
// user releases it.
type pooledClient struct {
	goredis.UniversalClient
}

// Destruct closes the client.
func (c pooledClient) Destruct() error { return c.Close() }

// connKey returns the pool key of the connection settings in opts: a hash,
// so that no secret is kept as a map key or shows up in a dump.
func connKey(opts Options) string {
	conn := struct {
		Addresses       []string
		URL, User, Pass string
		DB              int
	}{opts.Addresses, opts.URL, opts.Username, opts.Password, opts.DB}
	b, _ := json.Marshal(conn) // strings and ints always marshal
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// loadClient returns the pooled client for opts' connection settings,
// creating it if no running config uses it, and counts one more use of it.
// Call releaseClient with the returned key exactly once for each call.
func loadClient(opts Options) (goredis.UniversalClient, string, error) {
	key := connKey(opts)
	val, _, err := clients.LoadOrNew(key, func() (caddy.Destructor, error) {
		c, err := NewClient(opts)
		if err != nil {
			return nil, err
		}
		return pooledClient{c}, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("creating redis client: %w", err)
	}
	return val.(pooledClient).UniversalClient, key, nil
}

// releaseClient gives back one use of the client pooled under key; the last
// use closes it.
func releaseClient(key string) error {
	if _, err := clients.Delete(key); err != nil {
		return fmt.Errorf("releasing redis client: %w", err)
	}
	return nil
}

// Interface guards
var _ caddy.Destructor = pooledClient{}

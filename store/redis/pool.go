package redis

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/store/memory"
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

// keySecret keys the pool keys' HMAC. It is random per process, so a pool
// key, which is derived from passwords among the rest, cannot be checked
// against guessed passwords.
var keySecret = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}()

// connKey returns the pool key of the connection settings in opts: an HMAC
// of every setting that NewClient uses, so that a change to any of them
// builds a new client, and no secret is kept as a map key or shows up in a
// dump. It covers the contents of the TLS files too, so that a rotated
// certificate takes effect at the next config load.
func connKey(opts Options) string {
	conn := struct {
		Addresses, SentinelAddresses          []string
		URL, User, Pass, Master, SUser, SPass string
		Shards                                map[string]string
		DB, PoolSize, MinIdle                 int
		Dial, Read, Write                     caddy.Duration
		TLS                                   *TLS
	}{
		opts.Addresses, opts.SentinelAddresses,
		opts.URL, opts.Username, opts.Password, opts.SentinelMaster, opts.SentinelUsername, opts.SentinelPassword,
		opts.Shards,
		opts.DB, opts.PoolSize, opts.MinIdleConns,
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout,
		opts.TLS,
	}
	b, _ := json.Marshal(conn) // strings, ints and string maps always marshal
	mac := hmac.New(sha256.New, keySecret)
	mac.Write(b)
	for _, f := range opts.TLS.files() {
		if f == "" {
			continue
		}
		// An unreadable file fails NewClient, which reports it.
		data, _ := os.ReadFile(f)
		sum := sha256.Sum256(data)
		mac.Write(sum[:])
	}
	return hex.EncodeToString(mac.Sum(nil))
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
var (
	_ caddy.Destructor = pooledClient{}
	_ caddy.Destructor = pooledLocal{}
)

// locals holds the in-memory limiters of the local failure policy, keyed
// by store name, so that a config reload during an outage keeps the
// counters the fallback has built up instead of giving every client a
// fresh quota.
var locals = caddy.NewUsagePool()

// pooledLocal is a fallback limiter in the pool; the pool stops its sweeper
// when its last user releases it.
type pooledLocal struct{ *memory.Store }

// Destruct stops the limiter's sweeper.
func (l pooledLocal) Destruct() error {
	l.Close()
	return nil
}

// loadLocal returns the pooled fallback limiter of the store named name,
// creating it if no running config uses it, and counts one more use of it.
// Call releaseLocal with the same name exactly once for each call.
func loadLocal(name string) *memory.Store {
	val, _, _ := locals.LoadOrNew(name, func() (caddy.Destructor, error) {
		return pooledLocal{memory.New(memory.Options{Now: wallNow})}, nil
	})
	return val.(pooledLocal).Store
}

// releaseLocal gives back one use of the limiter pooled under name.
func releaseLocal(name string) {
	_, _ = locals.Delete(name)
}

package memory

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
)

// pool holds the stores shared by name across config loads. It is the
// package's only state.
var pool = caddy.NewUsagePool()

// Load returns the store named name, creating it with opts if no running
// config holds it, and counts one more use of it. Call Release(name) exactly
// once for each Load, typically from the module's Cleanup.
//
// Because Caddy provisions a new config before it cleans up the old one, a
// store loaded under the same name by both survives `caddy reload` with its
// counters. When the store already exists, the settings that can change on
// a running store (MaxKeys and SweepInterval) are applied to it; Shards and
// Now are kept from when it was created.
func Load(name string, opts Options) (*Store, error) {
	val, loaded, err := pool.LoadOrNew(name, func() (caddy.Destructor, error) {
		return New(opts), nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading memory store %q: %w", name, err)
	}
	s := val.(*Store)
	if loaded {
		s.apply(opts.withDefaults())
	}
	return s, nil
}

// Release gives back one use of the store named name. When no use is left,
// the store is closed and its counters are dropped.
func Release(name string) error {
	if _, err := pool.Delete(name); err != nil {
		return fmt.Errorf("releasing memory store %q: %w", name, err)
	}
	return nil
}

// Destruct closes the store; the pool calls it when the last use of a
// pooled store is released.
func (s *Store) Destruct() error {
	s.Close()
	return nil
}

// Interface guards
var _ caddy.Destructor = (*Store)(nil)

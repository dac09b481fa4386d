package control

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/store"
)

// SCAFFOLD: signatures agreed between the packages; bodies are being
// written. Do not ship as is.

var errScaffold = errors.New("not implemented yet")

// KeysOptions configures a Keys registry.
type KeysOptions struct {
	// Records is where API key records live (required).
	Records store.Records
	// Audit logs key expiry events (may be nil).
	Audit *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Identity is a verified API key as the handler sees it. It is shared and
// immutable. Values holds the id, name, tier and owner, boxed once, so
// setting placeholders does not allocate.
type Identity struct {
	ID, Name, Tier, Owner string
	Values                [4]any
}

// Keys is the API key registry: records in a store, mirrored in memory.
type Keys struct{ opts KeysOptions }

// NewKeys returns a registry over opts.Records. Call Start.
func NewKeys(opts KeysOptions) *Keys { return &Keys{opts: opts} }

// Start loads every key and keeps the mirror current until ctx is done.
func (k *Keys) Start(ctx context.Context) error { return errScaffold }

// Lookup verifies a presented token. At most one allocation.
func (k *Keys) Lookup(token string) (*Identity, LookupResult) { return nil, LookupUnknown }

// Create makes a key and returns its secret, the only time it is shown.
func (k *Keys) Create(ctx context.Context, spec KeySpec) (string, KeyInfo, error) {
	return "", KeyInfo{}, errScaffold
}

// Rotate issues a new secret; the old one works for grace more.
func (k *Keys) Rotate(ctx context.Context, id string, grace time.Duration) (secret string, before, after KeyInfo, err error) {
	return "", KeyInfo{}, KeyInfo{}, errScaffold
}

// Revoke stops a key at once.
func (k *Keys) Revoke(ctx context.Context, id string) (before, after KeyInfo, err error) {
	return KeyInfo{}, KeyInfo{}, errScaffold
}

// Info returns one key's metadata, or ErrNotFound.
func (k *Keys) Info(id string) (KeyInfo, error) { return KeyInfo{}, errScaffold }

// List returns every key's metadata, oldest first.
func (k *Keys) List() []KeyInfo { return nil }

// Export returns every key record (hashes and metadata).
func (k *Keys) Export() []APIKey { return nil }

// Import writes records; the same document twice changes nothing.
func (k *Keys) Import(ctx context.Context, keys []APIKey) (ImportResult, error) {
	return ImportResult{}, errScaffold
}

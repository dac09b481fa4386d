package control

import (
	"context"
	"time"

	"github.com/ratewarden/ratewarden/store"
)

// SCAFFOLD: signatures agreed between the packages; bodies are being
// written. Do not ship as is.

// OverridesOptions configures an Overrides registry.
type OverridesOptions struct {
	Records store.Records
	Now     func() time.Time
}

// Overrides is the live override registry.
type Overrides struct{ opts OverridesOptions }

// NewOverrides returns a registry over opts.Records. Call Start.
func NewOverrides(opts OverridesOptions) *Overrides { return &Overrides{opts: opts} }

// Start loads every override and keeps the mirror current until ctx is done.
func (o *Overrides) Start(ctx context.Context) error { return errScaffold }

// Zone returns the zone's active override, or nil. No allocation.
func (o *Overrides) Zone(zone string) *ZoneOverride { return nil }

// Key returns the key's active override, or nil. No allocation.
func (o *Overrides) Key(zone string, key store.Key) *KeyOverride { return nil }

// HasKeyOverrides reports whether zone has any key override.
func (o *Overrides) HasKeyOverrides(zone string) bool { return false }

// SetZone sets a zone override.
func (o *Overrides) SetZone(ctx context.Context, ov ZoneOverride) (before *ZoneOverride, after ZoneOverride, err error) {
	return nil, ZoneOverride{}, errScaffold
}

// RemoveZone removes a zone override, or returns ErrNotFound.
func (o *Overrides) RemoveZone(ctx context.Context, zone string) (*ZoneOverride, error) {
	return nil, errScaffold
}

// SetKey sets a key override.
func (o *Overrides) SetKey(ctx context.Context, ov KeyOverride) (before *KeyOverride, after KeyOverride, err error) {
	return nil, KeyOverride{}, errScaffold
}

// RemoveKey removes a key override, or returns ErrNotFound.
func (o *Overrides) RemoveKey(ctx context.Context, zone, keyHash string) (*KeyOverride, error) {
	return nil, errScaffold
}

// List returns the active overrides, sorted.
func (o *Overrides) List() ([]ZoneOverride, []KeyOverride) { return nil, nil }

// Active counts active overrides (zone and key).
func (o *Overrides) Active() int { return 0 }

// Import writes overrides; the same document twice changes nothing.
func (o *Overrides) Import(ctx context.Context, zones []ZoneOverride, keys []KeyOverride) (ImportResult, error) {
	return ImportResult{}, errScaffold
}

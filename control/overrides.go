package control

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/store"
)

// OverridesOptions configures an Overrides registry.
type OverridesOptions struct {
	Records store.Records
	Now     func() time.Time
	// Logger receives operational messages: records skipped as invalid,
	// failed reloads and lazy deletions.
	// Default: Caddy's logger named "rate_limit.control".
	Logger *zap.Logger
}

// Overrides is the live override registry: zone overrides (kind
// KindZoneOverrides, id = the zone name in base64url) and key overrides
// (kind KindKeyOverrides, id = "<base64url zone>:<key hash>"), mirrored in
// memory on every instance sharing the store.
//
// Zone, Key and HasKeyOverrides are on the request path: they read an
// immutable snapshot with no lock and no allocation, and ignore expired
// overrides. A background tick deletes expired overrides from the store.
type Overrides struct {
	opts OverridesOptions
	m    *mirror[overrideEntry, overrideIndex]
	mu   sync.Mutex // serialises read-modify-write changes in this process
}

// NewOverrides returns a registry over opts.Records. Call Start.
func NewOverrides(opts OverridesOptions) *Overrides {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = caddy.Log().Named("rate_limit.control")
	}
	o := &Overrides{opts: opts}
	o.m = newMirror(opts.Records, opts.Logger, []string{KindZoneOverrides, KindKeyOverrides},
		decodeOverride, buildOverrideIndex)
	return o
}

// Start loads every override and keeps the mirror current until ctx is
// done. If the initial load fails, Start returns the error and keeps
// retrying in the background.
func (o *Overrides) Start(ctx context.Context) error {
	if err := o.m.start(ctx, func() { o.deleteExpired(ctx) }); err != nil {
		return fmt.Errorf("starting override registry: %w", err)
	}
	return nil
}

// ZoneView is one zone's live overrides in one snapshot. The handler looks
// a zone up once per request and reads both the zone's override and its
// keys' from the view. The zero ZoneView has no overrides.
type ZoneView struct {
	z   *zoneOverrides
	now func() time.Time
}

// For returns zone's view. No allocation, no lock.
func (o *Overrides) For(zone string) ZoneView {
	return ZoneView{z: o.m.load().zones[zone], now: o.opts.Now}
}

// Zone returns the zone's active override, or nil. The override is shared:
// do not modify it.
func (v ZoneView) Zone() *ZoneOverride {
	if v.z == nil || v.z.zone == nil || v.expired(v.z.zone.ExpiresAt) {
		return nil
	}
	return v.z.zone
}

// Key returns the key's active override, or nil. A zone without key
// overrides costs no hashing. The override is shared: do not modify it.
func (v ZoneView) Key(key store.Key) *KeyOverride {
	if v.z == nil || len(v.z.keys) == 0 {
		return nil
	}
	k := v.z.keys[key]
	if k == nil || v.expired(k.ExpiresAt) {
		return nil
	}
	return k
}

// HasKeys reports whether the zone has any active key override.
func (v ZoneView) HasKeys() bool {
	return v.z != nil && len(v.z.keys) > 0 && (v.z.keysForever || v.now().Before(v.z.keysUntil))
}

// expired reads the clock only for an override that can expire.
func (v ZoneView) expired(at *time.Time) bool { return at != nil && passed(at, v.now()) }

// Zone returns the zone's active override, or nil (For(zone).Zone()).
func (o *Overrides) Zone(zone string) *ZoneOverride { return o.For(zone).Zone() }

// Key returns the key's active override, or nil (For(zone).Key(key)).
func (o *Overrides) Key(zone string, key store.Key) *KeyOverride { return o.For(zone).Key(key) }

// HasKeyOverrides reports whether zone has any active key override.
func (o *Overrides) HasKeyOverrides(zone string) bool { return o.For(zone).HasKeys() }

// SetZone creates or replaces a zone override. An invalid override gives a
// *FieldError (ErrInvalid). UpdatedAt is set here. before is the active
// override it replaced, or nil.
func (o *Overrides) SetZone(ctx context.Context, ov ZoneOverride) (before *ZoneOverride, after ZoneOverride, err error) {
	now := o.opts.Now()
	if err := checkZoneOverride(&ov, "", now, true); err != nil {
		return nil, ZoneOverride{}, fmt.Errorf("setting override of zone %q: %w", ov.Zone, err)
	}
	ov = cloneZoneOverride(ov)
	ov.UpdatedAt = now.UTC()
	ov.ExpiresAt = utcPtr(ov.ExpiresAt)
	raw, err := json.Marshal(ov)
	if err != nil {
		return nil, ZoneOverride{}, fmt.Errorf("setting override of zone %q: encoding record: %w", ov.Zone, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	before = o.activeZone(ov.Zone, now)
	if err := o.m.write(ctx, op{ref: zoneRef(ov.Zone), raw: raw}); err != nil {
		return nil, ZoneOverride{}, fmt.Errorf("setting override of zone %q: %w", ov.Zone, err)
	}
	return before, ov, nil
}

// RemoveZone removes a zone override and returns it, or returns
// ErrNotFound when the zone has no active override. An expired one still in
// the store is deleted too, but reported as ErrNotFound.
func (o *Overrides) RemoveZone(ctx context.Context, zone string) (*ZoneOverride, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.opts.Now()
	z := o.m.load().zones[zone]
	if z == nil || z.zone == nil {
		return nil, fmt.Errorf("removing override of zone %q: %w", zone, ErrNotFound)
	}
	before := o.activeZone(zone, now)
	if err := o.m.write(ctx, op{ref: zoneRef(zone)}); err != nil {
		return nil, fmt.Errorf("removing override of zone %q: %w", zone, err)
	}
	if before == nil {
		return nil, fmt.Errorf("removing override of zone %q: %w", zone, ErrNotFound)
	}
	return before, nil
}

// SetKey creates or replaces a key override. An invalid override gives a
// *FieldError (ErrInvalid). UpdatedAt is set here and KeyHash is stored in
// lower case. before is the active override it replaced, or nil.
func (o *Overrides) SetKey(ctx context.Context, ov KeyOverride) (before *KeyOverride, after KeyOverride, err error) {
	now := o.opts.Now()
	k, err := checkKeyOverride(&ov, "", now, true)
	if err != nil {
		return nil, KeyOverride{}, fmt.Errorf("setting key override in zone %q: %w", ov.Zone, err)
	}
	ov = cloneKeyOverride(ov)
	ov.KeyHash = k.String()
	ov.UpdatedAt = now.UTC()
	ov.ExpiresAt = utcPtr(ov.ExpiresAt)
	raw, err := json.Marshal(ov)
	if err != nil {
		return nil, KeyOverride{}, fmt.Errorf("setting key override in zone %q: encoding record: %w", ov.Zone, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	before = clonePtrKey(o.Key(ov.Zone, k))
	if err := o.m.write(ctx, op{ref: keyRef(ov.Zone, ov.KeyHash), raw: raw}); err != nil {
		return nil, KeyOverride{}, fmt.Errorf("setting key override in zone %q: %w", ov.Zone, err)
	}
	return before, ov, nil
}

// RemoveKey removes a key override and returns it, or returns ErrNotFound
// when there is no active one (an expired one is deleted too).
func (o *Overrides) RemoveKey(ctx context.Context, zone, keyHash string) (*KeyOverride, error) {
	k, ok := parseKeyHash(keyHash)
	if !ok {
		return nil, fmt.Errorf("removing key override in zone %q: %w", zone, ErrNotFound)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	z := o.m.load().zones[zone]
	if z == nil || z.keys[k] == nil {
		return nil, fmt.Errorf("removing key override in zone %q: %w", zone, ErrNotFound)
	}
	before := clonePtrKey(o.Key(zone, k))
	if err := o.m.write(ctx, op{ref: keyRef(zone, k.String())}); err != nil {
		return nil, fmt.Errorf("removing key override in zone %q: %w", zone, err)
	}
	if before == nil {
		return nil, fmt.Errorf("removing key override in zone %q: %w", zone, ErrNotFound)
	}
	return before, nil
}

// List returns the active overrides: zone overrides by zone, key overrides
// by zone then key hash. They are copies.
func (o *Overrides) List() ([]ZoneOverride, []KeyOverride) {
	now := o.opts.Now()
	zones := []ZoneOverride{}
	keys := []KeyOverride{}
	for _, z := range o.m.load().zones {
		if z.zone != nil && !passed(z.zone.ExpiresAt, now) {
			zones = append(zones, cloneZoneOverride(*z.zone))
		}
		for _, k := range z.keys {
			if !passed(k.ExpiresAt, now) {
				keys = append(keys, cloneKeyOverride(*k))
			}
		}
	}
	sort.Slice(zones, func(i, j int) bool { return zones[i].Zone < zones[j].Zone })
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Zone != keys[j].Zone {
			return keys[i].Zone < keys[j].Zone
		}
		return keys[i].KeyHash < keys[j].KeyHash
	})
	return zones, keys
}

// Active counts active overrides (zone and key).
func (o *Overrides) Active() int {
	now := o.opts.Now()
	n := 0
	for _, z := range o.m.load().zones {
		if z.zone != nil && !passed(z.zone.ExpiresAt, now) {
			n++
		}
		for _, k := range z.keys {
			if !passed(k.ExpiresAt, now) {
				n++
			}
		}
	}
	return n
}

// activeZone returns a copy of zone's active override, or nil.
func (o *Overrides) activeZone(zone string, now time.Time) *ZoneOverride {
	z := o.m.load().zones[zone]
	if z == nil || z.zone == nil || passed(z.zone.ExpiresAt, now) {
		return nil
	}
	c := cloneZoneOverride(*z.zone)
	return &c
}

// deleteExpired deletes expired overrides from the store. Every instance
// may do so; before deleting, it reloads the record and leaves it if it is
// no longer expired (another instance just replaced it).
func (o *Overrides) deleteExpired(ctx context.Context) {
	now := o.opts.Now()
	var expired []ref
	for zone, z := range o.m.load().zones {
		if z.zone != nil && passed(z.zone.ExpiresAt, now) {
			expired = append(expired, zoneRef(zone))
		}
		for _, k := range z.keys {
			if passed(k.ExpiresAt, now) {
				expired = append(expired, keyRef(zone, k.KeyHash))
			}
		}
	}
	if len(expired) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range expired {
		if err := o.deleteIfExpired(ctx, r, now); err != nil && ctx.Err() == nil {
			o.opts.Logger.Warn("deleting expired override",
				zap.String("kind", r.kind), zap.String("id", r.id), zap.Error(err))
		}
	}
}

func (o *Overrides) deleteIfExpired(ctx context.Context, r ref, now time.Time) error {
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	raw, ok, err := o.m.records.LoadRecord(lctx, r.kind, r.id)
	if err != nil {
		return fmt.Errorf("loading: %w", err)
	}
	if ok {
		var probe struct {
			ExpiresAt *time.Time `json:"expires_at"`
		}
		if json.Unmarshal(raw, &probe) == nil && !passed(probe.ExpiresAt, now) {
			return nil // replaced meanwhile; the watch brings the new one
		}
	}
	return o.m.write(lctx, op{ref: r})
}

package control

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ratewarden/ratewarden/store"
)

// maxZoneLen bounds a zone name in bytes, so that a key override's record
// id (base64url of the zone, ':', 32 hex characters) stays within the 200
// bytes store.Records allows.
const maxZoneLen = 120

// maxMultiplier bounds a key override's multiplier.
const maxMultiplier = 1e6

// Override modes.
const (
	ModeEnforce = "enforce"
	ModeShadow  = "shadow"
)

// overrideEntry is one decoded override record: exactly one of zone and key
// is set; k is key's decoded KeyHash.
type overrideEntry struct {
	zone *ZoneOverride
	key  *KeyOverride
	k    store.Key
}

// overrideIndex is the immutable snapshot the request path reads.
type overrideIndex struct {
	zones map[string]*zoneOverrides
}

// zoneOverrides is everything overriding one zone.
type zoneOverrides struct {
	zone *ZoneOverride
	keys map[store.Key]*KeyOverride
	// keysForever is true when a key override never expires; otherwise
	// keysUntil is when the last one expires.
	keysForever bool
	keysUntil   time.Time
}

// zoneID encodes a zone name (any characters) as a record id.
func zoneID(zone string) string { return base64.RawURLEncoding.EncodeToString([]byte(zone)) }

func zoneRef(zone string) ref { return ref{KindZoneOverrides, zoneID(zone)} }

func keyRef(zone, keyHash string) ref { return ref{KindKeyOverrides, zoneID(zone) + ":" + keyHash} }

// parseKeyHash decodes a store.Key's hex form (either case).
func parseKeyHash(s string) (store.Key, bool) {
	var k store.Key
	if len(s) != 2*len(k) {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, false
	}
	return k, true
}

func checkZoneName(ptr, zone string) error {
	switch {
	case zone == "":
		return &FieldError{Field: ptr + "/zone", Reason: "required"}
	case len(zone) > maxZoneLen:
		return &FieldError{Field: ptr + "/zone", Reason: "longer than " + strconv.Itoa(maxZoneLen) + " bytes"}
	case !utf8.ValidString(zone):
		return &FieldError{Field: ptr + "/zone", Reason: "not valid UTF-8"}
	}
	return nil
}

func checkLimitBurst(ptr string, limit, burst *int64) error {
	if limit != nil && *limit <= 0 {
		return &FieldError{Field: ptr + "/limit", Reason: "must be greater than 0"}
	}
	if burst != nil && *burst < 0 {
		return &FieldError{Field: ptr + "/burst", Reason: "must not be negative"}
	}
	return nil
}

// checkExpiry checks expires_at when an override is written (a stored one
// may have expired since).
func checkExpiry(ptr string, t *time.Time, now time.Time, write bool) error {
	if write && t != nil && !t.After(now) {
		return &FieldError{Field: ptr + "/expires_at", Reason: "must be in the future"}
	}
	return nil
}

// checkZoneOverride validates a zone override. ptr is its JSON pointer (""
// for a request body); write adds the checks that only apply to a new
// override.
func checkZoneOverride(ov *ZoneOverride, ptr string, now time.Time, write bool) error {
	if err := checkZoneName(ptr, ov.Zone); err != nil {
		return err
	}
	if err := checkLimitBurst(ptr, ov.Limit, ov.Burst); err != nil {
		return err
	}
	switch ov.Mode {
	case "", ModeEnforce, ModeShadow:
	default:
		return &FieldError{Field: ptr + "/mode", Reason: `must be "enforce" or "shadow"`}
	}
	if ov.Limit == nil && ov.Burst == nil && ov.Mode == "" && ov.Enabled == nil {
		// The pointer names the whole override ("" is the whole body).
		return &FieldError{Field: ptr, Reason: "changes nothing: set limit, burst, mode or enabled"}
	}
	return checkExpiry(ptr, ov.ExpiresAt, now, write)
}

// checkKeyOverride validates a key override and returns its decoded key.
func checkKeyOverride(ov *KeyOverride, ptr string, now time.Time, write bool) (store.Key, error) {
	if err := checkZoneName(ptr, ov.Zone); err != nil {
		return store.Key{}, err
	}
	k, ok := parseKeyHash(ov.KeyHash)
	if !ok {
		return k, &FieldError{Field: ptr + "/key_hash", Reason: "must be 32 hex characters"}
	}
	switch {
	case ov.Limit == nil && ov.Multiplier == nil:
		return k, &FieldError{Field: ptr + "/limit", Reason: "set one of limit and multiplier"}
	case ov.Limit != nil && ov.Multiplier != nil:
		return k, &FieldError{Field: ptr + "/multiplier", Reason: "set only one of limit and multiplier"}
	case ov.Multiplier != nil && !(*ov.Multiplier > 0 && *ov.Multiplier <= maxMultiplier):
		return k, &FieldError{Field: ptr + "/multiplier", Reason: "must be greater than 0 and at most 1e6"}
	}
	if err := checkLimitBurst(ptr, ov.Limit, ov.Burst); err != nil {
		return k, err
	}
	return k, checkExpiry(ptr, ov.ExpiresAt, now, write)
}

// decodeOverride is the override mirror's decoder.
func decodeOverride(kind, id string, raw []byte) (overrideEntry, error) {
	switch kind {
	case KindZoneOverrides:
		var ov ZoneOverride
		if err := json.Unmarshal(raw, &ov); err != nil {
			return overrideEntry{}, fmt.Errorf("decoding zone override: %w", err)
		}
		if err := checkZoneOverride(&ov, "", time.Time{}, false); err != nil {
			return overrideEntry{}, fmt.Errorf("invalid zone override: %w", err)
		}
		if zoneID(ov.Zone) != id {
			return overrideEntry{}, fmt.Errorf("invalid zone override: %w", &FieldError{Field: "/zone", Reason: "differs from the record id"})
		}
		return overrideEntry{zone: &ov}, nil
	case KindKeyOverrides:
		var ov KeyOverride
		if err := json.Unmarshal(raw, &ov); err != nil {
			return overrideEntry{}, fmt.Errorf("decoding key override: %w", err)
		}
		k, err := checkKeyOverride(&ov, "", time.Time{}, false)
		if err != nil {
			return overrideEntry{}, fmt.Errorf("invalid key override: %w", err)
		}
		ov.KeyHash = k.String()
		if keyRef(ov.Zone, ov.KeyHash).id != id {
			return overrideEntry{}, fmt.Errorf("invalid key override: %w", &FieldError{Field: "/key_hash", Reason: "zone and key hash differ from the record id"})
		}
		return overrideEntry{key: &ov, k: k}, nil
	}
	return overrideEntry{}, fmt.Errorf("unknown record kind %q", kind)
}

// buildOverrideIndex is the override mirror's index builder.
func buildOverrideIndex(entries map[ref]overrideEntry) *overrideIndex {
	idx := &overrideIndex{zones: map[string]*zoneOverrides{}}
	get := func(zone string) *zoneOverrides {
		z := idx.zones[zone]
		if z == nil {
			z = &zoneOverrides{}
			idx.zones[zone] = z
		}
		return z
	}
	for _, e := range entries {
		if e.zone != nil {
			get(e.zone.Zone).zone = e.zone
			continue
		}
		z := get(e.key.Zone)
		if z.keys == nil {
			z.keys = map[store.Key]*KeyOverride{}
		}
		z.keys[e.k] = e.key
		switch exp := e.key.ExpiresAt; {
		case exp == nil:
			z.keysForever = true
		case exp.After(z.keysUntil):
			z.keysUntil = *exp
		}
	}
	return idx
}

func cloneZoneOverride(ov ZoneOverride) ZoneOverride {
	ov.Limit = clonePtr(ov.Limit)
	ov.Burst = clonePtr(ov.Burst)
	ov.Enabled = clonePtr(ov.Enabled)
	ov.ExpiresAt = clonePtr(ov.ExpiresAt)
	return ov
}

func cloneKeyOverride(ov KeyOverride) KeyOverride {
	ov.Limit = clonePtr(ov.Limit)
	ov.Multiplier = clonePtr(ov.Multiplier)
	ov.Burst = clonePtr(ov.Burst)
	ov.ExpiresAt = clonePtr(ov.ExpiresAt)
	return ov
}

func clonePtrKey(ov *KeyOverride) *KeyOverride {
	if ov == nil {
		return nil
	}
	c := cloneKeyOverride(*ov)
	return &c
}

// importCounter decides, for each imported override, whether to write it.
type importCounter struct {
	res ImportResult
	ops []op
}

// add counts one imported override (its encoding with and without
// UpdatedAt) against the current one, and queues a write when they differ.
// An override that has already expired is not written and counts as
// Unchanged: the registry already has no active override for it.
func (c *importCounter) add(r ref, expired bool, cur, doc []byte, raw []byte) {
	switch {
	case expired || cur != nil && bytes.Equal(cur, doc):
		c.res.Unchanged++
		return
	case cur == nil:
		c.res.Created++
	default:
		c.res.Updated++
	}
	c.ops = append(c.ops, op{ref: r, raw: raw})
}

// withoutUpdatedAt returns v's JSON without UpdatedAt, which an import does not
// count as a change.
func withoutUpdatedAt(v any) []byte {
	raw, _ := json.Marshal(v) // override types always encode
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	delete(m, "updated_at")
	out, _ := json.Marshal(m)
	return out
}

// Import writes overrides as Export wrote them. Every override is
// validated before anything is written: an invalid one gives a *FieldError
// whose field points into the export document ("/key_overrides/2/limit").
// Only overrides that differ from the active ones (ignoring updated_at) are
// written, so the same document twice changes nothing the second time. An
// override without updated_at gets the current time.
func (o *Overrides) Import(ctx context.Context, zones []ZoneOverride, keys []KeyOverride) (ImportResult, error) {
	now := o.opts.Now()
	seen := map[ref]string{}
	dup := func(r ref, ptr, field string) error {
		if prev, ok := seen[r]; ok {
			return &FieldError{Field: ptr + field, Reason: "same override as " + prev}
		}
		seen[r] = ptr
		return nil
	}
	keyHashes := make([]string, len(keys))
	for i := range zones {
		ptr := "/zone_overrides/" + strconv.Itoa(i)
		if err := checkZoneOverride(&zones[i], ptr, now, false); err != nil {
			return ImportResult{}, fmt.Errorf("importing overrides: %w", err)
		}
		if err := dup(zoneRef(zones[i].Zone), ptr, "/zone"); err != nil {
			return ImportResult{}, fmt.Errorf("importing overrides: %w", err)
		}
	}
	for i := range keys {
		ptr := "/key_overrides/" + strconv.Itoa(i)
		k, err := checkKeyOverride(&keys[i], ptr, now, false)
		if err != nil {
			return ImportResult{}, fmt.Errorf("importing overrides: %w", err)
		}
		keyHashes[i] = k.String()
		if err := dup(keyRef(keys[i].Zone, keyHashes[i]), ptr, "/key_hash"); err != nil {
			return ImportResult{}, fmt.Errorf("importing overrides: %w", err)
		}
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	var c importCounter
	for _, ov := range zones {
		ov = cloneZoneOverride(ov)
		if ov.UpdatedAt.IsZero() {
			ov.UpdatedAt = now.UTC()
		}
		var cur []byte
		if cz := o.activeZone(ov.Zone, now); cz != nil {
			cur = withoutUpdatedAt(cz)
		}
		raw, err := json.Marshal(ov)
		if err != nil {
			return ImportResult{}, fmt.Errorf("importing override of zone %q: encoding record: %w", ov.Zone, err)
		}
		c.add(zoneRef(ov.Zone), passed(ov.ExpiresAt, now), cur, withoutUpdatedAt(ov), raw)
	}
	for i, ov := range keys {
		ov = cloneKeyOverride(ov)
		ov.KeyHash = keyHashes[i]
		if ov.UpdatedAt.IsZero() {
			ov.UpdatedAt = now.UTC()
		}
		k, _ := parseKeyHash(ov.KeyHash)
		var cur []byte
		if ck := o.Key(ov.Zone, k); ck != nil {
			cur = withoutUpdatedAt(ck)
		}
		raw, err := json.Marshal(ov)
		if err != nil {
			return ImportResult{}, fmt.Errorf("importing key override in zone %q: encoding record: %w", ov.Zone, err)
		}
		c.add(keyRef(ov.Zone, ov.KeyHash), passed(ov.ExpiresAt, now), cur, withoutUpdatedAt(ov), raw)
	}
	if err := o.m.write(ctx, c.ops...); err != nil {
		return ImportResult{}, fmt.Errorf("importing overrides: %w", err)
	}
	return c.res, nil
}

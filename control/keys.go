package control

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/store"
)

// KeysOptions configures a Keys registry.
type KeysOptions struct {
	// Records is where API key records live (required).
	Records store.Records
	// Audit logs key expiry events (may be nil).
	Audit *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives operational messages: records skipped as invalid,
	// failed reloads. They never carry a token or a hash.
	// Default: Caddy's logger named "rate_limit.control".
	Logger *zap.Logger
}

// Identity is a verified API key as the handler sees it. It is shared and
// immutable. Values holds the id, name, tier and owner, boxed once, so
// setting placeholders does not allocate.
type Identity struct {
	ID, Name, Tier, Owner string
	Values                [4]any
}

// Keys is the API key registry: records in a store (kind KindAPIKeys, id =
// the key id), mirrored in memory on every instance sharing the store.
// Lookup reads the mirror without locking; changes write the store and then
// the local mirror, and reach other instances through the store's watch.
//
// A token (the API key a client presents) is 66 characters:
//
//	rwk_<key id: 12>_<secret: 43><checksum: 6>
//
// Its parts are:
//   - "rwk_", which marks a Ratewarden key so that secret scanners (GitHub's
//     among them) can find leaked keys;
//   - the key id: 12 random base62 characters, public (it names the key in
//     the admin API and the api_key placeholders);
//   - "_";
//   - the secret: 32 bytes from crypto/rand as a base62 number, left-padded
//     with '0' to 43 characters;
//   - the checksum: the CRC-32 (IEEE) of everything before it as a base62
//     number, left-padded with '0' to 6 characters. It lets Lookup (and a
//     scanner) reject typos and random strings without a store trip.
//
// base62 is 0-9, a-z, A-Z in that order. Only the SHA-256 of the whole token
// is stored (SecretHash.Hash, hex), and no token or hash ever appears in an
// error or a log line.
type Keys struct {
	opts KeysOptions
	m    *mirror[*keyEntry, keyIndex]

	mu sync.Mutex // serialises read-modify-write changes in this process

	amu       sync.Mutex
	announced map[string]struct{} // ids whose expiry was audited
	since     time.Time           // expiries before this are not audited

	// audit is the audit logger; SetAuditLogger replaces it on reload.
	audit atomic.Pointer[zap.Logger]
	// retention, when above zero, is how long a revoked or expired key is
	// kept before purge deletes it; SetRetention sets it on reload.
	retention atomic.Int64
}

// SetRetention makes the registry delete each key that has been revoked
// or expired for at least d, checked every tick (every second); 0 keeps
// them until they are deleted by hand. The registry outlives config reloads; each
// config sets its own.
func (k *Keys) SetRetention(d time.Duration) { k.retention.Store(int64(d)) }

// Retention is the retention SetRetention last set.
func (k *Keys) Retention() time.Duration { return time.Duration(k.retention.Load()) }

// SetAuditLogger makes expiry events go to l from now on. The registry
// outlives config reloads; each config hands it its own audit logger.
func (k *Keys) SetAuditLogger(l *zap.Logger) { k.audit.Store(l) }

// auditLogger is the current audit logger: the last one set, else
// opts.Audit.
func (k *Keys) auditLogger() *zap.Logger {
	if l := k.audit.Load(); l != nil {
		return l
	}
	return k.opts.Audit
}

// keyEntry is one decoded key record with what Lookup needs precomputed.
type keyEntry struct {
	rec    APIKey // shared and immutable
	ident  *Identity
	hashes [][32]byte // rec.Secrets' hashes, decoded
	// raw is the stored record rec was decoded from: a change made from
	// rec is written only over it (see mirror.write).
	raw []byte
}

// keyIndex is the immutable snapshot Lookup reads.
type keyIndex struct {
	byID map[string]*keyEntry
}

// NewKeys returns a registry over opts.Records. Call Start.
func NewKeys(opts KeysOptions) *Keys {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = caddy.Log().Named("rate_limit.control")
	}
	k := &Keys{opts: opts, announced: map[string]struct{}{}}
	k.m = newMirror(opts.Records, opts.Logger, []string{KindAPIKeys}, decodeKeyRecord, buildKeyIndex)
	return k
}

// Start loads every key and keeps the mirror current until ctx is done. It
// also starts the expiry audit: one ActionKeyExpired event per key whose
// expiry passes while this process runs. If the initial load fails, Start
// returns the error and keeps retrying in the background.
func (k *Keys) Start(ctx context.Context) error {
	k.amu.Lock()
	k.since = k.opts.Now()
	k.amu.Unlock()
	tick := func() {
		now := k.opts.Now()
		k.auditExpired(now)
		k.purge(ctx, now)
	}
	if err := k.m.start(ctx, tick); err != nil {
		return fmt.Errorf("starting API key registry: %w", err)
	}
	return nil
}

// Lookup verifies a presented token. It does not allocate (at most one
// allocation is the contract) and takes no lock.
//
// The secret is compared in constant time against every hash the key has,
// without stopping at a match. A key's state (revoked, expired) is told only
// to a caller who presented one of its secrets; anyone else gets
// LookupUnknown.
func (k *Keys) Lookup(token string) (*Identity, LookupResult) {
	if token == "" {
		return nil, LookupMissing
	}
	id, ok := parseToken(token)
	if !ok {
		return nil, LookupMalformed
	}
	e := k.m.load().byID[id]
	if e == nil {
		return nil, LookupUnknown
	}
	sum := hashToken(token)
	match := -1
	for i := range e.hashes {
		if subtle.ConstantTimeCompare(sum[:], e.hashes[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, LookupUnknown
	}
	if e.rec.RevokedAt != nil {
		return nil, LookupRevoked
	}
	now := k.opts.Now()
	if passed(e.rec.ExpiresAt, now) || passed(e.rec.Secrets[match].ExpiresAt, now) {
		return nil, LookupExpired
	}
	return e.ident, LookupOK
}

// Create makes a key and returns its token, the only time it exists in
// clear. An invalid spec gives a *FieldError (ErrInvalid).
func (k *Keys) Create(ctx context.Context, spec KeySpec) (string, KeyInfo, error) {
	now := k.opts.Now()
	if err := validateSpec(spec, now); err != nil {
		return "", KeyInfo{}, fmt.Errorf("creating API key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var id string
	for {
		var err error
		if id, err = newKeyID(); err != nil {
			return "", KeyInfo{}, fmt.Errorf("creating API key: %w", err)
		}
		if k.m.load().byID[id] == nil {
			break
		}
	}
	token, err := newToken(id)
	if err != nil {
		return "", KeyInfo{}, fmt.Errorf("creating API key: %w", err)
	}
	rec := APIKey{
		ID:        id,
		Name:      spec.Name,
		Owner:     spec.Owner,
		Tier:      spec.Tier,
		Labels:    cloneLabels(spec.Labels),
		CreatedAt: now.UTC(),
		ExpiresAt: utcPtr(spec.ExpiresAt),
		Secrets:   []SecretHash{{Hash: tokenHashHex(token)}},
	}
	if err := k.save(ctx, nil, rec); err != nil {
		return "", KeyInfo{}, fmt.Errorf("creating API key %s: %w", id, err)
	}
	return token, keyInfo(&rec, now), nil
}

// Rotate issues a new secret, first in the key's secrets. The previous
// current secret keeps working until now+grace (grace 0 stops it at once;
// it then gives LookupExpired); old secrets whose grace already ended are
// pruned. Rotating a revoked key is ErrConflict; an unknown id ErrNotFound.
func (k *Keys) Rotate(ctx context.Context, id string, grace time.Duration) (secret string, before, after KeyInfo, err error) {
	if grace < 0 {
		return "", KeyInfo{}, KeyInfo{}, fmt.Errorf("rotating API key %s: %w", id,
			&FieldError{Field: "/grace", Reason: "must not be negative"})
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	e, err := k.entry(id)
	if err != nil {
		return "", KeyInfo{}, KeyInfo{}, fmt.Errorf("rotating API key %s: %w", id, err)
	}
	if e.rec.RevokedAt != nil {
		return "", KeyInfo{}, KeyInfo{}, fmt.Errorf("rotating API key %s: key is revoked: %w", id, ErrConflict)
	}
	now := k.opts.Now()
	token, err := newToken(id)
	if err != nil {
		return "", KeyInfo{}, KeyInfo{}, fmt.Errorf("rotating API key %s: %w", id, err)
	}
	rec := cloneKey(e.rec)
	secrets := []SecretHash{{Hash: tokenHashHex(token)}}
	for i, s := range rec.Secrets {
		if passed(s.ExpiresAt, now) {
			continue // its grace ended before this rotation: prune
		}
		if i == 0 {
			until := now.Add(grace).UTC()
			if s.ExpiresAt == nil || until.Before(*s.ExpiresAt) {
				s.ExpiresAt = &until
			}
		}
		secrets = append(secrets, s)
	}
	rec.Secrets = secrets
	rotated := now.UTC()
	rec.RotatedAt = &rotated
	if err := k.save(ctx, e, rec); err != nil {
		return "", KeyInfo{}, KeyInfo{}, fmt.Errorf("rotating API key %s: %w", id, err)
	}
	return token, keyInfo(&e.rec, now), keyInfo(&rec, now), nil
}

// Revoke stops a key at once. Revoking a key that is already revoked is
// ErrConflict (the record is not touched, so its RevokedAt stays the first
// revocation's); an unknown id is ErrNotFound.
func (k *Keys) Revoke(ctx context.Context, id string) (before, after KeyInfo, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, err := k.entry(id)
	if err != nil {
		return KeyInfo{}, KeyInfo{}, fmt.Errorf("revoking API key %s: %w", id, err)
	}
	if e.rec.RevokedAt != nil {
		return KeyInfo{}, KeyInfo{}, fmt.Errorf("revoking API key %s: already revoked: %w", id, ErrConflict)
	}
	now := k.opts.Now()
	rec := cloneKey(e.rec)
	revoked := now.UTC()
	rec.RevokedAt = &revoked
	if err := k.save(ctx, e, rec); err != nil {
		return KeyInfo{}, KeyInfo{}, fmt.Errorf("revoking API key %s: %w", id, err)
	}
	return keyInfo(&e.rec, now), keyInfo(&rec, now), nil
}

// Delete removes a key's record for good, so that it is no longer listed,
// exported or counted. Only a key that no longer works can go: a key that is
// neither revoked nor expired is ErrConflict (revoke it first, so that
// deleting can never be the first thing that stops a client). An unknown id
// is ErrNotFound. A token of a deleted key is then LookupUnknown, as one
// that never existed. It returns the key as it was.
func (k *Keys) Delete(ctx context.Context, id string) (KeyInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, err := k.entry(id)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("deleting API key %s: %w", id, err)
	}
	now := k.opts.Now()
	if ended(&e.rec, now) == nil {
		return KeyInfo{}, fmt.Errorf("deleting API key %s: the key still works; revoke it first: %w", id, ErrConflict)
	}
	if err := k.write(ctx, id, e, nil); err != nil {
		return KeyInfo{}, fmt.Errorf("deleting API key %s: %w", id, err)
	}
	return keyInfo(&e.rec, now), nil
}

// ended returns when rec stopped working: its revocation, else its expiry
// if that has passed; nil while it works.
func ended(rec *APIKey, now time.Time) *time.Time {
	if rec.RevokedAt != nil {
		return rec.RevokedAt
	}
	if passed(rec.ExpiresAt, now) {
		return rec.ExpiresAt
	}
	return nil
}

// purgeTimeout bounds one purge's store writes.
const purgeTimeout = 10 * time.Second

// purge deletes every key that stopped working at least the retention ago
// (see SetRetention), each with a key.deleted audit event whose actor is
// the system. Every instance purges, but a deletion is a swap, so only the
// instance that deleted a key audits it; the others' swaps find it gone
// and skip it. A store error leaves the rest for the next tick.
func (k *Keys) purge(ctx context.Context, now time.Time) {
	keep := time.Duration(k.retention.Load())
	if keep <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, purgeTimeout)
	defer cancel()
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, e := range k.m.load().byID {
		end := ended(&e.rec, now)
		if end == nil || now.Sub(*end) < keep {
			continue
		}
		err := k.write(ctx, id, e, nil)
		if errors.Is(err, ErrConflict) {
			continue // another instance purged or changed it first
		}
		if err != nil {
			k.opts.Logger.Warn("purging an API key failed; trying again later", zap.String("key_id", id), zap.Error(err))
			return
		}
		Audit(k.auditLogger(), AuditEvent{
			Action: ActionKeyDeleted,
			Object: "api_key:" + id,
			Before: keyInfo(&e.rec, now),
			Actor:  Actor{System: true},
		})
	}
}

// Info returns one key's metadata, or ErrNotFound.
func (k *Keys) Info(id string) (KeyInfo, error) {
	e, err := k.entry(id)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("reading API key %s: %w", id, err)
	}
	return keyInfo(&e.rec, k.opts.Now()), nil
}

// List returns every key's metadata, oldest first.
func (k *Keys) List() []KeyInfo {
	now := k.opts.Now()
	entries := k.sorted()
	out := make([]KeyInfo, len(entries))
	for i, e := range entries {
		out[i] = keyInfo(&e.rec, now)
	}
	return out
}

// Counts returns how many keys are active, expired and revoked at now,
// without copying any.
func (k *Keys) Counts(now time.Time) (active, expired, revoked int) {
	for _, e := range k.m.load().byID {
		switch statusOf(&e.rec, now) {
		case StatusRevoked:
			revoked++
		case StatusExpired:
			expired++
		default:
			active++
		}
	}
	return active, expired, revoked
}

// Export returns every key record (hashes and metadata), oldest first.
func (k *Keys) Export() []APIKey {
	entries := k.sorted()
	out := make([]APIKey, len(entries))
	for i, e := range entries {
		out[i] = cloneKey(e.rec)
	}
	return out
}

// sorted returns the snapshot's entries, oldest first (ties by id).
func (k *Keys) sorted() []*keyEntry {
	idx := k.m.load()
	out := make([]*keyEntry, 0, len(idx.byID))
	for _, e := range idx.byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].rec, out[j].rec
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		return a.ID < b.ID
	})
	return out
}

// entry returns the key id from the snapshot, or ErrNotFound.
func (k *Keys) entry(id string) (*keyEntry, error) {
	if e := k.m.load().byID[id]; e != nil {
		return e, nil
	}
	return nil, ErrNotFound
}

// save writes rec, a change of the key from (nil for a new key); see write.
func (k *Keys) save(ctx context.Context, from *keyEntry, rec APIKey) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding record: %w", err)
	}
	return k.write(ctx, rec.ID, from, raw)
}

// write sets key id's record to raw, or deletes it when raw is nil, in the
// store and the local mirror, only over the record from was decoded from
// (from nil: only if there is none), so that a change made from a copy
// another instance has changed since is ErrConflict; see mirror.write.
func (k *Keys) write(ctx context.Context, id string, from *keyEntry, raw []byte) error {
	var old []byte
	if from != nil {
		old = from.raw
	}
	return k.m.write(ctx, op{ref: ref{KindAPIKeys, id}, raw: raw, swap: true, old: old})
}

// auditExpired emits ActionKeyExpired once per key (per process) whose
// ExpiresAt passed since Start. Revoked keys are not announced.
func (k *Keys) auditExpired(now time.Time) {
	k.amu.Lock()
	defer k.amu.Unlock()
	for id, e := range k.m.load().byID {
		exp := e.rec.ExpiresAt
		if exp == nil || e.rec.RevokedAt != nil || !passed(exp, now) || exp.Before(k.since) {
			continue
		}
		if _, done := k.announced[id]; done {
			continue
		}
		k.announced[id] = struct{}{}
		after := keyInfo(&e.rec, now)
		before := keyInfo(&e.rec, exp.Add(-time.Nanosecond))
		Audit(k.auditLogger(), AuditEvent{
			Action: ActionKeyExpired,
			Object: "api_key:" + id,
			Before: before,
			After:  after,
			Actor:  Actor{System: true},
		})
	}
}

// passed reports whether the optional deadline t is at or before now.
func passed(t *time.Time, now time.Time) bool { return t != nil && !now.Before(*t) }

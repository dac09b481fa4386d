// Package control holds Ratewarden's control plane: API keys and live
// overrides, kept in a store's Records and mirrored in memory on every
// instance, plus the types the admin API speaks. The handler reads the
// in-memory mirrors on the request path; the admin API changes them.
//
// control sits below the root package and the admin package: both import
// it, and it imports only store and algorithms.
package control

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ratewarden/ratewarden/store"
)

// Record kinds in store.Records.
const (
	KindAPIKeys       = "api_keys"
	KindZoneOverrides = "zone_overrides"
	KindKeyOverrides  = "key_overrides"
)

// Errors the admin API maps to HTTP statuses.
var (
	// ErrNotFound: the zone, API key or override does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change cannot apply to the object's current state,
	// for example rotating a revoked key (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is well-formed but not meaningful, for example
	// an override with neither limit nor multiplier (400). Wrap it with
	// FieldError to name the field.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable: the store holding control records failed (503).
	ErrUnavailable = errors.New("control store unavailable")
)

// FieldError is an ErrInvalid naming the field at fault, as a JSON pointer
// into the request body (for example "/limit").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// APIKey is an API key's stored record: metadata and the hashes of its
// secrets. A secret itself is never stored, logged or returned except once,
// on create and rotate.
type APIKey struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Owner     string            `json:"owner,omitempty"`
	Tier      string            `json:"tier,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	RotatedAt *time.Time        `json:"rotated_at,omitempty"`
	RevokedAt *time.Time        `json:"revoked_at,omitempty"`
	// Secrets are the accepted secrets' hashes, newest first. After a
	// rotation the old one stays until its ExpiresAt (the grace period).
	Secrets []SecretHash `json:"secrets"`
}

// SecretHash is the SHA-256 of one accepted secret, hex-encoded.
type SecretHash struct {
	Hash      string     `json:"hash"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// KeySpec is what a client gives to create an API key.
type KeySpec struct {
	Name      string            `json:"name"`
	Owner     string            `json:"owner,omitempty"`
	Tier      string            `json:"tier,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
}

// KeyInfo is the public view of an APIKey: metadata only, no hashes.
type KeyInfo struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Owner     string            `json:"owner,omitempty"`
	Tier      string            `json:"tier,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	RotatedAt *time.Time        `json:"rotated_at,omitempty"`
	RevokedAt *time.Time        `json:"revoked_at,omitempty"`
	// Status is active, expired or revoked.
	Status string `json:"status"`
	// GraceUntil is when the previous secret stops working after a
	// rotation, while it still works.
	GraceUntil *time.Time `json:"grace_until,omitempty"`
}

// LookupResult says why an API key lookup failed, or that it succeeded.
type LookupResult uint8

const (
	LookupOK        LookupResult = iota
	LookupMissing                // no key in the request
	LookupMalformed              // not a Ratewarden key, or a bad checksum
	LookupUnknown                // well-formed, but no such key or secret
	LookupExpired                // the key expired, or its old secret's grace period ended
	LookupRevoked                // the key was revoked
)

// String names the result, as used in 401 problem types and metrics.
func (r LookupResult) String() string {
	switch r {
	case LookupOK:
		return "ok"
	case LookupMissing:
		return "missing"
	case LookupMalformed:
		return "malformed"
	case LookupUnknown:
		return "unknown"
	case LookupExpired:
		return "expired"
	case LookupRevoked:
		return "revoked"
	}
	return "invalid"
}

// ZoneOverride changes a zone's configured policy live, on every instance
// sharing the store, until removed or until ExpiresAt.
type ZoneOverride struct {
	Zone string `json:"zone"`
	// Limit replaces the zone's max_events; Burst its burst.
	Limit *int64 `json:"limit,omitempty"`
	Burst *int64 `json:"burst,omitempty"`
	// Mode is "enforce" or "shadow"; empty keeps the configured mode.
	Mode string `json:"mode,omitempty"`
	// Enabled false switches the zone off: it matches nothing.
	Enabled   *bool      `json:"enabled,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// KeyOverride gives one key of a zone its own limit, until removed or
// until ExpiresAt. Exactly one of Limit and Multiplier is set.
type KeyOverride struct {
	Zone string `json:"zone"`
	// KeyHash identifies the key: the hex of the store key the handler
	// computes from the zone and the raw key. Raw keys are not stored.
	KeyHash    string     `json:"key_hash"`
	Limit      *int64     `json:"limit,omitempty"`
	Multiplier *float64   `json:"multiplier,omitempty"`
	Burst      *int64     `json:"burst,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// ZoneInfo describes one configured zone for GET /zones.
type ZoneInfo struct {
	Name string `json:"name"`
	// Servers lists the HTTP servers whose handlers have the zone.
	Servers   []string `json:"servers"`
	Store     string   `json:"store"`
	Algorithm string   `json:"algorithm"`
	Limit     int64    `json:"limit"`
	Window    string   `json:"window,omitempty"`
	Burst     int64    `json:"burst,omitempty"`
	Mode      string   `json:"mode"`
	// Effective is the policy after any live override.
	Effective EffectivePolicy `json:"effective"`
	Override  *ZoneOverride   `json:"override,omitempty"`
	// KeyOverrides counts the zone's active key overrides.
	KeyOverrides int        `json:"key_overrides"`
	Counts       ZoneCounts `json:"counts"`
	LogKey       bool       `json:"log_key"`
}

// EffectivePolicy is a zone's policy with overrides applied.
type EffectivePolicy struct {
	Limit   int64  `json:"limit"`
	Burst   int64  `json:"burst,omitempty"`
	Mode    string `json:"mode"`
	Enabled bool   `json:"enabled"`
}

// ZoneCounts are a zone's decisions since the process started.
type ZoneCounts struct {
	Allowed      uint64 `json:"allowed"`
	Denied       uint64 `json:"denied"`
	ShadowDenied uint64 `json:"shadow_denied"`
}

// KeyState is a key's state, read without charging anything.
type KeyState struct {
	Zone string `json:"zone"`
	// Key is the raw key when the zone has log_key, else empty.
	Key       string `json:"key,omitempty"`
	KeyHash   string `json:"key_hash"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	// Allowed tells whether a request of cost 1 would be allowed now.
	Allowed    bool         `json:"allowed"`
	RetryAfter Millis       `json:"retry_after_ms"`
	ResetAfter Millis       `json:"reset_after_ms"`
	Override   *KeyOverride `json:"override,omitempty"`
}

// ExplainRequest is a synthetic request for POST /explain.
type ExplainRequest struct {
	Method     string              `json:"method"`
	URL        string              `json:"url"`
	Headers    map[string][]string `json:"headers,omitempty"`
	RemoteAddr string              `json:"remote_addr,omitempty"`
	// Server names the HTTP server whose handlers explain the request;
	// empty means every server.
	Server string `json:"server,omitempty"`
}

// Explanation is what every zone would do with an ExplainRequest.
type Explanation struct {
	Exempt bool `json:"exempt"`
	// APIKey is the key identified in the request, if any: its id, name and
	// tier, and the lookup result.
	APIKey *ExplainAPIKey `json:"api_key,omitempty"`
	Zones  []ZoneExplain  `json:"zones"`
	// Decision is "allowed", "denied" or "exempt" for the whole request.
	Decision string `json:"decision"`
}

// ExplainAPIKey is the API key part of an Explanation.
type ExplainAPIKey struct {
	Result string `json:"result"`
	ID     string `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	Tier   string `json:"tier,omitempty"`
}

// ZoneExplain is one zone's part of an Explanation.
type ZoneExplain struct {
	Server  string `json:"server"`
	Zone    string `json:"zone"`
	Matched bool   `json:"matched"`
	// Reason says why it matched or not, for example "no match block",
	// "match set 1 matched", "zone disabled by override".
	Reason  string `json:"reason"`
	Key     string `json:"key,omitempty"`
	KeyHash string `json:"key_hash,omitempty"`
	Cost    int64  `json:"cost,omitempty"`
	// Decision is what the zone would decide: allowed, denied,
	// shadow_denied; empty when the zone did not match.
	Decision   string   `json:"decision,omitempty"`
	Limit      int64    `json:"limit,omitempty"`
	Remaining  int64    `json:"remaining"`
	RetryAfter Millis   `json:"retry_after_ms,omitempty"`
	Errors     []string `json:"errors,omitempty"`
}

// Health is GET /health's body.
type Health struct {
	// Status is "ok" when every store the config needs is usable, else
	// "unavailable".
	Status string                 `json:"status"`
	Stores map[string]StoreHealth `json:"stores"`
}

// StoreHealth is one named store's health, with the zones that use it.
type StoreHealth struct {
	store.Health
	Name  string   `json:"name"`
	Zones []string `json:"zones,omitempty"`
	// Needed is true when a handler or the API key registry uses the store.
	Needed bool `json:"needed"`
}

// Document is the export/import document: API keys (hashes and metadata)
// and overrides.
type Document struct {
	Version       int            `json:"version"`
	ExportedAt    time.Time      `json:"exported_at"`
	APIKeys       []APIKey       `json:"api_keys"`
	ZoneOverrides []ZoneOverride `json:"zone_overrides"`
	KeyOverrides  []KeyOverride  `json:"key_overrides"`
}

// ImportResult counts what an import changed. Importing the same document
// twice changes nothing the second time.
type ImportResult struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// Millis is a duration that JSON carries as whole milliseconds, rounded up
// (a wait of 1ns is 1ms: never tell a client to retry too early).
type Millis time.Duration

// MarshalJSON writes whole milliseconds.
func (m Millis) MarshalJSON() ([]byte, error) {
	d := time.Duration(m)
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond > 0 {
		ms++
	}
	return strconv.AppendInt(nil, ms, 10), nil
}

// UnmarshalJSON reads whole milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("milliseconds: %w", err)
	}
	*m = Millis(time.Duration(ms) * time.Millisecond)
	return nil
}

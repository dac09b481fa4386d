// Package store defines the seam between the rate_limit handler and the
// places counters live. The handler never talks to a backend directly, and a
// store never sees a request, a placeholder or a CEL expression: it gets
// hashed keys, an algorithm, a policy and a cost.
package store

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/algorithms"
)

// Key is a hashed, zone-qualified rate-limit key. Raw keys never reach a
// store.
type Key [16]byte

// String returns the key as lowercase hex, the form used in logs and in
// backend key names.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Request is one zone's part of a decision.
type Request struct {
	// Zone is the zone name; stores may use it to namespace keys.
	Zone string
	// Key identifies the counter within the zone.
	Key Key
	// Algorithm and Policy decide; Cost is what the request is charged.
	Algorithm algorithms.Algorithm
	Policy    algorithms.Policy
	Cost      int64
	// Shadow marks a zone whose denial is reported but blocks nothing.
	Shadow bool
	// Peek evaluates the request without charging it, even when every zone
	// allows. Used by count_if zones, which charge after the response.
	Peek bool
}

// Store decides requests against stored counters.
type Store interface {
	// Take decides every request in reqs at once and writes one decision per
	// request into out (len(out) == len(reqs)).
	//
	// It is all-or-nothing: if any request that is not Shadow is denied,
	// nothing is charged in any zone. Otherwise every allowed request that
	// is not Peek is charged. The decisions and the charge happen
	// atomically with respect to other calls on the same keys.
	Take(ctx context.Context, reqs []Request, out []algorithms.Decision) error
}

// Inspector is implemented by stores that can read a key's state without
// charging it.
type Inspector interface {
	Inspect(ctx context.Context, req Request) (algorithms.Decision, error)
}

// Resetter is implemented by stores that can forget a key.
type Resetter interface {
	Reset(ctx context.Context, zone string, key Key) error
}

// Blocked reports whether the decisions in out refuse the request: true when
// a request that is not Shadow was denied.
func Blocked(reqs []Request, out []algorithms.Decision) bool {
	for i := range reqs {
		if !reqs[i].Shadow && !out[i].Allowed {
			return true
		}
	}
	return false
}

// NameCtxKey is the caddy.Context value key under which the rate_limit app
// passes a store module its configured name, so a store can share its state
// across config reloads under that name.
const NameCtxKey caddy.CtxKey = "rate_limit.store_name"

// NameFromContext returns the store name the app passed, or "default".
func NameFromContext(ctx caddy.Context) string {
	if n, ok := ctx.Value(NameCtxKey).(string); ok && n != "" {
		return n
	}
	return "default"
}

// PolicyChecker is implemented by stores that cannot decide every policy
// (the Redis store's Lua twins compute in doubles). The handler checks each
// zone's policy when it is provisioned, so a config the store cannot honour
// fails to load instead of failing per request.
type PolicyChecker interface {
	CheckPolicy(alg algorithms.Algorithm, p algorithms.Policy) error
}

// UnavailableError is returned by a store that cannot decide and whose
// failure policy is to refuse requests. The handler answers 503 with a
// Retry-After of RetryAfter. Any other error from a store lets the request
// through (fail open).
type UnavailableError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string { return "rate-limit store unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

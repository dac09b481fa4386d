package admin

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/control"
)

// Backend is what the admin API needs from the running rate_limit app. The
// app (in the root package) implements it; the router finds it per request
// with caddy.ActiveContext().AppIfConfigured("rate_limit") and a type
// assertion, so admin never imports the root package.
//
// Errors wrap the control package's sentinel errors (ErrNotFound,
// ErrConflict, ErrInvalid with a FieldError, ErrUnavailable), which the
// router maps to problem+json responses.
type Backend interface {
	// Zones lists every configured zone on every server.
	Zones() []control.ZoneInfo
	// Zone returns one zone, or ErrNotFound.
	Zone(name string) (control.ZoneInfo, error)

	// Inspect reads a key's state in a zone without charging it.
	Inspect(ctx context.Context, zone string, key control.KeyRef) (control.KeyState, error)
	// Reset forgets a key's counters in a zone. It returns the state
	// before the reset, for the audit log.
	Reset(ctx context.Context, zone string, key control.KeyRef) (control.KeyState, error)
	// Top returns a zone's n most-denied keys.
	Top(zone string, n int) (control.TopKeys, error)
	// Emit emits a Caddy event through the events app, so the `events`
	// option can subscribe to it.
	Emit(event string, data map[string]any)
	// Explain evaluates a synthetic request against every zone without
	// charging anything.
	Explain(ctx context.Context, req control.ExplainRequest) (control.Explanation, error)
	// Health reports every named store.
	Health(ctx context.Context) control.Health

	// KeyHash returns the hex hash a raw key of zone is stored under, or
	// ErrNotFound for an unknown zone. Key overrides are stored by hash.
	KeyHash(zone, key string) (string, error)
	// Overrides is the live override registry.
	Overrides() (*control.Overrides, error)
	// APIKeys is the API key registry.
	APIKeys() (*control.Keys, error)
	// Now is the app's clock.
	Now() time.Time
	// AuditLogger is the config's rate_limit.audit logger.
	AuditLogger() *zap.Logger
}

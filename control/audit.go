package control

import (
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// AuditLoggerName is the name of the audit logger. Route it with Caddy's
// global `log` option (`include rate_limit.audit`).
const AuditLoggerName = "rate_limit.audit"

// AuditLogger returns the audit logger of a config: the rate_limit app's
// logger (module "rate_limit") named "audit", so the config's `log`
// options with `include rate_limit.audit` (or excluding it) apply.
func AuditLogger(ctx caddy.Context) *zap.Logger { return ctx.Logger().Named("audit") }

// Audit actions.
const (
	ActionKeyCreated      = "key.created"
	ActionKeyRotated      = "key.rotated"
	ActionKeyRevoked      = "key.revoked"
	ActionKeyExpired      = "key.expired"
	ActionKeyDeleted      = "key.deleted"
	ActionOverrideSet     = "override.set"
	ActionOverrideRemoved = "override.removed"
	ActionKeyReset        = "key.reset"
	ActionImport          = "import"
)

// Actor identifies who made a change: the admin client's address and, over
// mutual TLS, its certificate's identity. Background events (expiry) have
// the actor "system".
type Actor struct {
	RemoteAddr  string `json:"remote_addr,omitempty"`
	TLSIdentity string `json:"tls_identity,omitempty"`
	System      bool   `json:"system,omitempty"`
}

// AuditEvent is one change. Before and After are the object's public views
// (KeyInfo, ZoneOverride, KeyOverride, KeyState): never a secret or a
// secret's hash.
type AuditEvent struct {
	Action    string
	Object    string
	Before    any
	After     any
	RequestID string
	Actor     Actor
}

// Audit writes ev as one structured line at info level.
func Audit(log *zap.Logger, ev AuditEvent) {
	if log == nil {
		return
	}
	log.Info("rate_limit change",
		zap.String("action", ev.Action),
		zap.String("object", ev.Object),
		zap.Any("actor", ev.Actor),
		zap.Any("before", ev.Before),
		zap.Any("after", ev.After),
		zap.String("request_id", ev.RequestID),
	)
}

package ratewarden

import (
	"math"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store"
)

// liveZone is a zone's live overrides as one request sees them.
type liveZone struct {
	view control.ZoneView
	zone *control.ZoneOverride
}

// live looks the zone's overrides up once and reports whether the zone is
// switched on. Without an override registry (a handler provisioned without
// the app) there are none.
func (h *Handler) live(z *Zone) (liveZone, bool) {
	if h.overrides == nil {
		return liveZone{}, true
	}
	v := h.overrides.For(z.name)
	lz := liveZone{view: v, zone: v.Zone()}
	return lz, lz.zone == nil || lz.zone.Enabled == nil || *lz.zone.Enabled
}

// effective applies the live overrides of the zone and of the key to the
// zone's policy and mode. A policy the store cannot decide is ignored (and
// logged): the configured policy stays in force.
func (h *Handler) effective(z *Zone, lz liveZone, key store.Key) (algorithms.Policy, bool) {
	p, shadow := z.policy, z.Shadow
	if lz.zone != nil {
		p, shadow = applyZoneOverride(p, shadow, lz.zone)
	}
	if kov := lz.view.Key(key); kov != nil {
		p = applyKeyOverride(p, kov)
	}
	if p == z.policy {
		return p, shadow
	}
	if err := p.Validate(); err != nil {
		h.sampled.Warn("rate_limit override gives an invalid policy; using the configured one",
			zap.String("zone", z.name), zap.Error(err))
		return z.policy, shadow
	}
	if pc, ok := h.store.(store.PolicyChecker); ok {
		if err := pc.CheckPolicy(z.alg, p); err != nil {
			h.sampled.Warn("rate_limit override gives a policy the store cannot decide; using the configured one",
				zap.String("zone", z.name), zap.Error(err))
			return z.policy, shadow
		}
	}
	return p, shadow
}

// applyZoneOverride applies a zone override's limit, burst and mode.
func applyZoneOverride(p algorithms.Policy, shadow bool, ov *control.ZoneOverride) (algorithms.Policy, bool) {
	if ov.Limit != nil {
		p.Limit = *ov.Limit
	}
	if ov.Burst != nil {
		p.Burst = *ov.Burst
	}
	switch ov.Mode {
	case "shadow":
		shadow = true
	case "enforce":
		shadow = false
	}
	return p, shadow
}

// applyKeyOverride applies a key override: an absolute limit, or a
// multiple of the zone's (rounded down, at least 1). A multiplier scales an
// explicit burst too.
func applyKeyOverride(p algorithms.Policy, ov *control.KeyOverride) algorithms.Policy {
	switch {
	case ov.Limit != nil:
		p.Limit = *ov.Limit
	case ov.Multiplier != nil:
		p.Limit = scale(p.Limit, *ov.Multiplier)
		if p.Burst > 0 {
			p.Burst = scale(p.Burst, *ov.Multiplier)
		}
	}
	if ov.Burst != nil {
		p.Burst = *ov.Burst
	}
	return p
}

// scale multiplies n by m, rounding down, clamped to [1, 2^53].
func scale(n int64, m float64) int64 {
	v := math.Floor(float64(n) * m)
	switch {
	case v < 1 || math.IsNaN(v):
		return 1
	case v > 1<<53:
		return 1 << 53
	}
	return int64(v)
}

// policyHeaders returns the RateLimit-Policy and X-RateLimit-Limit values
// for a zone's effective policy: precomputed for the configured one, built
// for an overridden one.
func (z *Zone) policyHeaders(p algorithms.Policy) (policy, limit string) {
	if p.Limit == z.MaxEvents {
		return z.policyHeader, z.limitHeader
	}
	limit = strconv.FormatInt(p.Limit, 10)
	policy = z.quotedName + ";q=" + limit
	if !z.concurrency {
		policy += ";w=" + strconv.FormatInt(ceilSeconds(time.Duration(z.Window)), 10)
	}
	return policy, limit
}

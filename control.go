package ratewarden

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store"
)

// controlPlane is the API key and override registries over one store. It
// is pooled by store, so a config reload keeps the registries (and their
// watches) running, and a reload that replaces the store starts new ones.
type controlPlane struct {
	keys      *control.Keys
	overrides *control.Overrides
	cancel    context.CancelFunc
}

// Destruct stops the registries' watches.
func (cp *controlPlane) Destruct() error {
	cp.cancel()
	return nil
}

// controlPlanes pools control planes by store identity.
var controlPlanes = caddy.NewUsagePool()

// provisionControl loads or starts the control plane over the control
// store. A store that is down at start is not fatal: the registries keep
// retrying in the background and the admin API reports the failure.
func (a *App) provisionControl(ctx caddy.Context) error {
	name := a.ControlStore
	if name == "" {
		name = DefaultStore
	}
	st, err := a.Store(name)
	if err != nil {
		return fmt.Errorf("control_store: %w", err)
	}
	rec, ok := st.(store.Records)
	if !ok {
		return fmt.Errorf("control_store: store %q (%T) cannot keep API keys and overrides", name, st)
	}
	logger := ctx.Logger()
	a.auditLog = control.AuditLogger(ctx)
	poolKey := fmt.Sprintf("%s@%p", name, st)
	val, _, err := controlPlanes.LoadOrNew(poolKey, func() (caddy.Destructor, error) {
		bg, cancel := context.WithCancel(context.Background())
		cp := &controlPlane{
			keys:      control.NewKeys(control.KeysOptions{Records: rec, Audit: a.auditLog}),
			overrides: control.NewOverrides(control.OverridesOptions{Records: rec}),
			cancel:    cancel,
		}
		if err := cp.keys.Start(bg); err != nil {
			logger.Error("loading API keys failed; retrying in the background", zap.String("store", name), zap.Error(err))
		}
		if err := cp.overrides.Start(bg); err != nil {
			logger.Error("loading overrides failed; retrying in the background", zap.String("store", name), zap.Error(err))
		}
		go cp.reportGauges(bg, gaugesReportInterval)
		return cp, nil
	})
	if err != nil {
		return err
	}
	a.control = val.(*controlPlane)
	a.control.keys.SetAuditLogger(a.auditLog)
	a.control.keys.SetRetention(time.Duration(a.APIKeyRetention))
	a.controlKey = poolKey
	a.controlStore = name
	return nil
}

// cleanupControl releases this config's hold on the control plane.
func (a *App) cleanupControl() {
	if a.controlKey != "" {
		_, _ = controlPlanes.Delete(a.controlKey)
	}
}

// gaugesReportInterval is how often the overrides_active and api_keys
// gauges are refreshed.
const gaugesReportInterval = 2 * time.Second

// reportGauges keeps the overrides_active and api_keys gauges current
// until ctx is done.
func (cp *controlPlane) reportGauges(ctx context.Context, every time.Duration) {
	initMetrics()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		zones, keys := cp.overrides.List()
		metrics.overridesActive.WithLabelValues("zone").Set(float64(len(zones)))
		metrics.overridesActive.WithLabelValues("key").Set(float64(len(keys)))
		active, expired, revoked := cp.keys.Counts(time.Now())
		metrics.apiKeys.WithLabelValues(control.StatusActive).Set(float64(active))
		metrics.apiKeys.WithLabelValues(control.StatusExpired).Set(float64(expired))
		metrics.apiKeys.WithLabelValues(control.StatusRevoked).Set(float64(revoked))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

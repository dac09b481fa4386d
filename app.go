package ratewarden

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/store"
)

func init() {
	caddy.RegisterModule(App{})
}

// DefaultStore is the name of the store a handler uses when it names none.
const DefaultStore = "default"

// App is the rate_limit app: the state that handlers share. It holds the
// named stores where counters live. Configure it with the Caddyfile global
// option `rate_limit { ... }` or under `apps.rate_limit` in JSON. With no
// configuration at all, a memory store named "default" is used.
type App struct {
	// Stores maps a store name to its backend. Handlers use the store named
	// "default" unless they name another with `store`. Each value is a
	// store module; its "backend" field picks the module
	// (rate_limit.stores.<backend>), for example
	// `{"default": {"backend": "memory", "max_keys": 500000}}`.
	// Default: a memory store named "default" with default settings.
	StoresRaw map[string]json.RawMessage `json:"stores,omitempty" caddy:"namespace=rate_limit.stores inline_key=backend"`

	// ControlStore names the store that keeps API keys and live overrides.
	// With a Redis store, every instance sharing it sees each change within
	// a second; with the memory store, they are kept in Caddy's storage and
	// survive a restart. Default: "default".
	ControlStore string `json:"control_store,omitempty"`

	// APIKeyRetention, when set, deletes each API key that has been
	// revoked or expired for at least this long (checked every second by
	// every instance, audited once as key.deleted by the system). Default: 0,
	// keep such keys until they are deleted through the admin API.
	// Example: "720h".
	APIKeyRetention caddy.Duration `json:"api_key_retention,omitempty"`

	stores       map[string]store.Store
	backends     map[string]string
	ctx          caddy.Context
	control      *controlPlane
	controlKey   string
	controlStore string
	auditLog     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision loads the configured stores and adds the default memory store
// when none is named "default".
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	if a.APIKeyRetention < 0 {
		return fmt.Errorf("api_key_retention must not be negative, got %s", time.Duration(a.APIKeyRetention))
	}
	a.stores = make(map[string]store.Store)
	a.backends = make(map[string]string)
	if _, ok := a.StoresRaw[DefaultStore]; !ok {
		if a.StoresRaw == nil {
			a.StoresRaw = make(map[string]json.RawMessage)
		}
		a.StoresRaw[DefaultStore] = json.RawMessage(`{"backend":"memory"}`)
	}
	for name, raw := range a.StoresRaw {
		st, backend, err := loadStore(ctx, name, raw)
		if err != nil {
			return err
		}
		a.stores[name] = st
		a.backends[name] = backend
	}
	return a.provisionControl(ctx)
}

// Cleanup releases the control plane.
func (a *App) Cleanup() error {
	a.cleanupControl()
	return nil
}

// loadStore loads one store module, telling it its name so it can keep its
// state across reloads under that name.
func loadStore(ctx caddy.Context, name string, raw json.RawMessage) (store.Store, string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, "", fmt.Errorf("store %q: %w", name, err)
	}
	var backend string
	if err := json.Unmarshal(fields["backend"], &backend); err != nil || backend == "" {
		return nil, "", fmt.Errorf("store %q: missing \"backend\" (for example \"memory\")", name)
	}
	delete(fields, "backend")
	rest, err := json.Marshal(fields)
	if err != nil {
		return nil, "", err
	}
	mod, err := ctx.WithValue(store.NameCtxKey, name).LoadModuleByID("rate_limit.stores."+backend, rest)
	if err != nil {
		return nil, "", fmt.Errorf("loading store %q: %w", name, err)
	}
	st, ok := mod.(store.Store)
	if !ok {
		return nil, "", fmt.Errorf("store %q: module %T is not a store", name, mod)
	}
	return st, backend, nil
}

// inlineStorePrefix starts the name of a store defined inside a handler.
const inlineStorePrefix = "inline-"

// inlineNameKey keys the HMAC that names inline stores: random, and the
// same for every config this process loads.
var inlineNameKey = func() (k [32]byte) {
	_, _ = rand.Read(k[:])
	return k
}()

// addInlineStore loads the store a handler defines inline (raw, a store
// module with its "backend"), unless an identical one is loaded already,
// and returns its name: inlineStorePrefix and an HMAC of raw under a key
// of this process (a plain hash of settings that may hold a literal
// password would let anyone who sees the name test guesses of it). The store is
// the app's like any other (listed, health-checked, cleaned up with the
// config), and the name is stable across reloads, so its counters or
// pooled clients are kept.
func (a *App) addInlineStore(raw json.RawMessage) (string, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return "", fmt.Errorf("inline store: %w", err)
	}
	mac := hmac.New(sha256.New, inlineNameKey[:])
	mac.Write(compact.Bytes())
	name := inlineStorePrefix + hex.EncodeToString(mac.Sum(nil)[:6])
	if _, ok := a.stores[name]; ok {
		return name, nil
	}
	st, backend, err := loadStore(a.ctx, name, compact.Bytes())
	if err != nil {
		return "", fmt.Errorf("inline store: %w", err)
	}
	a.stores[name] = st
	a.backends[name] = backend
	return name, nil
}

// Start implements caddy.App.
func (a *App) Start() error { return nil }

// Stop implements caddy.App. Stores are released by their own Cleanup.
func (a *App) Stop() error { return nil }

// Store returns the store with the given name.
func (a *App) Store(name string) (store.Store, error) {
	if name == "" {
		name = DefaultStore
	}
	st, ok := a.stores[name]
	if !ok {
		return nil, fmt.Errorf("no rate_limit store named %q (configured: %v)", name, a.StoreNames())
	}
	return st, nil
}

// StoreNames lists the configured store names, sorted.
func (a *App) StoreNames() []string {
	names := make([]string, 0, len(a.stores))
	for n := range a.stores {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

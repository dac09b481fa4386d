package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ratewarden/ratewarden/admin/openapitest"
	"github.com/ratewarden/ratewarden/control"
)

// testNow is the fake backend's clock.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// memRecords is a store.Records in a map, for control's real registries.
type memRecords struct {
	mu   sync.Mutex
	recs map[string]map[string][]byte
}

func (m *memRecords) LoadRecords(_ context.Context, kind string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.recs[kind]), nil
}

func (m *memRecords) LoadRecord(_ context.Context, kind, id string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.recs[kind][id]
	return v, ok, nil
}

func (m *memRecords) PutRecord(_ context.Context, kind, id string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[string]map[string][]byte{}
	}
	if m.recs[kind] == nil {
		m.recs[kind] = map[string][]byte{}
	}
	m.recs[kind][id] = value
	return nil
}

func (m *memRecords) DeleteRecord(_ context.Context, kind, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs[kind], id)
	return nil
}

func (m *memRecords) WatchRecords(context.Context, func(kind, id string)) {}

// snapshot is every record, to check that a refused request changed
// nothing.
func (m *memRecords) snapshot() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, _ := json.Marshal(m.recs)
	return string(b)
}

// fakeBackend is a Backend with one zone, "api", whose keys and overrides
// registries are control's real ones over memRecords. It counts the calls
// it receives.
type fakeBackend struct {
	recs *memRecords
	keys *control.Keys
	ovs  *control.Overrides

	// elapsed moves the backend's clock (control's too) past testNow.
	elapsed atomic.Int64

	mu     sync.Mutex
	calls  []string
	health control.Health
	err    error // returned by APIKeys and Overrides when set
}

func (f *fakeBackend) now() time.Time { return testNow.Add(time.Duration(f.elapsed.Load())) }

func newFakeBackend(t testing.TB) *fakeBackend {
	t.Helper()
	fb := &fakeBackend{
		recs:   &memRecords{},
		health: control.Health{Status: "ok", Stores: map[string]control.StoreHealth{"default": {Name: "default", Needed: true}}},
	}
	fb.keys = control.NewKeys(control.KeysOptions{Records: fb.recs, Now: fb.now, Logger: zap.NewNop()})
	fb.ovs = control.NewOverrides(control.OverridesOptions{Records: fb.recs, Now: fb.now, Logger: zap.NewNop()})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := fb.keys.Start(ctx); err != nil {
		t.Fatalf("starting keys: %v", err)
	}
	if err := fb.ovs.Start(ctx); err != nil {
		t.Fatalf("starting overrides: %v", err)
	}
	return fb
}

func (f *fakeBackend) called(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fakeBackend) wasCalled(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.calls, name)
}

func (f *fakeBackend) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeBackend) zoneInfo() control.ZoneInfo {
	return control.ZoneInfo{
		Name: "api", Servers: []string{"srv0"}, Store: "default", Algorithm: "gcra", Limit: 100, Window: "1m0s",
		Mode: "enforce", Effective: control.EffectivePolicy{Limit: 100, Mode: "enforce", Enabled: true},
		Override: f.ovs.Zone("api"),
	}
}

func (f *fakeBackend) Zones() []control.ZoneInfo {
	f.called("Zones")
	z := f.zoneInfo()
	z.Servers = nil // a nil slice must still answer []
	return []control.ZoneInfo{z}
}

func (f *fakeBackend) Zone(name string) (control.ZoneInfo, error) {
	f.called("Zone")
	if name != "api" {
		return control.ZoneInfo{}, control.ErrNotFound
	}
	return f.zoneInfo(), nil
}

func testKeyHash(zone, key string) string {
	sum := sha256.Sum256([]byte(zone + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

func (f *fakeBackend) state(zone string, key control.KeyRef) (control.KeyState, error) {
	if zone != "api" {
		return control.KeyState{}, control.ErrNotFound
	}
	hash := key.Hash
	if hash == "" {
		hash = testKeyHash(zone, key.Raw)
	}
	return control.KeyState{Zone: zone, KeyHash: hash, Limit: 100, Remaining: 99,
		Allowed: true, ResetAfter: control.Millis(600 * time.Millisecond)}, nil
}

func (f *fakeBackend) Inspect(_ context.Context, zone string, key control.KeyRef) (control.KeyState, error) {
	f.called("Inspect")
	return f.state(zone, key)
}

func (f *fakeBackend) Reset(_ context.Context, zone string, key control.KeyRef) (control.KeyState, error) {
	f.called("Reset")
	return f.state(zone, key)
}

func (f *fakeBackend) Top(zone string, n int) (control.TopKeys, error) {
	f.called("Top")
	if zone != "api" {
		return control.TopKeys{}, control.ErrNotFound
	}
	keys := []control.TopKey{{KeyHash: testKeyHash(zone, "mallory"), Count: 7}, {KeyHash: testKeyHash(zone, "eve"), APIKey: "eve's key", Count: 2}}
	return control.TopKeys{Zone: zone, Total: 9, Keys: keys[:min(n, len(keys))]}, nil
}

// AuditLogger is never used: the harness injects the router's audit log.
func (f *fakeBackend) AuditLogger() *zap.Logger { return zap.NewNop() }

func (f *fakeBackend) Emit(event string, data map[string]any) {
	f.called("Emit:" + event)
}

func (f *fakeBackend) Explain(_ context.Context, req control.ExplainRequest) (control.Explanation, error) {
	f.called("Explain")
	if req.Server != "" && req.Server != "srv0" {
		return control.Explanation{}, &control.FieldError{Field: "/server", Reason: "no such server"}
	}
	return control.Explanation{Decision: "allowed", Zones: []control.ZoneExplain{{
		Server: "srv0", Zone: "api", Matched: true, Reason: "no match block", KeyHash: testKeyHash("api", req.RemoteAddr),
		Cost: 1, Decision: "allowed", Limit: 100, Remaining: 99,
	}}}, nil
}

func (f *fakeBackend) Health(context.Context) control.Health {
	f.called("Health")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health
}

func (f *fakeBackend) KeyHash(zone, key string) (string, error) {
	f.called("KeyHash")
	if zone != "api" {
		return "", control.ErrNotFound
	}
	return testKeyHash(zone, key), nil
}

func (f *fakeBackend) Overrides() (*control.Overrides, error) {
	f.called("Overrides")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.ovs, nil
}

func (f *fakeBackend) APIKeys() (*control.Keys, error) {
	f.called("APIKeys")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.keys, nil
}

func (f *fakeBackend) Now() time.Time { f.called("Now"); return f.now() }

// harness serves a Router's routes on a ServeMux, as Caddy's admin
// endpoint does, over a fakeBackend, with the audit log observed.
type harness struct {
	t     testing.TB
	fb    *fakeBackend
	mux   *http.ServeMux
	audit *observer.ObservedLogs
	v     *openapitest.Validator
	clock *testClock
}

// testClock is the admin rate limiter's clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var (
	validatorOnce sync.Once
	validator     *openapitest.Validator
	validatorErr  error
)

func testValidator(t testing.TB) *openapitest.Validator {
	t.Helper()
	validatorOnce.Do(func() { validator, validatorErr = openapitest.New(openapiJSON) })
	if validatorErr != nil {
		t.Fatal(validatorErr)
	}
	return validator
}

func newHarness(t testing.TB, limits limitOptions) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	h := &harness{t: t, fb: newFakeBackend(t), mux: http.NewServeMux(), audit: logs,
		v: testValidator(t), clock: &testClock{now: testNow}}
	rt := Router{
		backend:  func() (Backend, error) { return h.fb, nil },
		auditLog: func() *zap.Logger { return zap.New(core) },
		now:      h.clock.Now,
		limits:   limits,
	}
	mount(h.mux, rt.Routes())
	return h
}

// mount registers routes on mux as Caddy's admin endpoint does.
func mount(mux *http.ServeMux, routes []caddy.AdminRoute) {
	for _, r := range routes {
		handler := r.Handler
		mux.Handle(r.Pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if err := handler.ServeHTTP(w, req); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}))
	}
}

// response is one recorded exchange.
type response struct {
	req    *http.Request
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// problem decodes a problem+json body and checks its common members.
func (r response) problem(t testing.TB, status int) problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.req.Method, r.req.URL, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	var p problem
	r.json(t, &p)
	if p.Status != status || !strings.HasPrefix(p.Type, problemBase+"admin-") || p.Title == "" {
		t.Fatalf("problem %+v", p)
	}
	if p.RequestID == "" || p.RequestID != r.header.Get("X-Request-ID") {
		t.Fatalf("problem request_id %q, header %q", p.RequestID, r.header.Get("X-Request-ID"))
	}
	return p
}

// do sends a request; a non-empty body is sent as application/json unless
// header says otherwise. The response is checked against the OpenAPI
// document when its route is in it.
func (h *harness) do(method, target, body string, header ...string) response {
	h.t.Helper()
	return h.doT(h.t, method, target, body, header...)
}

// doT is do reporting to t.
func (h *harness) doT(t testing.TB, method, target, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.mux.ServeHTTP(rec, req)
	resp := response{req: req, status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if h.v.HasOperation(req) {
		h.v.RequireResponse(t, req, resp.status, resp.header, resp.body)
	}
	return resp
}

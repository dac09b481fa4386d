package ratewarden

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ratewarden/ratewarden/store"
)

// testConfig is the Caddy config every handler test is provisioned in: no
// admin endpoint, and Caddy's own logs discarded.
const testConfig = `{"admin":{"disabled":true},"logging":{"logs":{"default":{"writer":{"output":"discard"}}}}}`

// provisionMu serializes caddy.ProvisionContext, which sets process-wide
// defaults (the default logger and CertMagic's storage).
var provisionMu sync.Mutex

// newTestContext returns a context of a Caddy config, as a running Caddy
// hands modules. A handler cannot be provisioned in a bare
// caddy.NewContext(caddy.Context{...}): ctx.App needs a config. appJSON, when
// not empty, configures the rate_limit app; otherwise the app is loaded on
// demand with its defaults. The context is cancelled, and the modules it
// loaded cleaned up, when the test ends.
func newTestContext(t testing.TB, appJSON string) caddy.Context {
	t.Helper()
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(testConfig), &cfg); err != nil {
		t.Fatal(err)
	}
	if appJSON != "" {
		cfg.AppsRaw = caddy.ModuleMap{"rate_limit": json.RawMessage(appJSON)}
	}
	// Control records (API keys, overrides) of memory stores go to Caddy's
	// storage: keep each test's in its own directory.
	cfg.StorageRaw = json.RawMessage(fmt.Sprintf(`{"module":"file_system","root":%q}`, t.TempDir()))
	provisionMu.Lock()
	root, err := caddy.ProvisionContext(&cfg)
	provisionMu.Unlock()
	if err != nil {
		t.Fatalf("provisioning the test config: %v", err)
	}
	ctx, cancel := caddy.NewContext(root)
	t.Cleanup(cancel)
	return ctx
}

var uniqSeq atomic.Int64

// uniq returns a name no other test in this process uses. Zone names are
// global and the pooled "default" store keeps their counters, also across
// -count runs.
func uniq(prefix string) string {
	return fmt.Sprintf("%s_%d", prefix, uniqSeq.Add(1))
}

// uniqIP returns an IPv4 address no other test in this process uses.
func uniqIP() string {
	n := uniqSeq.Add(1)
	return fmt.Sprintf("100.%d.%d.%d", 64+n>>16&63, n>>8&255, n&255)
}

// provisionHandler provisions h in a fresh test context.
func provisionHandler(t testing.TB, h *Handler) *Handler {
	t.Helper()
	if err := h.Provision(newTestContext(t, "")); err != nil {
		t.Fatalf("provisioning handler: %v", err)
	}
	return h
}

// handlerFromJSON decodes handler JSON strictly, as Caddy does, and
// provisions it. %s verbs in js are filled from args (zone names).
func handlerFromJSON(t testing.TB, js string, args ...any) *Handler {
	t.Helper()
	h := new(Handler)
	if err := caddy.StrictUnmarshalJSON([]byte(fmt.Sprintf(js, args...)), h); err != nil {
		t.Fatalf("decoding handler JSON: %v", err)
	}
	return provisionHandler(t, h)
}

// call is one request through a handler.
type call struct {
	method string            // default GET
	path   string            // default /
	remote string            // client IP; default 192.0.2.1
	header map[string]string // request headers
	srv    *caddyhttp.Server // default: a server without error routes
	next   caddyhttp.Handler // default: writes 200 "ok"
	ctx    context.Context   // request context; default Background
}

// result is what a call produced.
type result struct {
	code   int
	header http.Header
	body   string
	err    error
	next   bool // next was called
	repl   *caddy.Replacer
	extra  *caddyhttp.ExtraLogFields
}

// okNext writes 200 "ok".
var okNext = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	_, err := w.Write([]byte("ok"))
	return err
})

// statusNext writes code.
func statusNext(code int) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(code)
		return nil
	})
}

// prepare builds the request as Caddy's server does: a replacer, the vars
// with client_ip, the server and the access log's extra fields.
func (c call) prepare(w http.ResponseWriter) (*http.Request, *caddy.Replacer) {
	method, path, remote, srv := c.method, c.path, c.remote, c.srv
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/"
	}
	if remote == "" {
		remote = "192.0.2.1"
	}
	if srv == nil {
		// A server that writes access logs, without error routes.
		srv = &caddyhttp.Server{Logs: new(caddyhttp.ServerLogConfig)}
	}
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	r := httptest.NewRequestWithContext(ctx, method, path, nil)
	if strings.Contains(remote, ":") {
		r.RemoteAddr = "[" + remote + "]:4321"
	} else {
		r.RemoteAddr = remote + ":4321"
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	repl := caddy.NewReplacer()
	return caddyhttp.PrepareRequest(r, repl, w, srv), repl
}

// do sends c through h.
func (c call) do(t testing.TB, h *Handler) result {
	t.Helper()
	w := httptest.NewRecorder()
	r, repl := c.prepare(w)
	next := c.next
	if next == nil {
		next = okNext
	}
	var res result
	res.err = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		res.next = true
		return next.ServeHTTP(w, r)
	}))
	res.code, res.header, res.body = w.Code, w.Result().Header, w.Body.String()
	res.repl = repl
	res.extra, _ = r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields)
	return res
}

// placeholder returns a placeholder's value as a string ("" when unset).
func (r result) placeholder(name string) string {
	v, ok := r.repl.Get(name)
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// allowed reports whether the request went through to next (whose error,
// if any, is passed back), failing the test when it was neither passed on
// nor refused with 429.
func (r result) allowed(t testing.TB) bool {
	t.Helper()
	var herr caddyhttp.HandlerError
	switch {
	case r.next:
		return true
	case r.err == nil && r.code == http.StatusTooManyRequests:
		return false
	case errors.As(r.err, &herr) && herr.StatusCode == http.StatusTooManyRequests:
		return false
	}
	t.Fatalf("neither passed on nor refused: status %d, error %v", r.code, r.err)
	return false
}

// admitted sends c n times and returns how many were allowed.
func (c call) admitted(t testing.TB, h *Handler, n int) int {
	t.Helper()
	got := 0
	for range n {
		if c.do(t, h).allowed(t) {
			got++
		}
	}
	return got
}

// extraField returns the access-log extra field named key. ExtraLogFields
// keeps its fields unexported, so this reads them by reflection and
// encodes them as the access log would.
func extraField(t testing.TB, e *caddyhttp.ExtraLogFields, key string) string {
	t.Helper()
	if e == nil {
		t.Fatal("no ExtraLogFields in the request context")
	}
	v := reflect.ValueOf(e).Elem().FieldByName("fields")
	if !v.IsValid() || v.Type() != reflect.TypeFor[[]zapcore.Field]() {
		t.Fatal("caddyhttp.ExtraLogFields has no fields slice any more; update extraField")
	}
	fields := reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem().Interface().([]zapcore.Field)
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	s, _ := enc.Fields[key].(string)
	return s
}

// zoneNamed returns h's provisioned zone called name.
func zoneNamed(t testing.TB, h *Handler, name string) *Zone {
	t.Helper()
	for _, z := range h.zones {
		if z.name == name {
			return z
		}
	}
	t.Fatalf("no zone %q", name)
	return nil
}

// remaining reads, without charging, the quota left for raw key in zone.
func remaining(t testing.TB, h *Handler, zone, raw string) int64 {
	t.Helper()
	z := zoneNamed(t, h, zone)
	st := h.store
	if w, ok := st.(interface{ unwrap() store.Store }); ok {
		st = w.unwrap()
	}
	insp, ok := st.(store.Inspector)
	if !ok {
		t.Fatalf("store %T cannot inspect", st)
	}
	d, err := insp.Inspect(context.Background(), store.Request{
		Zone: z.name, Key: hashKey(z.name, raw), Algorithm: z.alg, Policy: z.policy,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.Remaining
}

// observeLogs replaces h's loggers with an observer recording every level.
func observeLogs(h *Handler) *observer.ObservedLogs {
	core, logs := observer.New(zapcore.DebugLevel)
	h.logger = zap.New(core)
	h.sampled = h.logger
	return logs
}

// counterValue reads a counter's current value.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// decisions reads the decisions counter of zone and outcome.
func decisions(t testing.TB, zone, outcome string) float64 {
	t.Helper()
	initMetrics()
	return counterValue(t, metrics.decisions.WithLabelValues(zone, outcome))
}

// wantErr fails the test unless err is non-nil and contains every part.
func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

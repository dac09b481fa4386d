package ratewarden

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// handlerFunc adapts a plain function to caddyhttp.Handler.
func handlerFunc(f func(http.ResponseWriter) error) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error { return f(w) })
}

func TestCountIf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		countIf string
		charged caddyhttp.Handler // a response the zone charges
		free    caddyhttp.Handler // a response it does not; nil for none
	}{
		{"only matching statuses are charged", `{"status_code":[401,403]}`, statusNext(401), statusNext(200)},
		{"status class", `{"status_code":[4]}`, statusNext(404), statusNext(302)},
		{"status of a returned HandlerError", `{"status_code":[401]}`,
			handlerFunc(func(http.ResponseWriter) error { return caddyhttp.Error(401, errors.New("bad password")) }),
			handlerFunc(func(http.ResponseWriter) error { return caddyhttp.Error(404, errors.New("no such user")) })},
		{"response header", `{"headers":{"X-Login":["failed"]}}`,
			handlerFunc(func(w http.ResponseWriter) error { w.Header().Set("X-Login", "failed"); return nil }), okNext},
		{"informational status is not the response status", `{"status_code":[401]}`,
			handlerFunc(func(w http.ResponseWriter) error { w.WriteHeader(103); w.WriteHeader(401); return nil }),
			handlerFunc(func(w http.ResponseWriter) error { w.WriteHeader(103); w.WriteHeader(200); return nil })},
		// Caddy answers an error that is not a HandlerError with 500.
		{"a plain error counts as status 500", `{"status_code":[500]}`,
			handlerFunc(func(http.ResponseWriter) error { return errors.New("upstream exploded") }), okNext},
		// A handler that writes nothing gets net/http's 200.
		{"an empty response counts as status 200", `{"status_code":[200]}`,
			handlerFunc(func(http.ResponseWriter) error { return nil }), statusNext(204)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("countif")
			h := oneZone(t, name, `"max_events":2,"window":"1m","count_if":`+tc.countIf, "")
			if tc.free != nil {
				if got := (call{next: tc.free}).admitted(t, h, 4); got != 4 {
					t.Fatalf("admitted %d of 4 uncharged responses", got)
				}
				if got := remaining(t, h, name, ""); got != 2 {
					t.Fatalf("%d left after uncharged responses, want 2", got)
				}
			}
			if got := (call{next: tc.charged}).admitted(t, h, 2); got != 2 {
				t.Fatalf("admitted %d of the first 2 charged responses", got)
			}
			if got := remaining(t, h, name, ""); got != 0 {
				t.Errorf("%d left after 2 charged responses, want 0", got)
			}
			// Once spent, the key is refused before the request is served,
			// whatever the response would have been.
			if res := (call{next: okNext}).do(t, h); res.allowed(t) {
				t.Error("request allowed after the count_if quota was spent")
			}
		})
	}
}

func TestConcurrencySlotIsReleased(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		finish func(cancel context.CancelFunc) error // how next ends
		panics bool
	}{
		{"next returns", func(context.CancelFunc) error { return nil }, false},
		{"next returns an error", func(context.CancelFunc) error { return caddyhttp.Error(502, errors.New("bad gateway")) }, false},
		{"client aborts", func(cancel context.CancelFunc) error { cancel(); return context.Canceled }, false},
		{"next panics", func(context.CancelFunc) error { panic("handler bug") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("conc")
			h := oneZone(t, name, `"algorithm":"concurrency","max_events":1`, "")
			h.store = ctxStore{h.store}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var nested result
			var nextErr error
			first := call{ctx: ctx, next: caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				nested = call{}.do(t, h) // while the first is in flight
				nextErr = tc.finish(cancel)
				return nextErr
			})}
			func() {
				defer func() {
					if r := recover(); (r != nil) != tc.panics {
						t.Errorf("recovered %v, want a panic: %v", r, tc.panics)
					}
				}()
				res := first.do(t, h)
				if !res.next || res.err != nextErr {
					t.Errorf("first request: served %v, error %v, want next's error %v", res.next, res.err, nextErr)
				}
			}()
			if nested.next || nested.code != http.StatusTooManyRequests {
				t.Errorf("a second request in flight was not refused: status %d", nested.code)
			}
			if got := remaining(t, h, name, ""); got != 1 {
				t.Errorf("%d slots free after the request ended, want 1", got)
			}
			if !(call{}).do(t, h).allowed(t) {
				t.Error("the slot was not released")
			}
		})
	}
}

// TestShadowConcurrencyZoneOverLimit: a shadow concurrency zone that is
// over its limit does not hold a slot it never got.
func TestShadowConcurrencyZoneOverLimit(t *testing.T) {
	t.Parallel()
	name := uniq("shadowconc")
	h := oneZone(t, name, `"algorithm":"concurrency","max_events":1,"shadow":true`, "")
	var inner result
	outer := call{next: caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		inner = call{}.do(t, h)
		return nil
	})}.do(t, h)
	if !outer.allowed(t) || !inner.allowed(t) || inner.placeholder(phExceeded) != "true" {
		t.Fatalf("outer %v, inner %v exceeded %q", outer.next, inner.next, inner.placeholder(phExceeded))
	}
	if got := remaining(t, h, name, ""); got != 1 {
		t.Errorf("%d slots free after both ended, want 1", got)
	}
}

// ctxStore fails calls whose context is done, as a networked store would.
type ctxStore struct{ store.Store }

func (s ctxStore) unwrap() store.Store { return s.Store }

func (s ctxStore) Take(ctx context.Context, reqs []store.Request, out []algorithms.Decision) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Store.Take(ctx, reqs, out)
}

// faultyStore passes the first calls to a real store and fails the rest.
type faultyStore struct {
	store.Store
	ok    int64 // calls that succeed
	calls atomic.Int64
}

func (s *faultyStore) Take(ctx context.Context, reqs []store.Request, out []algorithms.Decision) error {
	if s.calls.Add(1) > s.ok {
		return fmt.Errorf("store unreachable")
	}
	return s.Store.Take(ctx, reqs, out)
}

func TestStoreFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		zone string
		ok   int64
		next caddyhttp.Handler
		log  string
	}{
		{"failing decision allows the request", `"max_events":1,"window":"1m"`, 0, okNext, "store failed; allowing request"},
		{"failing release is logged", `"algorithm":"concurrency","max_events":1`, 1, okNext, "releasing concurrency slots failed"},
		{"failing count_if charge is logged", `"max_events":1,"window":"1m","count_if":{"status_code":[401]}`, 1, statusNext(401), "charging count_if zones failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := oneZone(t, uniq("faulty"), tc.zone, "")
			h.store = &faultyStore{Store: h.store, ok: tc.ok}
			logs := observeLogs(h)
			for i := range 2 {
				if res := (call{next: tc.next}).do(t, h); !res.allowed(t) {
					t.Fatalf("request %d refused", i)
				}
			}
			if logs.FilterMessageSnippet(tc.log).Len() == 0 {
				t.Errorf("no log containing %q in %v", tc.log, logs.All())
			}
		})
	}
}

// unavailableStore refuses every call the way a store whose failure policy
// is "deny" does.
type unavailableStore struct{ store.Store }

func (unavailableStore) Take(context.Context, []store.Request, []algorithms.Decision) error {
	return &store.UnavailableError{RetryAfter: 1500 * time.Millisecond, Err: fmt.Errorf("breaker open")}
}

func TestUnavailableStoreRefusesWith503(t *testing.T) {
	t.Parallel()
	h := oneZone(t, uniq("unavailable"), `"key":"static","max_events":5,"window":"1m"`, "")
	h.store = unavailableStore{h.store}
	res := call{}.do(t, h)
	var herr caddyhttp.HandlerError
	if res.next || !errors.As(res.err, &herr) || herr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("want a 503 error without calling next, got next=%v err=%v", res.next, res.err)
	}
	if got := res.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (1.5s rounded up)", got)
	}
}

// pickyStore refuses every policy, as the Redis store does for policies its
// Lua twins cannot compute exactly.
type pickyStore struct{ store.Store }

func (pickyStore) CheckPolicy(algorithms.Algorithm, algorithms.Policy) error {
	return fmt.Errorf("too large for doubles")
}

func TestStorePolicyCheckFailsProvisioning(t *testing.T) {
	t.Parallel()
	h := &Handler{RateLimits: map[string]*Zone{uniq("picky"): {Key: "static", MaxEvents: 1, Window: caddy.Duration(time.Minute)}}}
	h.store = pickyStore{}
	err := h.Provision(newTestContext(t, ""))
	if err == nil || !strings.Contains(err.Error(), "too large for doubles") {
		t.Fatalf("Provision error = %v, want the store's policy error", err)
	}
}

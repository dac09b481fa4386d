package admin

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestClientLimiter(t *testing.T) {
	t.Parallel()
	l := newClientLimiter(limitOptions{Limit: rate.Every(time.Second), Burst: 2, MaxClients: 2})
	now := testNow
	for i := range 2 {
		if ok, _ := l.allow("a", now); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.allow("a", now)
	if ok || wait != time.Second {
		t.Fatalf("past the burst: ok %v, wait %v; want refused for 1s", ok, wait)
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Error("another client shares a's bucket")
	}
	if ok, _ := l.allow("a", now.Add(time.Second)); !ok {
		t.Error("a token did not come back after a second")
	}
	// A refused request takes nothing: after one more second a has one token.
	l.allow("a", now.Add(time.Second))
	if ok, _ := l.allow("a", now.Add(2*time.Second)); !ok {
		t.Error("a refused request took a token")
	}
}

func TestClientLimiterStaysBounded(t *testing.T) {
	t.Parallel()
	l := newClientLimiter(limitOptions{Limit: rate.Every(time.Second), Burst: 1, MaxClients: 3})
	now := testNow
	for i := range 100 {
		l.allow(fmt.Sprint("client", i), now.Add(time.Duration(i)*time.Millisecond))
		if n := len(l.clients); n > 3 {
			t.Fatalf("%d clients tracked, max 3", n)
		}
	}
	// The most recent client is still limited: eviction took the oldest.
	if ok, _ := l.allow("client99", now.Add(100*time.Millisecond)); ok {
		t.Error("the newest client's bucket was forgotten")
	}
}

// TestAdminRateLimit runs the limit through the router: the guarded
// endpoints share a bucket per client, a refusal is a 429 problem with
// Retry-After and changes nothing, and unguarded endpoints are not counted.
func TestAdminRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{Limit: rate.Every(time.Minute), Burst: 2})
	id := h.createKey(t, `{"name":"a"}`).Key.ID
	if r := h.do("GET", v1+"/keys", ""); r.status != http.StatusOK {
		t.Fatalf("second request: %d", r.status)
	}
	for path, body := range map[string]string{"/keys": `{"name":"b"}`, "/keys/" + id + "/rotate": `{}`} {
		r := h.do("POST", v1+path, body)
		p := r.problem(t, http.StatusTooManyRequests)
		if p.Type != problemBase+slugRateLimited || r.header.Get("Retry-After") != "60" {
			t.Errorf("%s: problem %+v, Retry-After %q", path, p, r.header.Get("Retry-After"))
		}
	}
	if n := len(h.fb.keys.List()); n != 1 {
		t.Errorf("%d keys after refused creations, want 1", n)
	}
	if r := h.do("GET", v1+"/keys/"+id, ""); r.status != http.StatusOK {
		t.Errorf("an unguarded endpoint was limited: %d", r.status)
	}
	if r := h.do("GET", v1+"/keys", "", "X-Forwarded-For", "198.51.100.1"); r.status != http.StatusTooManyRequests {
		t.Errorf("X-Forwarded-For changed the client: %d", r.status)
	}
	// Another client (address) has its own bucket.
	req := httptest.NewRequest("GET", v1+"/keys", nil)
	req.RemoteAddr = "198.51.100.1:4000"
	rec := httptest.NewRecorder()
	h.mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("another client was limited: %d", rec.Code)
	}
	h.clock.Advance(time.Minute)
	if r := h.do("GET", v1+"/keys", ""); r.status != http.StatusOK {
		t.Errorf("no token after a minute: %d", r.status)
	}
}

func TestClientID(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	if got := clientID(r); got != "ip:192.0.2.7" {
		t.Errorf("without TLS: %q", got)
	}
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{
		Subject:  pkix.Name{CommonName: "ops"},
		DNSNames: []string{"ops.example.com"},
	}}}
	if got := clientID(r); got != "tls:CN=ops (DNS:ops.example.com)" {
		t.Errorf("with a client certificate: %q", got)
	}
}

func TestRetrySeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]int{
		time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, time.Minute: 60, 1 << 62: 86400,
	} {
		if got := retrySeconds(d); got != want {
			t.Errorf("retrySeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

package admin

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest/observer"

	"github.com/ratewarden/ratewarden/control"
)

// auditEvent is one observed audit line's fields.
type auditEvent struct {
	Action    string          `json:"action"`
	Object    string          `json:"object"`
	RequestID string          `json:"request_id"`
	Actor     control.Actor   `json:"actor"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
	raw       string
}

func auditEvents(t testing.TB, logs *observer.ObservedLogs) []auditEvent {
	t.Helper()
	var out []auditEvent
	for _, e := range logs.All() {
		raw, err := json.Marshal(e.ContextMap())
		if err != nil {
			t.Fatal(err)
		}
		var ev auditEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		ev.raw = string(raw)
		out = append(out, ev)
	}
	return out
}

var hexHash = regexp.MustCompile(`[0-9a-f]{64}`)

// TestAudit makes every kind of change and checks its one audit event:
// action, object, actor, request ID, and that no secret or secret hash is
// in it. Reads are not audited.
func TestAudit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{Limit: 1000, Burst: 1000})
	created := h.createKey(t, `{"name":"audited"}`)
	id := created.Key.ID
	aliceHash := testKeyHash("api", "alice")
	steps := []struct {
		method, path, body string
		action, object     string
		before, after      bool
	}{
		{"GET", "/keys", "", "", "", false, false},
		{"POST", "/keys/" + id + "/rotate", `{"grace":"1h"}`, control.ActionKeyRotated, "api_key:" + id, true, true},
		{"POST", "/keys/" + id + "/revoke", "", control.ActionKeyRevoked, "api_key:" + id, true, true},
		{"DELETE", "/keys/" + id, "", control.ActionKeyDeleted, "api_key:" + id, true, false},
		{"PUT", "/zones/api/override", `{"limit":9}`, control.ActionOverrideSet, "zone_override:api", false, true},
		{"DELETE", "/zones/api/override", "", control.ActionOverrideRemoved, "zone_override:api", true, false},
		{"PUT", "/zones/api/keys/override", `{"key":"alice","limit":2}`, control.ActionOverrideSet, "key_override:api/" + aliceHash, false, true},
		{"DELETE", "/zones/api/keys/override?key=alice", "", control.ActionOverrideRemoved, "key_override:api/" + aliceHash, true, false},
		{"DELETE", "/zones/api/keys?key=alice", "", control.ActionKeyReset, "key:api/" + aliceHash, true, false},
		{"POST", "/import", `{"version":1}`, control.ActionImport, "import", false, true},
		{"PUT", "/zones/api/override", `{"limit":"bad"}`, "", "", false, false},
	}
	evs := auditEvents(t, h.audit)
	if len(evs) != 1 || evs[0].Action != control.ActionKeyCreated || evs[0].Object != "api_key:"+id || string(evs[0].Before) != "null" {
		t.Fatalf("create: events %+v", evs)
	}
	for _, s := range steps {
		n := h.audit.Len()
		r := h.do(s.method, v1+s.path, s.body, "X-Request-ID", "req-"+s.method+s.path)
		evs := auditEvents(t, h.audit)[n:]
		if s.action == "" {
			if len(evs) != 0 {
				t.Errorf("%s %s (%d) was audited: %+v", s.method, s.path, r.status, evs)
			}
			continue
		}
		if r.status >= 300 || len(evs) != 1 {
			t.Fatalf("%s %s: status %d, %d events", s.method, s.path, r.status, len(evs))
		}
		ev := evs[0]
		if ev.Action != s.action || ev.Object != s.object || ev.RequestID != "req-"+s.method+s.path {
			t.Errorf("%s %s: event %+v", s.method, s.path, ev)
		}
		if ev.Actor.RemoteAddr != "192.0.2.1:1234" || ev.Actor.System {
			t.Errorf("%s %s: actor %+v", s.method, s.path, ev.Actor)
		}
		if (string(ev.Before) != "null") != s.before || (string(ev.After) != "null") != s.after {
			t.Errorf("%s %s: before %s, after %s", s.method, s.path, ev.Before, ev.After)
		}
	}
	for _, ev := range auditEvents(t, h.audit) {
		if strings.Contains(ev.raw, "rwk_") || strings.Contains(ev.raw, created.Secret) || hexHash.MatchString(ev.raw) {
			t.Errorf("audit event holds a secret or a secret hash: %s", ev.raw)
		}
	}
}

// TestRequestID pins the X-Request-ID rules: a usable one is echoed in the
// header and in problems, anything else is replaced by a random id.
func TestRequestID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{})
	for _, c := range []struct{ sent, want string }{
		{"abc-123", "abc-123"},
		{"", ""},
		{"has space", ""},
		{strings.Repeat("x", maxRequestIDLen+1), ""},
		{"caf\u00e9", ""},
	} {
		r := h.do("GET", v1+"/zones/nope", "", "X-Request-ID", c.sent)
		got := r.header.Get("X-Request-ID")
		p := r.problem(t, http.StatusNotFound)
		switch {
		case c.want != "" && got != c.want:
			t.Errorf("sent %q: got %q", c.sent, got)
		case c.want == "" && !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got):
			t.Errorf("sent %q: got %q, want a random id", c.sent, got)
		}
		if p.RequestID != got {
			t.Errorf("problem request_id %q, header %q", p.RequestID, got)
		}
	}
	a := h.do("GET", v1+"/version", "").header.Get("X-Request-ID")
	b := h.do("GET", v1+"/version", "").header.Get("X-Request-ID")
	if a == b {
		t.Error("two requests got the same random id")
	}
}

// TestSecretOnlyInIssuingResponses checks every read after a create and a
// rotation: none holds a secret.
func TestSecretOnlyInIssuingResponses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{})
	k := h.createKey(t, `{"name":"s"}`)
	var rot issuedKey
	h.do("POST", v1+"/keys/"+k.Key.ID+"/rotate", "").json(t, &rot)
	for _, path := range []string{"/keys", "/keys/" + k.Key.ID, "/export", "/overrides", "/zones"} {
		body := string(h.do("GET", v1+path, "").body)
		if strings.Contains(body, "rwk_") || strings.Contains(body, k.Secret) || strings.Contains(body, rot.Secret) {
			t.Errorf("GET %s holds a secret: %s", path, body)
		}
	}
}

// TestAuditActorOverMutualTLS checks that a client certificate's identity
// reaches the audit log.
func TestAuditActorOverMutualTLS(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{})
	req := httptest.NewRequest("POST", v1+"/keys", strings.NewReader(`{"name":"tls"}`))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "198.51.100.9:443"
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{
		Subject: pkix.Name{CommonName: "ops", Organization: []string{"Example"}},
		URIs:    []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/ops"}},
	}}}
	rec := httptest.NewRecorder()
	h.mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	evs := auditEvents(t, h.audit)
	want := control.Actor{RemoteAddr: "198.51.100.9:443", TLSIdentity: "CN=ops,O=Example (URI:spiffe://example.org/ops)"}
	if len(evs) != 1 || evs[0].Actor != want {
		t.Errorf("events %+v, want actor %+v", evs, want)
	}
}

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// auditSite has one zone to override, reset and key-override.
const auditSite = `rate_limit {
	zone audited {
		key {header.X-Client}
		events 5
		window 1m
	}
}
respond "ok"`

// auditWant is the audit line one change must produce.
type auditWant struct {
	requestID      string
	action, object string
	// check judges before and after (nil when JSON null).
	check func(before, after map[string]any) error
}

// makeAuditedChanges makes one change of every audited kind through the
// admin API, some with an X-Request-ID of the client's and some without,
// plus refused changes that must leave no trace, and returns the audit
// lines they must produce, in order.
func makeAuditedChanges(t *testing.T, c *Caddy) []auditWant {
	a := newAdminAPI(t, c)
	var wants []auditWant
	// note records the line a change must produce, under the request ID
	// the response carries.
	note := func(r adminReply, sentID, action, object string, check func(before, after map[string]any) error) {
		t.Helper()
		id := r.Header.Get("X-Request-ID")
		if sentID != "" && id != sentID {
			t.Errorf("%s %s: X-Request-ID %q, sent %q", r.Method, r.Path, id, sentID)
		}
		wants = append(wants, auditWant{requestID: id, action: action, object: object, check: check})
	}

	r := a.call(t, http.StatusCreated, "POST", "/keys", `{"name":"audited","tier":"gold"}`, "X-Request-ID", "audit-create-1")
	var k issuedKey
	r.decode(t, &k)
	id := k.Key.ID
	note(r, "audit-create-1", "key.created", "api_key:"+id, func(b, a map[string]any) error {
		return checksOK(viewNull(b), viewField(a, "id", id), viewField(a, "name", "audited"), viewField(a, "status", "active"))
	})

	r = a.call(t, http.StatusOK, "POST", "/keys/"+id+"/rotate", `{"grace":"1h"}`)
	note(r, "", "key.rotated", "api_key:"+id, func(b, a map[string]any) error {
		return checksOK(viewField(b, "id", id), viewLacks(b, "rotated_at"), viewHas(a, "rotated_at"), viewHas(a, "grace_until"))
	})

	r = a.call(t, http.StatusOK, "PUT", "/zones/audited/override", `{"limit":9}`, "X-Request-ID", "audit-override-1")
	note(r, "audit-override-1", "override.set", "zone_override:audited", func(b, a map[string]any) error {
		return checksOK(viewNull(b), viewField(a, "zone", "audited"), viewField(a, "limit", 9.0))
	})
	r = a.call(t, http.StatusOK, "PUT", "/zones/audited/override", `{"limit":10,"mode":"shadow"}`)
	note(r, "", "override.set", "zone_override:audited", func(b, a map[string]any) error {
		return checksOK(viewField(b, "limit", 9.0), viewField(a, "limit", 10.0), viewField(a, "mode", "shadow"))
	})

	var kov struct {
		KeyHash string `json:"key_hash"`
	}
	r = a.call(t, http.StatusOK, "PUT", "/zones/audited/keys/override?key=client-1", `{"limit":3}`, "X-Request-ID", "audit-key-override")
	r.decode(t, &kov)
	note(r, "audit-key-override", "override.set", "key_override:audited/"+kov.KeyHash, func(b, a map[string]any) error {
		return checksOK(viewNull(b), viewField(a, "key_hash", kov.KeyHash), viewField(a, "limit", 3.0))
	})

	c.expectStatuses(t, "/", []int{200, 200}, "X-Client", "client-1")
	r = a.call(t, http.StatusOK, "DELETE", "/zones/audited/keys?key=client-1", nil, "X-Request-ID", "audit-reset")
	note(r, "audit-reset", "key.reset", "key:audited/"+kov.KeyHash, func(b, a map[string]any) error {
		return checksOK(viewNull(a), viewField(b, "key_hash", kov.KeyHash), viewField(b, "limit", 3.0), viewField(b, "remaining", 1.0))
	})

	r = a.call(t, http.StatusNoContent, "DELETE", "/zones/audited/keys/override?key=client-1", nil)
	note(r, "", "override.removed", "key_override:audited/"+kov.KeyHash, func(b, a map[string]any) error {
		return checksOK(viewNull(a), viewField(b, "limit", 3.0))
	})
	r = a.call(t, http.StatusNoContent, "DELETE", "/zones/audited/override", nil, "X-Request-ID", "audit-override-rm")
	note(r, "audit-override-rm", "override.removed", "zone_override:audited", func(b, a map[string]any) error {
		return checksOK(viewNull(a), viewField(b, "limit", 10.0))
	})

	r = a.call(t, http.StatusOK, "POST", "/keys/"+id+"/revoke", nil, "X-Request-ID", "audit-revoke")
	note(r, "audit-revoke", "key.revoked", "api_key:"+id, func(b, a map[string]any) error {
		return checksOK(viewField(b, "status", "active"), viewField(a, "status", "revoked"), viewHas(a, "revoked_at"))
	})

	// Refused changes are not audited.
	a.call(t, http.StatusConflict, "POST", "/keys/"+id+"/revoke", nil)
	a.call(t, http.StatusNotFound, "DELETE", "/zones/audited/override", nil)
	a.call(t, http.StatusBadRequest, "PUT", "/zones/audited/override", `{"limit":0}`)

	exp := a.call(t, http.StatusOK, "GET", "/export", nil)
	var doc map[string]any
	exp.decode(t, &doc)
	doc["zone_overrides"] = []any{map[string]any{"zone": "audited", "enabled": false, "updated_at": time.Now().UTC().Format(time.RFC3339)}}
	body, _ := json.Marshal(doc)
	r = a.call(t, http.StatusOK, "POST", "/import", body, "X-Request-ID", "audit-import")
	note(r, "audit-import", "import", "import", func(b, a map[string]any) error {
		keys, _ := a["api_keys"].(map[string]any)
		ovs, _ := a["overrides"].(map[string]any)
		return checksOK(viewNull(b), viewField(keys, "unchanged", 1.0), viewField(ovs, "created", 1.0))
	})
	return wants
}

// checkAudit matches lines (JSON, logger rate_limit.audit) to wants.
func checkAudit(t *testing.T, lines []map[string]any, wants []auditWant) {
	t.Helper()
	if len(lines) != len(wants) {
		t.Errorf("%d audit lines, want %d (one per change)", len(lines), len(wants))
	}
	byID := map[string]map[string]any{}
	for _, l := range lines {
		id, _ := l["request_id"].(string)
		if _, dup := byID[id]; dup {
			t.Errorf("two audit lines with request_id %q", id)
		}
		byID[id] = l
	}
	for _, w := range wants {
		l, ok := byID[w.requestID]
		if !ok {
			t.Errorf("no audit line for %s %s (request_id %q)", w.action, w.object, w.requestID)
			continue
		}
		if l["logger"] != "rate_limit.audit" || l["level"] != "info" {
			t.Errorf("%s: logger %v, level %v", w.action, l["logger"], l["level"])
		}
		if l["action"] != w.action || l["object"] != w.object {
			t.Errorf("request %s: action %v object %v, want %s %s", w.requestID, l["action"], l["object"], w.action, w.object)
		}
		actor, _ := l["actor"].(map[string]any)
		addr, _ := actor["remote_addr"].(string)
		if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "" || port == "0" {
			t.Errorf("%s: actor.remote_addr %q, want 127.0.0.1:<port>", w.action, addr)
		}
		before, bok := l["before"]
		after, aok := l["after"]
		if !bok || !aok {
			t.Errorf("%s: before or after missing: %v", w.action, l)
			continue
		}
		bm, _ := before.(map[string]any)
		am, _ := after.(map[string]any)
		if err := w.check(bm, am); err != nil {
			t.Errorf("%s (request %s): %v\nline: %v", w.action, w.requestID, err, l)
		}
		for _, side := range []map[string]any{bm, am} {
			for _, f := range []string{"secret", "secrets", "hash"} {
				if _, ok := side[f]; ok {
					t.Errorf("%s: the audit line has a %q member", w.action, f)
				}
			}
		}
	}
}

// The audit logger routed to a file with the documented global option gets
// one JSON line per change, and nothing else.
func TestAdminAuditLogToFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	c := Start(t, Config{
		Global: fmt.Sprintf("log audit {\n\toutput file %s\n\tformat json\n\tinclude rate_limit.audit\n}", path),
		Site:   auditSite,
	})
	wants := makeAuditedChanges(t, c)
	var lines []map[string]any
	deadline := time.Now().Add(2 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines = jsonLines(t, b)
		if len(lines) >= len(wants) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkAudit(t, lines, wants)
	if strings.Contains(c.Log(), `"logger":"rate_limit.audit"`) {
		t.Error("audit lines also reached the default log, which the include should exclude them from")
	}
}

// Without a log of its own, the audit logger writes to Caddy's default log.
func TestAdminAuditLogInDefaultLog(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: auditSite})
	wants := makeAuditedChanges(t, c)
	var audit []map[string]any
	for _, l := range jsonLines(t, []byte(c.Log())) {
		if l["logger"] == "rate_limit.audit" {
			audit = append(audit, l)
		}
	}
	checkAudit(t, audit, wants)
}

// jsonLines parses every non-empty line of b as a JSON object.
func jsonLines(t testing.TB, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("log line is not a JSON object: %v: %.300s", err, line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// The checks of before and after views.

func checksOK(errs ...error) error {
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

func viewNull(m map[string]any) error {
	if m != nil {
		return fmt.Errorf("want null, got %v", m)
	}
	return nil
}

func viewField(m map[string]any, name string, want any) error {
	if got, ok := m[name]; !ok || got != want {
		return fmt.Errorf("%s = %v (%T), want %v (%T)", name, got, got, want, want)
	}
	return nil
}

func viewHas(m map[string]any, name string) error {
	if _, ok := m[name]; !ok {
		return fmt.Errorf("%s missing from %v", name, m)
	}
	return nil
}

func viewLacks(m map[string]any, name string) error {
	if v, ok := m[name]; ok {
		return fmt.Errorf("%s = %v, want none", name, v)
	}
	return nil
}

package integration

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// bodiesSite has one zone for overrides.
const bodiesSite = `rate_limit {
	zone guarded {
		key {header.X-Client}
		limit 10 1m
	}
}
respond "ok"`

// exportState is GET /export without its time stamp: the control state.
func exportState(t testing.TB, a *adminAPI) string {
	t.Helper()
	var doc map[string]any
	a.call(t, http.StatusOK, "GET", "/export", nil).decode(t, &doc)
	delete(doc, "exported_at")
	b, _ := json.Marshal(doc)
	return string(b)
}

// Bad request bodies of every kind are refused with the documented status
// and problem type, naming the field at fault, and change nothing.
func TestAdminBadBodies(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: bodiesSite})
	a := newAdminAPI(t, c)
	k := a.createKey(t, "existing")
	a.call(t, http.StatusOK, "PUT", "/zones/guarded/override", `{"limit":20}`)
	a.call(t, http.StatusOK, "PUT", "/zones/guarded/keys/override", `{"key":"vip","multiplier":2}`)
	before := exportState(t, a)

	// A valid document to break: the export, with one more key.
	var doc map[string]any
	a.call(t, http.StatusOK, "GET", "/export", nil).decode(t, &doc)
	keys := doc["api_keys"].([]any)
	extra := map[string]any{"id": "AAAAAAAAAAAA", "name": "imported", "created_at": "2025-01-01T00:00:00Z",
		"secrets": []any{map[string]any{"hash": strings.Repeat("ab", 32)}}}
	withDup := maps.Clone(doc)
	withDup["api_keys"] = append(slices.Clone(keys), extra, extra)
	withBadOverride := maps.Clone(doc)
	withBadOverride["api_keys"] = append(slices.Clone(keys), extra)
	withBadOverride["zone_overrides"] = []any{map[string]any{"zone": "guarded", "limit": -1, "updated_at": "2025-01-01T00:00:00Z"}}
	mustJSON := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	const (
		invalid     = "admin-invalid-request"
		malformed   = "admin-malformed-json"
		badUTF8     = "admin-invalid-utf8"
		tooLarge    = "admin-body-too-large"
		unsupported = "admin-unsupported-media-type"
	)
	pad := strings.Repeat("x", 64<<10)
	rotate := "/keys/" + k.Key.ID + "/rotate"
	for _, tc := range []struct {
		name         string
		method, path string
		contentType  string
		body         string
		status       int
		slug         string
		field        string // a JSON pointer errors[] must name ("-" for none)
	}{
		{"string for an integer", "PUT", "/zones/guarded/override", "application/json", `{"limit":"5"}`, 400, invalid, "/limit"},
		{"fraction for an integer", "PUT", "/zones/guarded/override", "application/json", `{"limit":2.5}`, 400, invalid, "/limit"},
		{"limit out of range", "PUT", "/zones/guarded/override", "application/json", `{"limit":0}`, 400, invalid, "/limit"},
		{"unknown enum value", "PUT", "/zones/guarded/override", "application/json", `{"mode":"block"}`, 400, invalid, "/mode"},
		{"unknown field", "PUT", "/zones/guarded/override", "application/json", `{"limit":5,"limti":6}`, 400, invalid, "/limti"},
		{"nothing to override", "PUT", "/zones/guarded/override", "application/json", `{"ttl":"1h"}`, 400, invalid, "/limit"},
		{"ttl and expires_at", "PUT", "/zones/guarded/override", "application/json", `{"limit":5,"ttl":"1h","expires_at":"2030-01-01T00:00:00Z"}`, 400, invalid, "-"},
		{"bad duration", "PUT", "/zones/guarded/override", "application/json", `{"limit":5,"ttl":"soon"}`, 400, invalid, "/ttl"},
		{"array for an object", "PUT", "/zones/guarded/override", "application/json", `[{"limit":5}]`, 400, invalid, ""},
		{"empty body", "PUT", "/zones/guarded/override", "application/json", ``, 400, invalid, ""},
		{"limit and multiplier", "PUT", "/zones/guarded/keys/override", "application/json", `{"key":"a","limit":5,"multiplier":2}`, 400, invalid, "-"},
		{"number for the key", "PUT", "/zones/guarded/keys/override", "application/json", `{"key":7,"limit":5}`, 400, invalid, "/key"},
		{"no key", "PUT", "/zones/guarded/keys/override", "application/json", `{"limit":5}`, 400, invalid, "/key"},
		{"number for a name", "POST", "/keys", "application/json", `{"name":5}`, 400, invalid, "/name"},
		{"blank name", "POST", "/keys", "application/json", `{"name":"   "}`, 400, invalid, "/name"},
		{"number for a label", "POST", "/keys", "application/json", `{"name":"x","labels":{"env":1}}`, 400, invalid, "/labels/env"},
		{"expiry in the past", "POST", "/keys", "application/json", `{"name":"x","expires_at":"2001-01-01T00:00:00Z"}`, 400, invalid, "/expires_at"},
		{"bad grace", "POST", rotate, "application/json", `{"grace":"forever"}`, 400, invalid, "/grace"},
		{"no url", "POST", "/explain", "application/json", `{"method":"GET"}`, 400, invalid, "/url"},
		{"bad method", "POST", "/explain", "application/json", `{"method":"G E T","url":"http://x/"}`, 400, invalid, "/method"},
		{"import of another version", "POST", "/import", "application/json", `{"version":2}`, 400, invalid, "/version"},
		{"import with a bad key id", "POST", "/import", "application/json", `{"version":1,"api_keys":[{"id":"short","name":"n","created_at":"2025-01-01T00:00:00Z","secrets":[{"hash":"00"}]}]}`, 400, invalid, "/api_keys/0/id"},
		{"import with a key twice", "POST", "/import", "application/json", mustJSON(withDup), 400, invalid, "/api_keys/" + strconv.Itoa(len(keys)+1) + "/id"},
		{"import with one bad override", "POST", "/import", "application/json", mustJSON(withBadOverride), 400, invalid, "/zone_overrides/0/limit"},
		{"truncated JSON", "PUT", "/zones/guarded/override", "application/json", `{"limit":`, 400, malformed, "-"},
		{"data after the value", "PUT", "/zones/guarded/override", "application/json", `{"limit":5} {}`, 400, malformed, "-"},
		{"not JSON", "POST", "/explain", "application/json", `method=GET`, 400, malformed, "-"},
		{"invalid UTF-8", "POST", "/keys", "application/json", "{\"name\":\"bad \xff\xfe\"}", 400, badUTF8, "-"},
		{"invalid UTF-8 in a key", "PUT", "/zones/guarded/keys/override", "application/json", "{\"key\":\"\xc3\x28\",\"limit\":5}", 400, badUTF8, "-"},
		{"body over 64 KiB", "PUT", "/zones/guarded/override", "application/json", `{"limit":5,"x":"` + pad + `"}`, 413, tooLarge, "-"},
		{"explain over 64 KiB", "POST", "/explain", "application/json", `{"method":"GET","url":"http://x/` + pad + `"}`, 413, tooLarge, "-"},
		{"text/plain", "PUT", "/zones/guarded/override", "text/plain", `{"limit":5}`, 415, unsupported, "-"},
		{"no content type", "POST", "/explain", "", `{"method":"GET","url":"http://x/"}`, 415, unsupported, "-"},
		{"another charset", "POST", "/keys", "application/json; charset=latin1", `{"name":"x"}`, 415, unsupported, "-"},
		{"form", "POST", "/import", "application/x-www-form-urlencoded", `version=1`, 415, unsupported, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.send(t, tc.method, tc.path, tc.contentType, []byte(tc.body))
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			p := r.problem(t)
			if p.Type != adminProblemType(tc.slug) {
				t.Errorf("type %q, want %s", p.Type, tc.slug)
			}
			switch {
			case tc.field == "-":
			case !slices.Contains(p.fields(), tc.field):
				t.Errorf("errors name %q, want %q among them: %s", p.fields(), tc.field, r.Body)
			case p.Field != p.fields()[0]:
				t.Errorf("field %q, want the first error's %q", p.Field, p.fields()[0])
			}
			if tc.status == 400 && tc.slug == invalid && len(p.Errors) == 0 {
				t.Errorf("a 400 without errors: %s", r.Body)
			}
			if bytes.Contains(r.Body, []byte(pad[:100])) {
				t.Error("the problem repeats the body")
			}
		})
	}
	if after := exportState(t, a); after != before {
		t.Errorf("bad bodies changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

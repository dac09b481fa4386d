package admin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// fuzzBody fuzzes the body of one endpoint through the whole router. Every
// answer must match the OpenAPI document (harness.do checks it); a 2xx
// answer means the body passed schema validation; any other answer is a
// problem+json of its status. A panic fails the target.
func fuzzBody(f *testing.F, method, path string, each func(h *harness), seeds ...string) {
	h := newHarness(f, limitOptions{Limit: rate.Inf})
	path = strings.ReplaceAll(path, "{id}", h.createKey(f, `{"name":"fuzz"}`).Key.ID)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if each != nil {
			each(h)
		}
		r := h.doT(t, method, path, string(body))
		if r.status < 300 {
			if err := h.v.ValidateRequest(r.req, body); err != nil {
				t.Fatalf("answered %d to a body the schema refuses: %v\nbody: %q", r.status, err, body)
			}
			return
		}
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("status %d with content type %q: %s", r.status, ct, r.body)
		}
		var p problem
		if err := json.Unmarshal(r.body, &p); err != nil || p.Status != r.status || !strings.HasPrefix(p.Type, problemBase) {
			t.Fatalf("status %d with body %s (%v)", r.status, r.body, err)
		}
	})
}

func FuzzZoneOverrideBody(f *testing.F) {
	fuzzBody(f, "PUT", v1+"/zones/api/override", nil,
		`{"limit":5}`, `{"limit":5,"burst":0,"mode":"shadow","enabled":true,"ttl":"1h30m"}`,
		`{"enabled":false,"expires_at":"2031-01-01T00:00:00Z"}`, `{"limit":5,"ttl":"1h","expires_at":"2031-01-01T00:00:00Z"}`,
		`{"limit":1e3}`, `{"limit":-1}`, `{"limit":9007199254740992}`, `{"ttl":"0s","limit":1}`, `{"ttl":"9999999h","limit":1}`,
		`{}`, `[]`, `null`, `{"limit":"5"}`, `{"mode":"x"}`, `{"Limit":5}`, "{\"limit\":5,\"\xff\":1}")
}

func FuzzKeyOverrideBody(f *testing.F) {
	fuzzBody(f, "PUT", v1+"/zones/api/keys/override", nil,
		`{"key":"alice","limit":5}`, `{"key":"bob","multiplier":0.5,"burst":3,"ttl":"10m"}`,
		`{"key":"k","limit":1,"multiplier":2}`, `{"key":"k"}`, `{"limit":2}`, `{"key":"","limit":2}`,
		`{"key":"k","multiplier":1000001}`, `{"key":"k","multiplier":1e-300}`, `{"key":"k","limit":2,"expires_at":"2000-01-01T00:00:00Z"}`)
}

func FuzzCreateKeyBody(f *testing.F) {
	fuzzBody(f, "POST", v1+"/keys", nil,
		`{"name":"ci"}`, `{"name":"ci","owner":"ops","tier":"gold","labels":{"team":"a"},"expires_at":"2031-01-01T00:00:00Z"}`,
		`{"name":" "}`, `{"name":"\u3000"}`, `{"name":"x","labels":{"":"a"}}`, `{"name":"x","expires_at":"2030-01-02T03:04:05Z"}`,
		`{"name":"x","expires_at":"2031-02-29T00:00:00Z"}`, `{"name":"x","expires_at":"2031-01-01T00:00:60Z"}`, `{"name":1}`)
}

func FuzzRotateBody(f *testing.F) {
	// The backend's clock moves a long way per input, so that old secrets
	// leave the key instead of piling up.
	each := func(h *harness) { h.fb.elapsed.Add(int64(1000 * time.Hour)) }
	fuzzBody(f, "POST", v1+"/keys/{id}/rotate", each,
		``, `{}`, `{"grace":"24h"}`, `{"grace":"0s"}`, `{"grace":"1.5h"}`, `{"grace":"99999999999h"}`,
		`{"grace":""}`, `{"grace":24}`, `{"grace":"-1h"}`, `{"other":1}`)
}

func FuzzExplainBody(f *testing.F) {
	fuzzBody(f, "POST", v1+"/explain", nil,
		`{"method":"GET","url":"https://example.com/v1/items"}`,
		`{"method":"POST","url":"https://example.com/","headers":{"X-API-Key":["rwk_x"]},"remote_addr":"203.0.113.7:1","server":"srv0"}`,
		`{"method":"GET","url":"https://example.com/","server":"nope"}`, `{"method":"G T","url":"x"}`, `{"url":"x"}`)
}

func FuzzImportBody(f *testing.F) {
	fuzzBody(f, "POST", v1+"/import", nil,
		`{"version":1}`, exportDoc, `{"version":1,"api_keys":[],"zone_overrides":[],"key_overrides":[]}`,
		`{"version":2}`, `{"version":1,"zone_overrides":[{"zone":"api","updated_at":"2030-01-01T00:00:00Z"}]}`,
		`{"version":1,"zone_overrides":[{"zone":"a","limit":1,"updated_at":"2030-01-01T00:00:00Z"},{"zone":"a","limit":2,"updated_at":"2030-01-01T00:00:00Z"}]}`,
		`{"version":1,"api_keys":[{"id":"AbCdEfGhIjKl","name":"n","created_at":"2030-01-01T00:00:00Z","secrets":[{"hash":"`+strings.Repeat("A", 64)+`"}]}]}`)
}

package admin

import (
	"net/http"
	"strings"
	"testing"
)

// bodyEndpoints are the endpoints that take a body, each with a valid one.
var bodyEndpoints = []struct {
	name, method, path, valid string
	max                       int
}{
	{"zone override", "PUT", v1 + "/zones/api/override", `{"limit":5}`, maxBody},
	{"key override", "PUT", v1 + "/zones/api/keys/override", `{"key":"k","limit":5}`, maxBody},
	{"create key", "POST", v1 + "/keys", `{"name":"ci"}`, maxBody},
	{"rotate", "POST", v1 + "/keys/AbCdEfGhIjKl/rotate", `{"grace":"1h"}`, maxBody},
	{"explain", "POST", v1 + "/explain", `{"method":"GET","url":"https://example.com/"}`, maxBody},
	{"import", "POST", v1 + "/import", `{"version":1}`, maxImportBody},
}

// TestBadBodies sends every body endpoint bodies it must refuse, and
// checks that the refusal is problem+json naming the fault, and that the
// backend was not called and no record changed.
func TestBadBodies(t *testing.T) {
	t.Parallel()
	type bad struct {
		name        string
		body        string
		contentType string
		status      int
		slug        string
		field       string // "" when the problem names no field
	}
	for _, ep := range bodyEndpoints {
		cases := []bad{
			{"wrong content type", ep.valid, "text/plain", 415, slugUnsupportedMedia, ""},
			{"json with another charset", ep.valid, "application/json; charset=latin1", 415, slugUnsupportedMedia, ""},
			{"no content type", ep.valid, "-", 415, slugUnsupportedMedia, ""},
			{"invalid UTF-8", `{"name":"` + "\xff\xfe" + `"}`, "", 400, slugInvalidUTF8, ""},
			{"malformed JSON", `{"limit":`, "", 400, slugMalformedJSON, ""},
			{"data after the value", ep.valid + ` {}`, "", 400, slugMalformedJSON, ""},
			{"huge body", `{"x":"` + strings.Repeat("a", ep.max) + `"}`, "", 413, slugBodyTooLarge, ""},
			{"not an object", `[1,2]`, "", 400, slugInvalidRequest, ""},
			{"unknown field", ep.valid[:len(ep.valid)-1] + `,"surprise":true}`, "", 400, slugInvalidRequest, "/surprise"},
			{"field in another case", ep.valid[:len(ep.valid)-1] + `,"LIMIT":1}`, "", 400, slugInvalidRequest, "/LIMIT"},
		}
		if ep.name != "rotate" {
			cases = append(cases, bad{"empty body", "", "", 400, slugInvalidRequest, ""})
		}
		switch ep.name {
		case "zone override":
			cases = append(cases,
				bad{"limit of the wrong type", `{"limit":"5"}`, "", 400, slugInvalidRequest, "/limit"},
				bad{"limit with a fraction", `{"limit":5.5}`, "", 400, slugInvalidRequest, "/limit"},
				bad{"limit below 1", `{"limit":0}`, "", 400, slugInvalidRequest, "/limit"},
				bad{"limit out of range", `{"limit":1e300}`, "", 400, slugInvalidRequest, "/limit"},
				bad{"bad mode", `{"mode":"off"}`, "", 400, slugInvalidRequest, "/mode"},
				bad{"enabled as a string", `{"enabled":"false"}`, "", 400, slugInvalidRequest, "/enabled"},
				bad{"changes nothing", `{"ttl":"1h"}`, "", 400, slugInvalidRequest, "/limit"},
				bad{"ttl and expires_at", `{"limit":1,"ttl":"1h","expires_at":"2031-01-01T00:00:00Z"}`, "", 400, slugInvalidRequest, "/ttl"},
				bad{"ttl not a duration", `{"limit":1,"ttl":"soon"}`, "", 400, slugInvalidRequest, "/ttl"},
				bad{"zero ttl", `{"limit":1,"ttl":"0s"}`, "", 400, slugInvalidRequest, "/ttl"},
				bad{"expires_at not a time", `{"limit":1,"expires_at":"tomorrow"}`, "", 400, slugInvalidRequest, "/expires_at"},
			)
		case "key override":
			cases = append(cases,
				bad{"both limit and multiplier", `{"key":"k","limit":1,"multiplier":2}`, "", 400, slugInvalidRequest, "/multiplier"},
				bad{"neither limit nor multiplier", `{"key":"k","burst":2}`, "", 400, slugInvalidRequest, "/limit"},
				bad{"multiplier of zero", `{"key":"k","multiplier":0}`, "", 400, slugInvalidRequest, "/multiplier"},
				bad{"key of the wrong type", `{"key":7,"limit":1}`, "", 400, slugInvalidRequest, "/key"},
				bad{"empty key", `{"key":"","limit":1}`, "", 400, slugInvalidRequest, "/key"},
			)
		case "create key":
			cases = append(cases,
				bad{"blank name", `{"name":"   "}`, "", 400, slugInvalidRequest, "/name"},
				bad{"no name", `{"owner":"x"}`, "", 400, slugInvalidRequest, "/name"},
				bad{"label of the wrong type", `{"name":"x","labels":{"a":1}}`, "", 400, slugInvalidRequest, "/labels/a"},
				bad{"expiry in the past", `{"name":"x","expires_at":"2000-01-01T00:00:00Z"}`, "", 400, slugInvalidRequest, "/expires_at"},
			)
		case "rotate":
			cases = append(cases,
				bad{"grace of the wrong type", `{"grace":24}`, "", 400, slugInvalidRequest, "/grace"},
				bad{"grace not a duration", `{"grace":"-1h"}`, "", 400, slugInvalidRequest, "/grace"},
			)
		case "explain":
			cases = append(cases,
				bad{"no url", `{"method":"GET"}`, "", 400, slugInvalidRequest, "/url"},
				bad{"headers of the wrong shape", `{"method":"GET","url":"https://e/","headers":{"a":"b"}}`, "", 400, slugInvalidRequest, "/headers/a"},
			)
		case "import":
			cases = append(cases,
				bad{"wrong version", `{"version":2}`, "", 400, slugInvalidRequest, "/version"},
				bad{"bad key id", `{"version":1,"api_keys":[{"id":"x","name":"n","created_at":"2030-01-01T00:00:00Z","secrets":[{"hash":"` + strings.Repeat("a", 64) + `"}]}]}`, "", 400, slugInvalidRequest, "/api_keys/0/id"},
				bad{"a valid key and a bad override", `{"version":1,"api_keys":[{"id":"AbCdEfGhIjKl","name":"n","created_at":"2030-01-01T00:00:00Z","secrets":[{"hash":"` + strings.Repeat("a", 64) + `"}]}],"key_overrides":[{"zone":"api","key_hash":"00","limit":1,"updated_at":"2030-01-01T00:00:00Z"}]}`, "", 400, slugInvalidRequest, "/key_overrides/0/key_hash"},
			)
		}
		for _, c := range cases {
			t.Run(ep.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, limitOptions{Limit: 1000, Burst: 1000})
				before := h.fb.recs.snapshot()
				var header []string
				switch c.contentType {
				case "":
				case "-":
					header = []string{"Content-Type", ""}
				default:
					header = []string{"Content-Type", c.contentType}
				}
				r := h.do(ep.method, ep.path, c.body, header...)
				p := r.problem(t, c.status)
				if p.Type != problemBase+c.slug {
					t.Errorf("type %q, want slug %s", p.Type, c.slug)
				}
				if c.field != "" {
					if p.Field == nil || *p.Field != c.field || !strings.Contains(p.Detail, c.field) {
						t.Errorf("problem names %v (detail %q), want %s", p.Field, p.Detail, c.field)
					}
					found := false
					for _, e := range p.Errors {
						found = found || e.Field != nil && *e.Field == c.field
					}
					if !found {
						t.Errorf("errors %+v do not name %s", p.Errors, c.field)
					}
				}
				// Only control knows that an expiry must be in the future;
				// every other refusal happens before the backend is called.
				if c.name != "expiry in the past" && h.fb.callCount() != 0 {
					t.Errorf("the backend was called: %v", h.fb.calls)
				}
				if h.fb.recs.snapshot() != before {
					t.Error("a refused request changed records")
				}
			})
		}
	}
}

// TestErrorsNeverEchoSecrets sends secret-looking values in fields that
// fail validation: no problem may quote them.
func TestErrorsNeverEchoSecrets(t *testing.T) {
	t.Parallel()
	const token = "rwk_AbCdEfGhIjKl_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG123456"
	for _, c := range []struct{ method, path, body string }{
		{"POST", v1 + "/keys", `{"name":"x","expires_at":"` + token + `"}`},
		{"POST", v1 + "/keys", `{"name":"x","owner":"` + token + strings.Repeat("x", 200) + `"}`},
		{"POST", v1 + "/keys", `{"name":"x","` + token + `":1}`},
		{"POST", v1 + "/explain", `{"method":"` + token + `","url":"https://e/"}`},
		{"PUT", v1 + "/zones/api/keys/override", `{"key":"` + token + `","limit":"x"}`},
		{"PUT", v1 + "/zones/api/override", `{"limit":1,"ttl":"` + token + `"}`},
		{"POST", v1 + "/keys/AbCdEfGhIjKl/rotate", `{"grace":"` + token + `"}`},
		{"POST", v1 + "/import", `{"version":1,"api_keys":[{"id":"` + token + `"}]}`},
		{"GET", v1 + "/zones/nope/keys?key=" + token, ""},
	} {
		h := newHarness(t, limitOptions{})
		r := h.do(c.method, c.path, c.body)
		if r.status < 400 {
			t.Errorf("%s %s: status %d", c.method, c.path, r.status)
		}
		if strings.Contains(string(r.body), "AbCdEfGhIjKl_0123") {
			t.Errorf("%s %s %s: the problem quotes the token: %s", c.method, c.path, c.body, r.body)
		}
	}
}

// TestHugeImportWithinItsLimit checks that /import takes bodies larger
// than 64 KiB.
func TestHugeImportWithinItsLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{})
	pad := strings.Repeat(" ", 2*maxBody)
	r := h.do(http.MethodPost, v1+"/import", `{"version":1,`+pad+`"api_keys":[]}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
}

// TestEveryFaultIsNamed checks that a body with several faults gets one
// errors entry per fault.
func TestEveryFaultIsNamed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, limitOptions{})
	for _, c := range []struct {
		path, body string
		want       []string
	}{
		{v1 + "/explain", `{}`, []string{"/method", "/url"}},
		{v1 + "/explain", `{"method":"GET","url":"u","a":1,"b":2}`, []string{"/a", "/b"}},
		{v1 + "/keys", `{"name":1,"owner":2,"labels":[]}`, []string{"/name", "/owner", "/labels"}},
	} {
		p := h.do("POST", c.path, c.body).problem(t, http.StatusBadRequest)
		got := map[string]bool{}
		for _, e := range p.Errors {
			if e.Field != nil {
				got[*e.Field] = true
			}
		}
		for _, f := range c.want {
			if !got[f] || !strings.Contains(p.Detail, f) {
				t.Errorf("%s %s: %s not named in %+v", c.path, c.body, f, p)
			}
		}
	}
}

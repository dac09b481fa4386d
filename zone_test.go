package ratewarden

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestProvisionErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		zone    string // zone JSON fields; the zone is named z
		handler string // handler JSON fields
		parts   []string
	}{
		{"jitter out of range", `"max_events":1,"window":"1m"`, `"jitter":1.5`, []string{"jitter must be between 0 and 1"}},
		{"unknown headers mode", `"max_events":1,"window":"1m"`, `"headers":["loud"]`, []string{`unknown mode "loud"`}},
		{"bad log_level", `"max_events":1,"window":"1m"`, `"log_level":"fatal"`, []string{`log_level must be debug, info, warn or error, got "fatal"`}},
		{"unknown store", `"max_events":1,"window":"1m"`, `"store":"nope"`, []string{`no rate_limit store named "nope"`, "default"}},
		{"bad exempt range", `"max_events":1,"window":"1m"`, `"exempt":{"ranges":["10.0.0.0/40"]}`, []string{`exempt range "10.0.0.0/40"`}},
		{"unknown exempt matcher", `"max_events":1,"window":"1m"`, `"exempt":{"match":[{"nosuch":{}}]}`, []string{"loading exempt matchers"}},
		{"handler prefix out of range", `"max_events":1,"window":"1m"`, `"ipv4_prefix":33`, []string{`zone "z"`, "ipv4_prefix must be between 1 and 32"}},
		{"no max_events", `"window":"1m"`, ``, []string{`zone "z"`, "max_events must be greater than zero"}},
		{"no window", `"max_events":1`, ``, []string{"window must be greater than zero"}},
		{"unknown algorithm", `"algorithm":"leaky","max_events":1,"window":"1m"`, ``, []string{`unknown algorithm "leaky"`}},
		{"negative burst", `"algorithm":"gcra","burst":-1,"max_events":1,"window":"1m"`, ``, []string{"burst must not be negative"}},
		{"negative cost", `"cost":-2,"max_events":1,"window":"1m"`, ``, []string{"cost must not be negative"}},
		{"count_if with concurrency", `"algorithm":"concurrency","max_events":1,"count_if":{"status_code":[500]}`, ``, []string{"count_if cannot be used with the concurrency algorithm"}},
		{"key and key_expression", `"key":"a","key_expression":"\"b\"","max_events":1,"window":"1m"`, ``, []string{"key and key_expression are mutually exclusive"}},
		{"cost and cost_expression", `"cost":2,"cost_expression":"3","max_events":1,"window":"1m"`, ``, []string{"cost and cost_expression are mutually exclusive"}},
		{"zone ipv4_prefix out of range", `"ipv4_prefix":-1,"max_events":1,"window":"1m"`, ``, []string{"ipv4_prefix must be between 1 and 32, got -1"}},
		{"zone ipv6_prefix out of range", `"ipv6_prefix":129,"max_events":1,"window":"1m"`, ``, []string{"ipv6_prefix must be between 1 and 128, got 129"}},
		{"key_expression of the wrong type", `"key_expression":"1","max_events":1,"window":"1m"`, ``, []string{"key_expression:", "want string"}},
		{"cost_expression syntax error", `"cost_expression":"1 +","max_events":1,"window":"1m"`, ``, []string{"cost_expression:", "compiling CEL expression"}},
		{"unknown matcher", `"match":[{"nosuch":{}}],"max_events":1,"window":"1m"`, ``, []string{"loading matchers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			js := `{"rate_limits":{"z":{` + tc.zone + `}}`
			if tc.handler != "" {
				js += "," + tc.handler
			}
			h := new(Handler)
			if err := json.Unmarshal([]byte(js+"}"), h); err != nil {
				t.Fatal(err)
			}
			wantErr(t, h.Provision(newTestContext(t, "")), tc.parts...)
		})
	}
	t.Run("empty zone", func(t *testing.T) {
		t.Parallel()
		h := &Handler{RateLimits: map[string]*Zone{"z": nil}}
		wantErr(t, h.Provision(newTestContext(t, "")), `zone "z": empty definition`)
	})
}

func TestZoneDefaults(t *testing.T) {
	t.Parallel()
	name := uniq("defaults")
	h := provisionHandler(t, &Handler{
		RateLimits: map[string]*Zone{
			name:        {MaxEvents: 3, Window: caddy.Duration(1500 * time.Millisecond)},
			name + "_c": {Algorithm: "concurrency", MaxEvents: 2},
		},
		Shadow: true, LogKey: true, IPv4Prefix: 24, IPv6Prefix: 56,
	})
	z := zoneNamed(t, h, name)
	if z.Algorithm != "sliding_log" || z.Cost != 1 {
		t.Errorf("algorithm %q, cost %d; want sliding_log and 1", z.Algorithm, z.Cost)
	}
	if !z.Shadow || !z.LogKey || z.IPv4Prefix != 24 || z.IPv6Prefix != 56 {
		t.Errorf("handler settings not inherited: %+v", z)
	}
	if want := `"` + name + `";q=3;w=2`; z.policyHeader != want {
		t.Errorf("policy %q, want %q (window rounded up to whole seconds)", z.policyHeader, want)
	}
	if c := zoneNamed(t, h, name+"_c"); c.policyHeader != `"`+name+`_c";q=2` || !c.concurrency {
		t.Errorf("concurrency policy %q: a concurrency zone has no window", c.policyHeader)
	}
	if h.zones[0].name != name || h.zones[1].name != name+"_c" {
		t.Errorf("zones not in name order: %s, %s", h.zones[0].name, h.zones[1].name)
	}
}

func TestMaskIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		v4, v6    int
		raw, want string
	}{
		{"no prefixes leave keys alone", 0, 0, "203.0.113.9", "203.0.113.9"},
		{"full prefixes leave keys alone", 32, 128, "203.0.113.9", "203.0.113.9"},
		{"IPv4 /24", 24, 0, "203.0.113.9", "203.0.113.0/24"},
		{"IPv4 /1", 1, 0, "203.0.113.9", "128.0.0.0/1"},
		{"IPv4-mapped IPv6 uses the IPv4 prefix", 24, 64, "::ffff:203.0.113.9", "203.0.113.0/24"},
		{"IPv6 /64", 0, 64, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"IPv6 without an IPv6 prefix", 24, 0, "2001:db8::1", "2001:db8::1"},
		{"IPv4 without an IPv4 prefix", 0, 64, "203.0.113.9", "203.0.113.9"},
		{"not an address", 24, 64, "alice", "alice"},
		{"address with a port is not an address", 24, 64, "203.0.113.9:80", "203.0.113.9:80"},
		{"empty", 24, 64, "", ""},
	} {
		z := &Zone{IPv4Prefix: tc.v4, IPv6Prefix: tc.v6}
		if got := z.maskIP(tc.raw); got != tc.want {
			t.Errorf("%s: maskIP(%q) = %q, want %q", tc.name, tc.raw, got, tc.want)
		}
	}
}

func TestHashKey(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300)
	distinct := [][2]string{
		{"zone", "key"}, {"zone2", "key"}, {"zone", "key2"},
		{"zo", "nekey"}, // the separator keeps zone and key apart
		{"zone", long}, {"zone", long + "y"}, {"zone", long[:299] + "y"},
		{"zone", ""},
	}
	seen := map[[16]byte][2]string{}
	for _, in := range distinct {
		k := hashKey(in[0], in[1])
		if prev, dup := seen[k]; dup {
			t.Errorf("%q and %q hash alike", prev, in)
		}
		seen[k] = in
		if hashKey(in[0], in[1]) != k {
			t.Errorf("hash of %q is not stable", in)
		}
		if s := k.String(); len(s) != 32 {
			t.Errorf("key string %q is not 16 bytes of hex", s)
		}
	}
}

func TestContainsPlaceholder(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"":                    false,
		"static":              false,
		"{remote_host}":       true,
		"user-{http.vars.id}": true,
		"{unclosed":           false,
		"closed} first":       false,
		"a{b}c":               true,
	} {
		if got := containsPlaceholder(s); got != want {
			t.Errorf("containsPlaceholder(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSFString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"api":       `"api"`,
		`a"b`:       `"a\"b"`,
		`back\sl`:   `"back\\sl"`,
		"tab\there": `"tab_here"`,
		"zoné":      `"zon__"`,
		"":          `""`,
	} {
		if got := sfString(in); got != want {
			t.Errorf("sfString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCeilSeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]int64{
		-time.Second: 0, 0: 0, 1: 1, time.Second: 1, time.Second + 1: 2, 59*time.Second + 999*time.Millisecond: 60,
	} {
		if got := ceilSeconds(d); got != want {
			t.Errorf("ceilSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestParseHeaderModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want headerMode
		err  bool
	}{
		{nil, headersIETF, false},
		{[]string{"ietf"}, headersIETF, false},
		{[]string{"legacy"}, headersLegacy, false},
		{[]string{"legacy", "ietf"}, headersIETF | headersLegacy, false},
		{[]string{"none"}, 0, false},
		{[]string{"none", "ietf"}, 0, true},
		{[]string{"IETF"}, 0, true},
	} {
		got, err := parseHeaderModes(tc.in)
		if (err != nil) != tc.err || err == nil && got != tc.want {
			t.Errorf("parseHeaderModes(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"10.0.0.0/8":    "10.0.0.0/8",
		"10.1.2.3/8":    "10.0.0.0/8", // masked
		"192.0.2.7":     "192.0.2.7/32",
		"2001:db8::/32": "2001:db8::/32",
		"::1":           "::1/128",
		"10.0.0.0/33":   "error",
		"example.com":   "error",
		"":              "error",
	} {
		p, err := parsePrefix(in)
		got := p.String()
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("parsePrefix(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestStatusRecorder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{"WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(401) }, 401},
		{"first status wins", func(w http.ResponseWriter) { w.WriteHeader(401); w.WriteHeader(500) }, 401},
		{"1xx is not the status", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(204) }, 204},
		{"Write implies 200", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")); w.WriteHeader(500) }, 200},
		{"nothing written", func(http.ResponseWriter) {}, 0},
	} {
		rec := httptest.NewRecorder()
		sr := &statusRecorder{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: rec}}
		tc.write(sr)
		if sr.status != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, sr.status, tc.want)
		}
	}
}

func TestAppStores(t *testing.T) {
	t.Parallel()
	named := uniq("store")
	ctx := newTestContext(t, "")
	app := &App{StoresRaw: map[string]json.RawMessage{named: json.RawMessage(`{"backend":"memory","max_keys":10}`)}}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if got := app.StoreNames(); len(got) != 2 || got[0] != "default" || got[1] != named {
		t.Errorf("StoreNames() = %v, want [default %s]", got, named)
	}
	if s, err := app.Store(""); err != nil || s != app.stores["default"] {
		t.Errorf(`Store("") = %v, %v; want the default store`, s, err)
	}
	_, err := app.Store("missing")
	wantErr(t, err, `no rate_limit store named "missing"`, named)
	if app.Start() != nil || app.Stop() != nil {
		t.Error("Start or Stop failed")
	}

	for _, tc := range []struct{ raw, msg string }{
		{`{"max_keys":10}`, `missing "backend"`},
		{`{"backend":"nosuch"}`, `loading store "bad"`},
		{`[1]`, `store "bad"`},
		{`{"backend":"memory","shards":"many"}`, `loading store "bad"`},
	} {
		app := &App{StoresRaw: map[string]json.RawMessage{"bad": json.RawMessage(tc.raw)}}
		wantErr(t, app.Provision(ctx), tc.msg)
	}
}

package ratewarden

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// oneZone provisions a handler with a single zone called name, whose JSON
// fields are zoneJSON (without braces), plus handler-level fields.
func oneZone(t testing.TB, name, zoneJSON, handlerJSON string) *Handler {
	t.Helper()
	js := `{"rate_limits":{%q:{` + zoneJSON + `}}`
	if handlerJSON != "" {
		js += "," + handlerJSON
	}
	return handlerFromJSON(t, js+"}", name)
}

func TestAllowThenDeny(t *testing.T) {
	t.Parallel()
	name := uniq("basic")
	h := oneZone(t, name, `"key":"static","max_events":2,"window":"1m"`, "")
	for i, wantRemaining := range []string{"1", "0"} {
		res := call{}.do(t, h)
		if !res.allowed(t) || res.code != http.StatusOK || res.body != "ok" {
			t.Fatalf("request %d: status %d, body %q", i+1, res.code, res.body)
		}
		for ph, want := range map[string]string{phExceeded: "false", phZone: name, phRemaining: wantRemaining, phRetryAfter: "0"} {
			if got := res.placeholder(ph); got != want {
				t.Errorf("request %d: {%s} = %q, want %q", i+1, ph, got, want)
			}
		}
	}

	res := call{}.do(t, h)
	if res.allowed(t) {
		t.Fatal("third request in the window was allowed")
	}
	retry, err := strconv.Atoi(res.header.Get("Retry-After"))
	if err != nil || retry < 59 || retry > 60 {
		t.Errorf("Retry-After %q, want the rest of the 1m window", res.header.Get("Retry-After"))
	}
	if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	var problem struct {
		Type, Title, Detail string
		Status              int
	}
	if err := json.Unmarshal([]byte(res.body), &problem); err != nil {
		t.Fatalf("body %q is not JSON: %v", res.body, err)
	}
	if problem.Type != ProblemRateLimited || problem.Status != 429 || problem.Title != "Too Many Requests" ||
		!strings.Contains(problem.Detail, strconv.Itoa(retry)+" seconds") {
		t.Errorf("problem %+v", problem)
	}
	for ph, want := range map[string]string{phExceeded: "true", phZone: name, phExceededName: name, phRemaining: "0", phRetryAfter: strconv.Itoa(retry)} {
		if got := res.placeholder(ph); got != want {
			t.Errorf("refused: {%s} = %q, want %q", ph, got, want)
		}
	}
}

func TestRefusalWithErrorRoutes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		srv       *caddyhttp.Server
		wantError bool
	}{
		{"error routes get a 429 HandlerError", &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}, true},
		{"errors without routes write the problem body", &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := oneZone(t, uniq("errroutes"), `"max_events":1,"window":"1m"`, "")
			c := call{srv: tc.srv}
			c.do(t, h)
			res := c.do(t, h)
			if res.next || res.header.Get("Retry-After") == "" {
				t.Fatalf("not refused with Retry-After: next %v, header %v", res.next, res.header)
			}
			var herr caddyhttp.HandlerError
			if gotErr := errors.As(res.err, &herr); gotErr != tc.wantError {
				t.Fatalf("error %v, want a HandlerError: %v", res.err, tc.wantError)
			}
			if tc.wantError {
				if herr.StatusCode != http.StatusTooManyRequests || res.body != "" {
					t.Errorf("status %d, body %q: the error route should write the response", herr.StatusCode, res.body)
				}
			} else if res.code != http.StatusTooManyRequests || !strings.Contains(res.body, ProblemRateLimited) {
				t.Errorf("status %d, body %q", res.code, res.body)
			}
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		headers string
		want    []string // header families present
	}{
		{"default is ietf", ``, []string{"ietf"}},
		{"ietf", `"headers":["ietf"]`, []string{"ietf"}},
		{"legacy", `"headers":["legacy"]`, []string{"legacy"}},
		{"both", `"headers":["ietf","legacy"]`, []string{"ietf", "legacy"}},
		{"none", `"headers":["none"]`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq(`hdr"\`)
			h := oneZone(t, name, `"max_events":3,"window":"90s"`, tc.headers)
			res := call{}.do(t, h)
			quoted := `"` + strings.NewReplacer(`"`, `\"`, `\`, `\\`).Replace(name) + `"`
			families := map[string]map[string]string{
				"ietf":   {"Ratelimit-Policy": quoted + ";q=3;w=90", "Ratelimit": quoted + ";r=2;t=90"},
				"legacy": {"X-Ratelimit-Limit": "3", "X-Ratelimit-Remaining": "2", "X-Ratelimit-Reset": "90"},
			}
			for family, hdrs := range families {
				present := strings.Contains(strings.Join(tc.want, " "), family)
				for k, v := range hdrs {
					if got := res.header.Get(k); present && got != v || !present && got != "" {
						t.Errorf("%s: %q, want %q (family %s present: %v)", k, got, v, family, present)
					}
				}
			}
		})
	}
}

// TestResetCoversTheWait: a refused request's reset is never earlier than
// its Retry-After, even when the key itself is idle (a cost above the
// limit can never be admitted).
func TestResetCoversTheWait(t *testing.T) {
	t.Parallel()
	name := uniq("reset")
	h := oneZone(t, name, `"max_events":3,"window":"1m","cost":5`, `"headers":["ietf","legacy"]`)
	res := call{}.do(t, h)
	if res.allowed(t) {
		t.Fatal("a cost above the limit was admitted")
	}
	if got, want := res.header.Get("Ratelimit"), `"`+name+`";r=3;t=60`; got != want {
		t.Errorf("Ratelimit %q, want %q", got, want)
	}
	if got := res.header.Get("X-Ratelimit-Reset"); got != "60" || res.header.Get("Retry-After") != "60" {
		t.Errorf("X-Ratelimit-Reset %q, Retry-After %q; want 60", got, res.header.Get("Retry-After"))
	}
}

func TestHeadersShowTheMostRestrictiveZone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		zones    [2]string // JSON of zones a and b
		requests int
		want     string // "a" or "b": the zone the headers report
		refused  bool
	}{
		{"least remaining", [2]string{`"max_events":10,"window":"1m"`, `"max_events":2,"window":"30s"`}, 1, "b", false},
		{"equal remaining: longest reset", [2]string{`"max_events":2,"window":"50s"`, `"max_events":2,"window":"10s"`}, 1, "a", false},
		{"refused: longest wait", [2]string{`"max_events":1,"window":"10s"`, `"max_events":1,"window":"40s"`}, 2, "b", true},
		{"a shadow zone is never shown", [2]string{`"max_events":1,"window":"1m","shadow":true`, `"max_events":9,"window":"1m"`}, 2, "b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := uniq("a"), uniq("b")
			h := handlerFromJSON(t, `{"rate_limits":{%q:{`+tc.zones[0]+`},%q:{`+tc.zones[1]+`}}}`, a, b)
			var res result
			for range tc.requests {
				res = call{}.do(t, h)
			}
			if res.allowed(t) == tc.refused {
				t.Fatalf("refused = %v, want %v", !res.next, tc.refused)
			}
			want := map[string]string{"a": a, "b": b}[tc.want]
			if got := res.header.Get("Ratelimit"); !strings.HasPrefix(got, `"`+want+`";`) {
				t.Errorf("Ratelimit %q, want zone %s", got, want)
			}
			if got := res.placeholder(phZone); got != want {
				t.Errorf("{%s} = %q, want %q", phZone, got, want)
			}
		})
	}
}

func TestShadow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, zone, handler string }{
		{"shadow zone", `"max_events":1,"window":"1m","shadow":true`, ``},
		{"handler-level shadow", `"max_events":1,"window":"1m"`, `"shadow":true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("shadow")
			h := oneZone(t, name, tc.zone, tc.handler)
			call{}.do(t, h)
			for i := range 3 {
				res := call{}.do(t, h)
				if !res.allowed(t) {
					t.Fatalf("request %d refused in shadow mode", i+2)
				}
				if res.placeholder(phExceeded) != "true" || res.placeholder(phExceededName) != name {
					t.Errorf("exceeded = %q, name %q: a shadow denial must be visible",
						res.placeholder(phExceeded), res.placeholder(phExceededName))
				}
				if got := extraField(t, res.extra, "rate_limit_decision"); got != outcomeShadowDenied {
					t.Errorf("access log decision %q", got)
				}
			}
			if got := decisions(t, name, outcomeShadowDenied); got != 3 {
				t.Errorf("%v shadow denials counted, want 3", got)
			}
		})
	}
}

// TestShadowDenialNamesTheShadowZone: when a shadow zone is exceeded and an
// enforcing zone is not, {http.rate_limit.exceeded.name} must name the zone
// that was exceeded, not the enforcing zone the headers report.
func TestShadowDenialNamesTheShadowZone(t *testing.T) {
	t.Parallel()
	shadow, enforcing := uniq("shadow"), uniq("enforcing")
	h := handlerFromJSON(t, `{"rate_limits":{%q:{"max_events":1,"window":"1m","shadow":true},%q:{"max_events":5,"window":"1m"}}}`, shadow, enforcing)
	call{}.do(t, h)
	res := call{}.do(t, h)
	if !res.allowed(t) || res.placeholder(phExceeded) != "true" {
		t.Fatalf("allowed %v, exceeded %q", res.next, res.placeholder(phExceeded))
	}
	if got := res.placeholder(phExceededName); got != shadow {
		t.Errorf("{%s} = %q, want the exceeded shadow zone %q", phExceededName, got, shadow)
	}
}

func TestExemption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		config string
		c      call
		exempt bool
	}{
		{"client IP in a CIDR", `{"ranges":["10.0.0.0/8"]}`, call{remote: "10.1.2.3"}, true},
		{"single address", `{"ranges":["192.0.2.50"]}`, call{remote: "192.0.2.50"}, true},
		{"IPv4-mapped client in an IPv4 range", `{"ranges":["10.0.0.0/8"]}`, call{remote: "::ffff:10.9.9.9"}, true},
		{"IPv6 range", `{"ranges":["2001:db8::/32"]}`, call{remote: "2001:db8:5::1"}, true},
		{"client IP outside the ranges", `{"ranges":["10.0.0.0/8"]}`, call{remote: "11.0.0.1"}, false},
		{"matcher", `{"match":[{"header":{"X-Internal":["yes"]}}]}`, call{header: map[string]string{"X-Internal": "yes"}}, true},
		{"matcher that fails at run time does not exempt", `{"match":[{"expression":"int({http.request.header.X-N}) > 0"}]}`,
			call{header: map[string]string{"X-N": "abc"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("exempt")
			h := oneZone(t, name, `"max_events":1,"window":"1m"`, `"exempt":`+tc.config)
			want := 1
			if tc.exempt {
				want = 3
			}
			if got := tc.c.admitted(t, h, 3); got != want {
				t.Fatalf("admitted %d of 3, want %d", got, want)
			}
			if tc.exempt {
				if got := tc.c.do(t, h).placeholder(phExceeded); got != "false" {
					t.Errorf("exempt request: exceeded = %q", got)
				}
				// Exempt requests charged nothing: others still get the quota.
				if got := (call{remote: "192.0.2.1"}).admitted(t, h, 2); got != 1 {
					t.Errorf("a non-exempt client was admitted %d of 2, want 1", got)
				}
			}
		})
	}
}

func TestMultiZoneDenialChargesNothing(t *testing.T) {
	t.Parallel()
	wide, narrow := uniq("wide"), uniq("narrow")
	h := handlerFromJSON(t, `{"rate_limits":{%q:{"max_events":5,"window":"1m"},%q:{"max_events":1,"window":"1m"}}}`, wide, narrow)
	if got := (call{}).admitted(t, h, 4); got != 1 {
		t.Fatalf("admitted %d of 4, want 1", got)
	}
	res := call{}.do(t, h)
	if got := extraField(t, res.extra, "rate_limit_zone"); got != narrow {
		t.Errorf("access log names zone %q, want the refusing zone %q", got, narrow)
	}
	if got := extraField(t, res.extra, "rate_limit_decision"); got != outcomeDenied {
		t.Errorf("access log decision %q", got)
	}
	if got := remaining(t, h, wide, ""); got != 4 {
		t.Errorf("zone %s has %d left, want 4: refused requests must not be charged", wide, got)
	}
	if a, d := decisions(t, wide, outcomeAllowed), decisions(t, wide, outcomeDenied); a != 1 || d != 0 {
		t.Errorf("zone %s: %v allowed, %v denied; want 1 and 0", wide, a, d)
	}
	if got := decisions(t, narrow, outcomeDenied); got != 4 {
		t.Errorf("zone %s: %v denied, want 4", narrow, got)
	}
}

func TestCost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cost    string
		c       call
		charged int64
		warned  bool
	}{
		{"static cost", `"cost":3`, call{}, 3, false},
		{"POST costs 5", `"cost_expression":"{http.request.method} == \"POST\" ? 5 : 1"`, call{method: "POST"}, 5, false},
		{"GET costs 1", `"cost_expression":"{http.request.method} == \"POST\" ? 5 : 1"`, call{}, 1, false},
		{"cost from a header", `"cost_expression":"int({http.request.header.X-Cost})"`, call{header: map[string]string{"X-Cost": "4"}}, 4, false},
		{"negative cost charges 1", `"cost_expression":"0 - int({http.request.header.X-Cost})"`, call{header: map[string]string{"X-Cost": "4"}}, 1, true},
		{"erroring cost charges 1", `"cost_expression":"int({http.request.header.X-Cost})"`, call{header: map[string]string{"X-Cost": "lots"}}, 1, true},
		{"non-int result charges 1", `"cost_expression":"{http.request.header.X-Cost}"`, call{header: map[string]string{"X-Cost": "4"}}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("cost")
			h := oneZone(t, name, `"max_events":10,"window":"1m",`+tc.cost, "")
			logs := observeLogs(h)
			if !tc.c.do(t, h).allowed(t) {
				t.Fatal("refused")
			}
			if got := 10 - remaining(t, h, name, ""); got != tc.charged {
				t.Errorf("charged %d, want %d", got, tc.charged)
			}
			if got := logs.FilterMessageSnippet("cost_expression failed").Len(); (got > 0) != tc.warned {
				t.Errorf("%d cost warnings, want any: %v", got, tc.warned)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	tenant := func(tenant, path string) call {
		return call{path: path, remote: "198.51.100.7", header: map[string]string{"X-Tenant": tenant, "X-N": tenant}}
	}
	for _, tc := range []struct {
		name  string
		zone  string
		calls []call
		want  []bool // allowed, per call
		left  map[string]int64
	}{
		{"key_expression groups by its value",
			`"key_expression":"{http.request.header.X-Tenant} + \":\" + {http.request.uri.path}"`,
			[]call{tenant("a", "/x"), tenant("a", "/x"), tenant("b", "/x"), tenant("a", "/y")},
			[]bool{true, false, true, true}, map[string]int64{"a:/x": 0, "b:/x": 0, "c:/x": 1}},
		{"key_expression runtime error keys on the client IP",
			`"key_expression":"string(int({http.request.header.X-N}))"`,
			[]call{tenant("abc", "/"), tenant("12", "/")},
			[]bool{true, true}, map[string]int64{"198.51.100.7": 0, "12": 0, "abc": 1}},
		{"empty key is one counter",
			``,
			[]call{{remote: "192.0.2.1"}, {remote: "192.0.2.2"}},
			[]bool{true, false}, map[string]int64{"": 0}},
		{"key expanding to nothing is one counter",
			`"key":"{http.request.header.X-Missing}"`,
			[]call{{remote: "192.0.2.1"}, {remote: "192.0.2.2"}},
			[]bool{true, false}, map[string]int64{"": 0}},
		{"key template with several placeholders",
			`"key":"{http.request.method} {http.request.uri.path}"`,
			[]call{{path: "/a"}, {path: "/a", remote: "192.0.2.2"}, {path: "/b"}},
			[]bool{true, false, true}, map[string]int64{"GET /a": 0, "GET /b": 0}},
		{"zone ipv4_prefix groups a /24",
			`"key":"{http.vars.client_ip}","ipv4_prefix":24`,
			[]call{{remote: "203.0.113.5"}, {remote: "203.0.113.77"}, {remote: "203.0.114.5"}},
			[]bool{true, false, true}, map[string]int64{"203.0.113.0/24": 0, "203.0.113.5": 1}},
		{"zone ipv6_prefix groups a /64",
			`"key":"{http.vars.client_ip}","ipv6_prefix":64`,
			[]call{{remote: "2001:db8:1:2::1"}, {remote: "2001:db8:1:2:ffff::9"}, {remote: "2001:db8:1:3::1"}},
			[]bool{true, false, true}, map[string]int64{"2001:db8:1:2::/64": 0}},
		{"IPv4-mapped IPv6 uses the IPv4 prefix",
			`"key":"{http.vars.client_ip}","ipv4_prefix":16,"ipv6_prefix":64`,
			[]call{{remote: "::ffff:203.0.113.5"}, {remote: "203.0.200.1"}},
			[]bool{true, false}, map[string]int64{"203.0.0.0/16": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("key")
			z := `"max_events":1,"window":"1m"`
			if tc.zone != "" {
				z += "," + tc.zone
			}
			h := oneZone(t, name, z, "")
			for i, c := range tc.calls {
				if got := c.do(t, h).allowed(t); got != tc.want[i] {
					t.Errorf("call %d (%s from %s): allowed %v, want %v", i, c.header, c.remote, got, tc.want[i])
				}
			}
			for raw, want := range tc.left {
				if got := remaining(t, h, name, raw); got != want {
					t.Errorf("key %q has %d left, want %d", raw, got, want)
				}
			}
		})
	}
}

func TestHandlerPrefixDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone, handler string
		second              string // client sharing the first's counter, or not
		shared              bool
	}{
		{"handler ipv4_prefix is the default", ``, `"ipv4_prefix":24`, "203.0.113.200", true},
		{"zone prefix overrides the handler's", `,"ipv4_prefix":32`, `"ipv4_prefix":24`, "203.0.113.200", false},
		{"handler ipv6_prefix is the default", ``, `"ipv6_prefix":48`, "2001:db8:1:ff::1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := oneZone(t, uniq("prefix"), `"key":"{http.vars.client_ip}","max_events":1,"window":"1m"`+tc.zone, tc.handler)
			first := "203.0.113.1"
			if strings.Contains(tc.second, ":") {
				first = "2001:db8:1::1"
			}
			call{remote: first}.do(t, h)
			if got := (call{remote: tc.second}).do(t, h).allowed(t); got == tc.shared {
				t.Errorf("%s after %s: allowed %v, want shared counter %v", tc.second, first, got, tc.shared)
			}
		})
	}
}

func TestHostileKeys(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("k", 1<<20)
	for _, tc := range []struct{ name, key, other string }{
		{"1 MB key", big, big[:len(big)-1] + "x"},
		{"binary key", "\x00\xff\xfe\x01", "\x00\xff\xfe\x02"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("hostile")
			h := oneZone(t, name, `"key":"{http.request.header.X-Key}","max_events":1,"window":"1m"`, "")
			c := call{header: map[string]string{"X-Key": tc.key}}
			if got := c.admitted(t, h, 2); got != 1 {
				t.Errorf("admitted %d of 2 with one key, want 1", got)
			}
			// The whole key is hashed: a key that differs only at its end
			// has its own counter.
			if !(call{header: map[string]string{"X-Key": tc.other}}).do(t, h).allowed(t) {
				t.Error("a different key shared the counter")
			}
			if got := remaining(t, h, name, tc.key); got != 0 {
				t.Errorf("the 16-byte hash of the key has %d left, want 0", got)
			}
		})
	}
}

func TestMatcherRuntimeErrorAppliesTheZone(t *testing.T) {
	t.Parallel()
	name := uniq("matchfail")
	h := oneZone(t, name, `"match":[{"expression":"int({http.request.header.X-N}) > 5"}],"max_events":1,"window":"1m"`, "")
	logs := observeLogs(h)
	n := func(v string) call { return call{header: map[string]string{"X-N": v}} }

	res := n("1").do(t, h)
	if !res.allowed(t) || res.header.Get("Ratelimit") != "" || res.placeholder(phExceeded) != "false" {
		t.Fatalf("a request the zone does not match was limited: %v", res.header)
	}
	if !n("abc").do(t, h).allowed(t) {
		t.Fatal("first erroring request refused")
	}
	if n("abc").do(t, h).allowed(t) || n("9").do(t, h).allowed(t) {
		t.Error("the zone did not apply to a request whose matcher failed")
	}
	if logs.FilterMessageSnippet("matcher failed; applying the zone").Len() == 0 {
		t.Error("matcher failure not logged")
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		jitter  string
		maxWait int
	}{
		{"no jitter", `"jitter":0`, 10},
		{"jitter adds up to the fraction", `"jitter":1`, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := oneZone(t, uniq("jitter"), `"max_events":1,"window":"10s"`, tc.jitter)
			call{}.do(t, h)
			longest := 0
			for range 20 {
				res := call{}.do(t, h)
				retry, _ := strconv.Atoi(res.header.Get("Retry-After"))
				if retry < 10 || retry > tc.maxWait {
					t.Fatalf("Retry-After %d outside [10, %d]", retry, tc.maxWait)
				}
				longest = max(longest, retry)
			}
			if tc.maxWait > 10 && longest == 10 {
				t.Error("jitter never lengthened Retry-After in 20 refusals")
			}
		})
	}
	if h := (&Handler{Jitter: 1}); h.jitterWait(0) != 0 || h.jitterWait(-time.Second) != -time.Second {
		t.Error("jitter applied to a wait that is not positive")
	}
}

func TestSweepIntervalReachesTheStore(t *testing.T) {
	t.Parallel()
	storeName := uniq("sweep")
	ctx := newTestContext(t, `{"stores":{"`+storeName+`":{"backend":"memory"}}}`)
	h := &Handler{
		RateLimits:    map[string]*Zone{uniq("sweep"): {MaxEvents: 1, Window: caddy.Duration(time.Minute)}},
		Store:         storeName,
		SweepInterval: caddy.Duration(5 * time.Second),
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	// The memory store module marshals its settings.
	if s, _ := json.Marshal(h.store); !strings.Contains(string(s), `"sweep_interval":5000000000`) {
		t.Errorf("store %s does not sweep every 5s", s)
	}
}

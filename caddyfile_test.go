package ratewarden

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// parseDirective parses a rate_limit directive with a test dispenser.
func parseDirective(src string) (*Handler, error) {
	h := new(Handler)
	return h, h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src))
}

// asJSON normalizes v (a value or JSON text) into generic JSON values.
func asJSON(t testing.TB, v any) any {
	t.Helper()
	b, ok := v.([]byte)
	if s, isStr := v.(string); isStr {
		b, ok = []byte(s), true
	}
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return out
}

// wantJSON fails the test unless got marshals to the same JSON as want.
func wantJSON(t testing.TB, got any, want string) {
	t.Helper()
	if g, w := asJSON(t, got), asJSON(t, want); !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		t.Errorf("got JSON\n%s\nwant\n%s", gb, want)
	}
}

// adapt adapts a whole Caddyfile, named "Caddyfile", with Caddy's adapter.
func adapt(src string) (map[string]any, error) {
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	return cfg, json.Unmarshal(out, &cfg)
}

// findHandler returns the first rate_limit handler anywhere in v.
func findHandler(v any) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == "rate_limit" {
			return v
		}
		for _, c := range v {
			if h := findHandler(c); h != nil {
				return h
			}
		}
	case []any:
		for _, c := range v {
			if h := findHandler(c); h != nil {
				return h
			}
		}
	}
	return nil
}

// site wraps rate_limit body lines in a site block: body[i] is on line i+3.
func site(body ...string) string {
	return ":8080\nrate_limit {\n" + strings.Join(body, "\n") + "\n}\n"
}

func TestCaddyfileHandlerSyntax(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src, want string
	}{
		{"limit short form implies gcra", `rate_limit {
			zone z {
				key {http.request.remote.host}
				limit 100 1m
			}
		}`, `{"rate_limits":{"z":{"key":"{http.request.remote.host}","algorithm":"gcra","window":60000000000,"max_events":100}}}`},
		{"limit keeps an explicit algorithm, burst and cost", `rate_limit {
			zone z {
				limit 5 10s
				algorithm token_bucket
				burst 3
				cost 2
			}
		}`, `{"rate_limits":{"z":{"algorithm":"token_bucket","window":10000000000,"max_events":5,"burst":3,"cost":2}}}`},
		{"concurrency limit needs no window", `rate_limit {
			zone z {
				algorithm concurrency
				limit 4
			}
		}`, `{"rate_limits":{"z":{"algorithm":"concurrency","max_events":4}}}`},
		{"events and window default to sliding_log by omitting algorithm", `rate_limit {
			zone z {
				key    static
				events 2
				window 5s
			}
		}`, `{"rate_limits":{"z":{"key":"static","window":5000000000,"max_events":2}}}`},
		{"max_events is an alias of events", `rate_limit {
			zone z {
				max_events 7
				window 1h
			}
		}`, `{"rate_limits":{"z":{"window":3600000000000,"max_events":7}}}`},
		{"match block becomes a matcher set", `rate_limit {
			zone z {
				match {
					path /login
					method POST
				}
				events 1
				window 1m
			}
		}`, `{"rate_limits":{"z":{"match":[{"method":["POST"],"path":["/login"]}],"window":60000000000,"max_events":1}}}`},
		{"match CEL expression becomes an expression matcher", "rate_limit {\n zone z {\n match `{path}.startsWith(\"/api/\")`\n events 1\n window 1m\n }\n}",
			`{"rate_limits":{"z":{"match":[{"expression":"{path}.startsWith(\"/api/\")"}],"window":60000000000,"max_events":1}}}`},
		{"match block and CEL expression are ANDed", "rate_limit {\n zone z {\n match {\n path /a*\n }\n match `{method} == \"GET\"`\n events 1\n window 1m\n }\n}",
			`{"rate_limits":{"z":{"match":[{"path":["/a*"],"expression":"{method} == \"GET\""}],"window":60000000000,"max_events":1}}}`},
		{"count_if block", `rate_limit {
			zone z {
				limit 3 1m
				count_if {
					status 401 403
					header X-Login failed
				}
			}
		}`, `{"rate_limits":{"z":{"algorithm":"gcra","window":60000000000,"max_events":3,"count_if":{"status_code":[401,403],"headers":{"X-Login":["failed"]}}}}}`},
		{"count_if inline", `rate_limit {
			zone z {
				limit 3 1m
				count_if status 5xx
			}
		}`, `{"rate_limits":{"z":{"algorithm":"gcra","window":60000000000,"max_events":3,"count_if":{"status_code":[5]}}}}`},
		{"zone expressions, prefixes, shadow and log_key", "rate_limit {\n zone z {\n key_expr `{http.request.header.X-Tenant} + \":\" + {path}`\n cost `{method} == \"POST\" ? 5 : 1`\n ipv4_prefix 24\n ipv6_prefix 64\n shadow\n log_key\n limit 10 1s\n }\n}",
			`{"rate_limits":{"z":{"key_expression":"{http.request.header.X-Tenant} + \":\" + {path}","cost_expression":"{method} == \"POST\" ? 5 : 1","ipv4_prefix":24,"ipv6_prefix":64,"shadow":true,"log_key":true,"algorithm":"gcra","window":1000000000,"max_events":10}}}`},
		{"every handler-level setting", `rate_limit {
			zone z {
				events 1
				window 1m
			}
			exempt 10.0.0.0/8 127.0.0.1
			exempt ::1
			exempt {
				header X-Internal yes
			}
			headers ietf legacy
			shadow
			jitter 0.2
			store shared
			log_level warn
			log_key
			disable_metrics
			ipv4_prefix 24
			ipv6_prefix 48
			sweep_interval 30s
		}`, `{"rate_limits":{"z":{"window":60000000000,"max_events":1}},
			"exempt":{"ranges":["10.0.0.0/8","127.0.0.1","::1"],"match":[{"header":{"X-Internal":["yes"]}}]},
			"headers":["ietf","legacy"],"shadow":true,"jitter":0.2,"store":"shared","log_level":"warn","log_key":true,
			"disable_metrics":true,"ipv4_prefix":24,"ipv6_prefix":48,"sweep_interval":30000000000}`},
		{"caddy-ratelimit distributed and storage are accepted", `rate_limit {
			distributed {
				read_interval 5s
				write_interval 10s
			}
			storage redis {
				address localhost:6379
			}
			zone z {
				events 1
				window 1m
			}
		}`, `{"rate_limits":{"z":{"window":60000000000,"max_events":1}},"distributed":{},"storage":{"module":"redis"}}`},
		{"caddy-ratelimit storage on one line", `rate_limit {
			storage file_system /tmp
			zone z {
				events 1
				window 1m
			}
		}`, `{"rate_limits":{"z":{"window":60000000000,"max_events":1}},"storage":{"module":"file_system"}}`},
		{"distributed without a block", `rate_limit {
			distributed
			zone z {
				events 1
				window 1m
			}
		}`, `{"rate_limits":{"z":{"window":60000000000,"max_events":1}},"distributed":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := parseDirective(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			wantJSON(t, h, tc.want)
		})
	}
}

// TestCaddyfileMatchExpressions checks what combined match expressions
// select, by provisioning the parsed zone and matching requests.
func TestCaddyfileMatchExpressions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		match []string // match lines of the zone
		hits  []string // "METHOD /path" requests the zone must apply to
		miss  []string // requests it must not apply to
	}{
		{
			name:  "two expressions are ANDed as wholes",
			match: []string{"match `{http.request.method} == \"GET\" || {http.request.method} == \"HEAD\"`", "match `{http.request.uri.path} == \"/x\"`"},
			hits:  []string{"GET /x", "HEAD /x"},
			miss:  []string{"GET /y", "POST /x"},
		},
		{
			name:  "an expression joins each matcher set on its own",
			match: []string{"match {\n expression `{http.request.method} == \"POST\"`\n }", "match {\n path /b\n }", "match `{http.request.uri.path}.startsWith(\"/\")`"},
			hits:  []string{"POST /a", "GET /b"},
			miss:  []string{"GET /a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("match")
			src := "rate_limit {\nzone " + name + " {\n" + strings.Join(tc.match, "\n") + "\nevents 1\nwindow 1m\n}\n}"
			h, err := parseDirective(src)
			if err != nil {
				t.Fatal(err)
			}
			sets := mustJSON(h.RateLimits[name].MatcherSetsRaw)
			provisionHandler(t, h)
			z := zoneNamed(t, h, name)
			check := func(req string, want bool) {
				method, path, _ := strings.Cut(req, " ")
				r := httptest.NewRequest(method, path, nil)
				caddyhttp.NewTestReplacer(r)
				if got, err := z.matches(r); err != nil || got != want {
					t.Errorf("%s: zone applies = %v (err %v), want %v; sets: %s", req, got, err, want, sets)
				}
			}
			for _, r := range tc.hits {
				check(r, true)
			}
			for _, r := range tc.miss {
				check(r, false)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCaddyfileAPIKeyAndControlStore(t *testing.T) {
	t.Parallel()
	cfg, err := adapt(`{
	rate_limit {
		store memory keys
		control_store keys
		api_key_retention 30d
	}
}
:8080
rate_limit {
	api_key {
		header X-Key
		bearer
		query api_key
		require
		failure_limit 5 30s
	}
	zone z {
		key {http.rate_limit.api_key.id}
		limit 10 1m
	}
}
`)
	if err != nil {
		t.Fatal(err)
	}
	apps, _ := cfg["apps"].(map[string]any)
	wantJSON(t, apps["rate_limit"], `{"stores":{"keys":{"backend":"memory"}},"control_store":"keys","api_key_retention":2592000000000000}`)
	h := findHandler(cfg)
	wantJSON(t, h["api_key"], `{"header":"X-Key","bearer":true,"query":"api_key","require":true,"failure_limit":5,"failure_window":30000000000}`)
	h2, err := parseDirective("rate_limit {\n api_key\n zone z {\n limit 1 1m\n }\n}")
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, h2.APIKey, `{}`)
}

func TestCaddyfileGlobalOption(t *testing.T) {
	t.Parallel()
	cfg, err := adapt(`{
	rate_limit {
		store memory {
			shards 16
			max_keys 1000
			sweep_interval 30s
		}
		store memory cache {
			max_keys 10
		}
	}
}
:8080
rate_limit {
	zone z {
		events 1
		window 1m
	}
	store cache
}
`)
	if err != nil {
		t.Fatal(err)
	}
	apps, _ := cfg["apps"].(map[string]any)
	wantJSON(t, apps["rate_limit"], `{"stores":{
		"default":{"backend":"memory","shards":16,"max_keys":1000,"sweep_interval":30000000000},
		"cache":{"backend":"memory","max_keys":10}}}`)
	if h := findHandler(cfg); h == nil || h["store"] != "cache" {
		t.Errorf("handler %v does not name store cache", h)
	}
}

// TestCaddyRatelimitReadme loads both examples of caddy-ratelimit's README
// unchanged: the Caddyfile adapts and the JSON config provisions.
func TestCaddyRatelimitReadme(t *testing.T) {
	t.Parallel()
	cfg, err := adapt(`{
	order rate_limit before basic_auth
}

:80

rate_limit {
	distributed
	zone static_example {
		key    static
		events 100
		window 1m
	}
	zone dynamic_example {
		key    {remote_host}
		events 2
		window 5s
	}
}

respond "I'm behind the rate limiter!"
`)
	if err != nil {
		t.Fatal(err)
	}
	h := findHandler(cfg)
	delete(h, "handler")
	wantJSON(t, h, `{"rate_limits":{
		"static_example":{"key":"static","window":60000000000,"max_events":100},
		"dynamic_example":{"key":"{http.request.remote.host}","window":5000000000,"max_events":2}},
		"distributed":{}}`)

	// The README's JSON handler, with the zone names made unique to this
	// test run, decoded strictly and provisioned.
	static, dynamic := uniq("static_example"), uniq("dynamic_example")
	rl := handlerFromJSON(t, `{
		"rate_limits": {
			%q: {"match": [{"method": ["GET"]}], "key": "static", "window": "1m", "max_events": 100},
			%q: {"key": "{http.request.remote.host}", "window": "5s", "max_events": 2}
		},
		"distributed": {}
	}`, static, dynamic)
	if got := (call{remote: uniqIP()}).admitted(t, rl, 3); got != 2 {
		t.Errorf("dynamic_example admitted %d of 3 requests from one host, want 2", got)
	}
	// The third request was refused by dynamic_example, so it charged
	// nothing in static_example either.
	if got := remaining(t, rl, static, "static"); got != 98 {
		t.Errorf("static_example has %d left after 2 admitted GETs, want 98", got)
	}
}

func TestCaddyfileErrors(t *testing.T) {
	t.Parallel()
	zone := func(lines ...string) []string {
		return append(append([]string{"zone z {"}, lines...), "}")
	}
	for _, tc := range []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{"unknown handler subdirective", site(append([]string{"bogus 1"}, zone("events 1", "window 1m")...)...), 3, `unrecognized rate_limit subdirective "bogus"`},
		{"unknown zone subdirective", site(zone("events 1", "window 1m", "frobnicate")...), 6, `zone "z": unrecognized subdirective "frobnicate"`},
		{"zero limit", site(zone("limit 0 1m")...), 4, `limit must be a whole number greater than zero, got "0"`},
		{"negative limit", site(zone("limit -5 1m")...), 4, `limit must be a whole number greater than zero, got "-5"`},
		{"limit not a number", site(zone("limit many 1m")...), 4, `limit must be a whole number greater than zero, got "many"`},
		{"zero events", site(zone("events 0", "window 1m")...), 4, `events must be a whole number greater than zero, got "0"`},
		{"unparsable window", site(zone("events 1", "window forever")...), 5, `invalid duration "forever"`},
		{"unparsable limit window", site(zone("limit 1 soon")...), 4, `invalid duration "soon"`},
		{"CEL syntax error in match", site(zone("match `{path}.startsWith(`", "limit 1 1m")...), 4, "match expression"},
		{"CEL syntax error in key_expr", site(zone("key_expr `{path} +`", "limit 1 1m")...), 4, "key_expr: compiling CEL expression"},
		{"CEL syntax error in cost", site(zone("cost `{method} ==`", "limit 1 1m")...), 4, "cost is neither an integer nor a valid CEL expression"},
		{"key_expr returning int", site(zone("key_expr `1 + 2`", "limit 1 1m")...), 4, "returns int, want string"},
		{"cost returning string", site(zone("cost `\"a\" + \"b\"`", "limit 1 1m")...), 4, "returns string, want int"},
		{"zero cost", site(zone("cost 0", "limit 1 1m")...), 4, "cost must be greater than zero"},
		{"duplicate zone name", site(append(zone("limit 1 1m"), zone("limit 2 1m")...)...), 6, `zone "z" is defined more than once`},
		{"zone setting given twice", site(zone("key a", "key b", "limit 1 1m")...), 5, `zone "z": key specified more than once`},
		{"events given twice through its alias", site(zone("events 1", "max_events 2", "window 1m")...), 5, "events specified more than once"},
		{"handler setting given twice", site(append(zone("limit 1 1m"), "jitter 0.1", "jitter 0.2")...), 7, "jitter specified more than once"},
		{"unknown algorithm", site(zone("algorithm leaky", "limit 1 1m")...), 4, `unknown algorithm "leaky"`},
		{"limit together with events", site(zone("limit 1 1m", "events 2")...), 3, "use either limit or events/window, not both"},
		{"zone without a limit", site(zone("key static")...), 3, `zone "z" needs a limit`},
		{"zone with events but no window", site(zone("events 3")...), 3, `zone "z" needs a limit`},
		{"key with key_expr", site(zone("key a", "key_expr `\"b\"`", "limit 1 1m")...), 3, "key and key_expr are mutually exclusive"},
		{"prefix out of range", site(zone("ipv4_prefix 33", "limit 1 1m")...), 4, `ipv4_prefix must be between 1 and 32, got "33"`},
		{"bad count_if", site(zone("limit 1 1m", "count_if {", "colour red", "}")...), 6, "unrecognized response matcher colour"},
		{"jitter above one", site(append(zone("limit 1 1m"), "jitter 1.5")...), 6, "jitter must be a fraction between 0 and 1"},
		{"jitter not a number", site(append(zone("limit 1 1m"), "jitter lots")...), 6, `got "lots"`},
		{"unknown headers mode", site(append(zone("limit 1 1m"), "headers ietf fancy")...), 6, `unknown mode "fancy"`},
		{"headers none with another mode", site(append(zone("limit 1 1m"), "headers none legacy")...), 6, "'none' cannot be combined"},
		{"bad exempt CIDR", site(append(zone("limit 1 1m"), "exempt 10.0.0.0/33")...), 6, `"10.0.0.0/33" is not an IP address or CIDR range`},
		{"exempt with nothing", site(append(zone("limit 1 1m"), "exempt")...), 6, "exempt needs IP ranges or a block of matchers"},
		{"bad log_level", site(append(zone("limit 1 1m"), "log_level verbose")...), 6, `log_level must be debug, info, warn or error, got "verbose"`},
		{"flag with an argument", site(append(zone("limit 1 1m"), "shadow yes")...), 6, "wrong argument count"},
		{"no zone", site("headers ietf"), 2, "rate_limit needs at least one zone"},
		{"zone without a name", site("zone {", "limit 1 1m", "}"), 3, "wrong argument count"},
		{"zone with two names", site("zone a b {", "limit 1 1m", "}"), 3, "wrong argument count"},
		{"setting with two values", site(zone("key a b", "limit 1 1m")...), 4, "wrong argument count"},
		{"events without a value", site(zone("events", "window 1m")...), 4, "wrong argument count"},
		{"window without a value", site(zone("events 1", "window")...), 5, "wrong argument count"},
		{"limit without a value", site(zone("limit")...), 4, "wrong argument count"},
		{"limit with three values", site(zone("limit 1 1m 2")...), 4, "wrong argument count"},
		{"prefix without a value", site(zone("ipv6_prefix", "limit 1 1m")...), 4, "wrong argument count"},
		{"match with two expressions on a line", site(zone("match `true` `false`", "limit 1 1m")...), 4, "wrong argument count"},
		// Errors found once a block is read point at its closing brace.
		{"empty match block", site(zone("match {", "}", "limit 1 1m")...), 5, "match needs a CEL expression or a block of matchers"},
		{"unknown matcher in match", site(zone("match {", "colour red", "}", "limit 1 1m")...), 6, "colour"},
		{"unknown matcher in exempt", site(append(zone("limit 1 1m"), "exempt {", "colour red", "}")...), 8, "colour"},
		{"headers without a mode", site(append(zone("limit 1 1m"), "headers")...), 6, "wrong argument count"},
		{"storage without a module", site(append(zone("limit 1 1m"), "storage")...), 6, "wrong argument count"},
		{"directive with an argument", ":8080\nrate_limit extra {\n" + strings.Join(zone("limit 1 1m"), "\n") + "\n}\n", 2, "wrong argument count"},
		{"global option with an argument", "{\n\trate_limit extra {\n\t}\n}\n" + site(zone("limit 1 1m")...), 2, "wrong argument count"},
		{"store without a backend", "{\n\trate_limit {\n\t\tstore\n\t}\n}\n" + site(zone("limit 1 1m")...), 3, "wrong argument count"},
		{"store with two names", "{\n\trate_limit {\n\t\tstore memory a b\n\t}\n}\n" + site(zone("limit 1 1m")...), 3, "wrong argument count"},
		{"unknown global option", "{\n\trate_limit {\n\t\tbogus\n\t}\n}\n" + site(zone("limit 1 1m")...), 3, `unrecognized rate_limit global option "bogus"`},
		{"unknown store backend", "{\n\trate_limit {\n\t\tstore nosuch\n\t}\n}\n" + site(zone("limit 1 1m")...), 3, `unknown store backend "nosuch"`},
		{"duplicate default store", "{\n\trate_limit {\n\t\tstore memory\n\t\tstore memory default\n\t}\n}\n" + site(zone("limit 1 1m")...), 4, `store "default" is defined more than once`},
		{"duplicate store across rate_limit blocks", "{\n\trate_limit {\n\t\tstore memory a\n\t}\n\trate_limit {\n\t\tstore memory a\n\t}\n}\n" + site(zone("limit 1 1m")...), 6, `store "a" is defined more than once`},
		{"bad store option", "{\n\trate_limit {\n\t\tstore memory {\n\t\t\tshards 0\n\t\t}\n\t}\n}\n" + site(zone("limit 1 1m")...), 4, "shards must be a whole number greater than zero"},
		{"control_store twice", "{\n\trate_limit {\n\t\tcontrol_store a\n\t\tcontrol_store b\n\t}\n}\n" + site(zone("limit 1 1m")...), 4, "control_store specified more than once"},
		{"api_key_retention twice", "{\n\trate_limit {\n\t\tapi_key_retention 1h\n\t\tapi_key_retention 2h\n\t}\n}\n" + site(zone("limit 1 1m")...), 4, "api_key_retention specified more than once"},
		{"api_key_retention not a duration", "{\n\trate_limit {\n\t\tapi_key_retention forever\n\t}\n}\n" + site(zone("limit 1 1m")...), 3, `api_key_retention: want a positive duration such as 720h or 30d, got "forever"`},
		{"api_key_retention zero", "{\n\trate_limit {\n\t\tapi_key_retention 0s\n\t}\n}\n" + site(zone("limit 1 1m")...), 3, "want a positive duration"},
		{"control_store without a name", "{\n\trate_limit {\n\t\tcontrol_store\n\t}\n}\n" + site(zone("limit 1 1m")...), 3, "wrong argument count"},
		{"api_key with an argument", site(append(zone("limit 1 1m"), "api_key X-Key")...), 6, "wrong argument count"},
		{"unknown api_key option", site(append(zone("limit 1 1m"), "api_key {", "cookie k", "}")...), 7, `api_key: unrecognized option "cookie"`},
		{"api_key option twice", site(append(zone("limit 1 1m"), "api_key {", "header A", "header B", "}")...), 8, "api_key: header specified more than once"},
		{"api_key failure_limit without window", site(append(zone("limit 1 1m"), "api_key {", "failure_limit 5", "}")...), 7, "failure_limit takes a count and a window"},
		{"api_key bad failure window", site(append(zone("limit 1 1m"), "api_key {", "failure_limit 5 never", "}")...), 7, `invalid duration "never"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := adapt(tc.src)
			wantErr(t, err, fmt.Sprintf("Caddyfile:%d", tc.line), tc.msg)
		})
	}
}

// TestCaddyfileErrorsNameTheTestFile checks the dispenser path reports its
// own file name too.
func TestCaddyfileErrorsNameTheTestFile(t *testing.T) {
	t.Parallel()
	_, err := parseDirective("rate_limit {\n\tzone z {\n\t\tlimit 0\n\t}\n}")
	wantErr(t, err, "Testfile:3", "limit must be")
	_, err = parseDirective("rate_limit {\n\tzone z {\n\t}\n}")
	wantErr(t, err, "Testfile:2", "needs a limit")
}

package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/ratewarden/ratewarden/admin"
	"github.com/ratewarden/ratewarden/admin/openapitest"
)

// testNow is the clock every test command runs with.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// request is what the fake admin API received.
type request struct {
	Method string
	// Path is the escaped path, as sent.
	Path string
	// Query is the raw query, as sent.
	Query string
	// Body is the JSON body; compared as JSON, so spacing and key order
	// do not matter. Empty means no body.
	Body string
}

// reply is what the fake admin API answers.
type reply struct {
	Status int // default 200
	Body   string
}

// contract validates exchanges against the admin API's OpenAPI document.
var contract = sync.OnceValues(func() (*openapitest.Validator, error) {
	return openapitest.New(admin.OpenAPI())
})

// fakeAdmin is an admin API stand-in that answers every request with one
// reply and records what it received. A strict fake also checks each
// request it receives, and the reply it sends, against the admin API's
// OpenAPI document.
type fakeAdmin struct {
	srv    *httptest.Server
	reply  reply
	strict bool

	mu   sync.Mutex
	reqs []request
	// violations are the strict fake's contract violations.
	violations []string
}

func newFakeAdmin(t *testing.T, r reply) *fakeAdmin {
	t.Helper()
	f := &fakeAdmin{reply: r}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status := cmp.Or(f.reply.Status, http.StatusOK)
		switch {
		case f.reply.Body == "":
		case status >= 400:
			w.Header().Set("Content-Type", "application/problem+json")
		default:
			w.Header().Set("Content-Type", "application/json")
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, request{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body)})
		if f.strict {
			f.violations = append(f.violations, f.check(r, body, status, w.Header())...)
		}
		f.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, f.reply.Body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// check validates one exchange against the contract.
func (f *fakeAdmin) check(r *http.Request, body []byte, status int, header http.Header) []string {
	v, err := contract()
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	if err := v.ValidateRequest(r, body); err != nil {
		out = append(out, "request: "+err.Error())
	}
	if err := v.ValidateResponse(r, status, header, []byte(f.reply.Body)); err != nil {
		out = append(out, "reply: "+err.Error())
	}
	return out
}

// addr is the fake's address as --address takes it.
func (f *fakeAdmin) addr() string { return f.srv.Listener.Addr().String() }

// requests returns what the fake received so far, and the contract
// violations a strict fake found.
func (f *fakeAdmin) requests() ([]request, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...), append([]string(nil), f.violations...)
}

// result is one in-process run of the command.
type result struct {
	stdout, stderr string
	err            error
}

// runCLI runs `rate-limit args...` in-process with stdin as its input.
func runCLI(stdin string, args ...string) result {
	cmd := NewCommand(Options{Now: func() time.Time { return testNow }})
	var stdout, stderr bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	return result{stdout.String(), stderr.String(), err}
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	if a == "" || b == "" {
		return a == b
	}
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("not JSON: %q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("not JSON: %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// pretty is body as --json prints it.
func pretty(t *testing.T, body string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(strings.TrimSpace(body)), "", "  "); err != nil {
		t.Fatalf("indenting %q: %v", body, err)
	}
	return buf.String() + "\n"
}

// apiCase is one subcommand run against the fake admin API: the request it
// must send, and what it must print for the reply.
type apiCase struct {
	name  string
	args  []string
	stdin string
	reply reply
	want  request
	// stdout is the human-readable output; with --json the output must be
	// the reply body, pretty-printed.
	stdout string
}

// runAPICases runs each case twice, human-readable and with --json,
// against a strict fake: the request and the reply must both match the
// admin API's OpenAPI document.
func runAPICases(t *testing.T, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		for _, asJSON := range []bool{false, true} {
			name := tc.name
			if asJSON {
				name += "/json"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := newFakeAdmin(t, tc.reply)
				f.strict = true
				args := append([]string{"--address", f.addr()}, tc.args...)
				if asJSON {
					args = append(args, "--json")
				}
				res := runCLI(tc.stdin, args...)
				if res.err != nil {
					t.Fatalf("error %v; stderr %q", res.err, res.stderr)
				}
				reqs, violations := f.requests()
				for _, v := range violations {
					t.Errorf("contract: %s", v)
				}
				if len(reqs) != 1 {
					t.Fatalf("sent %d requests, want 1: %+v", len(reqs), reqs)
				}
				got := reqs[0]
				if got.Method != tc.want.Method || got.Path != tc.want.Path || got.Query != tc.want.Query {
					t.Errorf("sent %s %s?%s, want %s %s?%s", got.Method, got.Path, got.Query,
						tc.want.Method, tc.want.Path, tc.want.Query)
				}
				if !sameJSON(t, got.Body, tc.want.Body) {
					t.Errorf("sent body %s, want %s", got.Body, tc.want.Body)
				}
				want := tc.stdout
				if asJSON {
					want = ""
					if tc.reply.Body != "" {
						want = pretty(t, tc.reply.Body)
					}
				}
				if res.stdout != want {
					t.Errorf("stdout:\n%s\nwant:\n%s", res.stdout, want)
				}
			})
		}
	}
}

func TestRegisteredAsCaddyCommand(t *testing.T) {
	c, ok := caddycmd.Commands()["rate-limit"]
	if !ok || c.CobraFunc == nil {
		t.Fatal("rate-limit is not registered as a Cobra command")
	}
	var names []string
	for _, sub := range NewCommand(Options{}).Commands() {
		names = append(names, sub.Name())
	}
	want := []string{"dashboard", "explain", "export", "health", "import", "inspect", "keys", "override", "reset", "zones"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("subcommands %v, want %v", names, want)
	}
}

// TestErrorResponses pins how an admin API error is reported: one line on
// the error output, nothing on the standard output, and exit status 1.
func TestErrorResponses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply reply
		want  string
	}{
		{
			name: "problem with a field",
			reply: reply{400, `{"type":"https://github.com/ratewarden/ratewarden/blob/main/docs/problems.md#admin-invalid-request",` +
				`"title":"Bad Request","status":400,"detail":"/limit: must be at least 1","instance":"/rate_limit/v1/zones/api/override",` +
				`"request_id":"6b034cfd","field":"/limit","errors":[{"field":"/limit","detail":"must be at least 1"}]}`},
			want: "error: overriding zone api: Bad Request: /limit: must be at least 1 (field /limit)\n",
		},
		{
			name:  "problem without a field",
			reply: reply{404, `{"type":"about:blank","title":"Not Found","status":404,"detail":"no zone \"api\""}`},
			want:  "error: overriding zone api: Not Found: no zone \"api\"\n",
		},
		{
			name:  "problem with a title only",
			reply: reply{409, `{"title":"Conflict","status":409}`},
			want:  "error: overriding zone api: Conflict\n",
		},
		{
			name:  "problem detail on several lines",
			reply: reply{400, `{"title":"Invalid request","detail":"line one\nline two"}`},
			want:  "error: overriding zone api: Invalid request: line one line two\n",
		},
		{
			name:  "caddy admin error",
			reply: reply{405, `{"error":"method not allowed"}`},
			want:  "error: overriding zone api: HTTP 405 Method Not Allowed: method not allowed\n",
		},
		{
			name:  "plain text",
			reply: reply{502, "upstream\nfailed"},
			want:  "error: overriding zone api: HTTP 502 Bad Gateway: upstream failed\n",
		},
		{
			name:  "empty body",
			reply: reply{404, ""},
			want:  "error: overriding zone api: HTTP 404 Not Found\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAdmin(t, tc.reply)
			for _, asJSON := range []string{"--json=false", "--json"} {
				res := runCLI("", "--address", f.addr(), asJSON, "override", "set", "api", "--limit", "0")
				if res.err == nil {
					t.Fatalf("%s: no error", asJSON)
				}
				if res.stderr != tc.want {
					t.Errorf("%s: stderr %q, want %q", asJSON, res.stderr, tc.want)
				}
				if res.stdout != "" {
					t.Errorf("%s: stdout %q, want nothing", asJSON, res.stdout)
				}
			}
		})
	}
}

func TestConnectionErrorNamesAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res := runCLI("", "zones", "--address", addr)
	if res.err == nil {
		t.Fatal("no error")
	}
	want := "error: listing zones: reaching the admin API at " + addr + " (is Caddy running there?): "
	if !strings.HasPrefix(res.stderr, want) || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting %q", res.stderr, want)
	}
	// A raw key can be a credential: the quoted URL leaves it out.
	res = runCLI("", "inspect", "api", "rwk_secret value", "--address", addr)
	if res.err == nil || strings.Contains(res.stderr, "secret") || !strings.Contains(res.stderr, "/zones/api/keys?…") {
		t.Errorf("stderr %q, want the URL without its query", res.stderr)
	}
}

func TestAddressDefault(t *testing.T) {
	t.Parallel()
	// Caddy reads CADDY_ADMIN into DefaultAdminListen once, at start.
	e, err := (&globals{now: time.Now}).env(NewCommand(Options{}))
	if err != nil || e.client.addr != caddy.DefaultAdminListen {
		t.Errorf("default address %q, %v; want %q", e.client.addr, err, caddy.DefaultAdminListen)
	}
	e, err = (&globals{address: "unix//run/caddy-admin.sock", now: time.Now}).env(NewCommand(Options{}))
	if err != nil || e.client.addr != "unix//run/caddy-admin.sock" {
		t.Errorf("--address gave %q, %v", e.client.addr, err)
	}
}

// TestHostileKeysAreEscaped sends zone names and raw keys with spaces,
// slashes, unicode and ?&# through a real ServeMux with the admin API's
// route patterns, which must see them unchanged.
func TestHostileKeysAreEscaped(t *testing.T) {
	t.Parallel()
	type seen struct{ method, zone, key string }
	var (
		mu  sync.Mutex
		got []seen
	)
	mux := http.NewServeMux()
	record := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Method, r.PathValue("zone"), r.URL.Query().Get("key")})
		mu.Unlock()
		io.WriteString(w, "{}")
	}
	mux.HandleFunc("/rate_limit/v1/zones/{zone}/keys", record)
	mux.HandleFunc("/rate_limit/v1/zones/{zone}/keys/override", record)
	mux.HandleFunc("/rate_limit/v1/zones/{zone}/override", record)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	zones := []string{"api", "a zone/with slash", "zöne-ünïcödé", "z?&#=%2F"}
	keys := []string{"10.0.0.1", "key with spaces", "a/b/../c", "ключ-🔑", "?a=1&b=2#frag", "%41+plus", "semi;colon"}
	for _, zone := range zones {
		for _, key := range keys {
			for _, args := range [][]string{
				{"inspect", zone, key},
				{"reset", zone, key},
				{"override", "set", zone, "--key", key, "--limit", "5"},
				{"override", "rm", zone, "--key", key},
			} {
				mu.Lock()
				got = nil
				mu.Unlock()
				res := runCLI("", append([]string{"--address", addr}, args...)...)
				if res.err != nil {
					t.Fatalf("%q: %v (%s)", args, res.err, res.stderr)
				}
				mu.Lock()
				if len(got) != 1 || got[0].zone != zone || got[0].key != key {
					t.Errorf("%q: server saw %+v, want zone %q key %q", args, got, zone, key)
				}
				mu.Unlock()
			}
		}
	}
}

// TestKeyIDIsOnePathSegment checks that an id with slashes and ?# stays in
// its path segment.
func TestKeyIDIsOnePathSegment(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	ids := make(chan string, 3)
	mux.HandleFunc("GET /rate_limit/v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		ids <- r.PathValue("id")
		io.WriteString(w, "{}")
	})
	mux.HandleFunc("POST /rate_limit/v1/keys/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		ids <- r.PathValue("id") + " " + r.PathValue("action")
		io.WriteString(w, "{}")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	id := "k/1 ?#ü"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "show", id}, id},
		{[]string{"keys", "rotate", id}, id + " rotate"},
		{[]string{"keys", "revoke", id}, id + " revoke"},
	} {
		res := runCLI("", append([]string{"--address", srv.Listener.Addr().String()}, tc.args...)...)
		if res.err != nil {
			t.Fatalf("%q: %v (%s)", tc.args, res.err, res.stderr)
		}
		if got := <-ids; got != tc.want {
			t.Errorf("%q: server saw %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestInputErrors pins errors caught before anything is sent.
func TestInputErrors(t *testing.T) {
	t.Parallel()
	f := newFakeAdmin(t, reply{Body: "{}"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "create"}, `required flag(s) "name" not set`},
		{[]string{"keys", "create", "--name", "n", "--label", "novalue"}, `--label "novalue": want key=value`},
		{[]string{"keys", "create", "--name", "n", "--label", "=v"}, `--label "=v": want key=value`},
		{[]string{"keys", "create", "--name", "n", "--label", "a=1", "--label", "a=2"}, `--label: "a" given twice`},
		{[]string{"keys", "create", "--name", "n", "--expires", "tomorrow"}, "--expires: want an RFC 3339 time"},
		{[]string{"keys", "create", "--name", "n", "--ttl", "soon"}, "--ttl: "},
		{[]string{"keys", "create", "--name", "n", "--ttl", "-1h"}, "--ttl: -1h is not a positive duration"},
		{[]string{"keys", "create", "--name", "n", "--ttl", "1h", "--expires", "2026-01-01T00:00:00Z"}, "none of the others can be"},
		{[]string{"keys", "rotate", "k1", "--grace", "0s"}, "--grace: 0s is not a positive duration"},
		{[]string{"keys", "show"}, "accepts 1 arg(s), received 0"},
		{[]string{"override", "set", "api"}, "nothing to override: give --limit, --burst, --mode or --enabled"},
		{[]string{"override", "set", "api", "--mode", "block"}, `--mode "block": want enforce or shadow`},
		{[]string{"override", "set", "api", "--multiplier", "2"}, "--multiplier applies to one key: add --key"},
		{[]string{"override", "set", "api", "--key", "k"}, "a key override needs --limit or --multiplier"},
		{[]string{"override", "set", "api", "--key", "k", "--limit", "1", "--mode", "shadow"}, "--mode and --enabled apply to a zone, not to one key"},
		{[]string{"override", "set", "api", "--key", "k", "--limit", "1", "--multiplier", "2"}, "none of the others can be"},
		{[]string{"override", "set", "api", "--limit", "1", "--ttl", "forever"}, "--ttl: "},
		{[]string{"inspect", "api"}, "accepts 2 arg(s), received 1"},
		{[]string{"explain"}, `required flag(s) "url" not set`},
		{[]string{"explain", "--url", "http://x/", "--header", "NoColon"}, `--header "NoColon": want 'Name: value'`},
		{[]string{"explain", "--url", "http://x/", "--header", "Bad Name: v"}, `--header "Bad Name: v": want 'Name: value'`},
	} {
		res := runCLI("", append([]string{"--address", f.addr()}, tc.args...)...)
		if res.err == nil || !strings.Contains(res.err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.args, res.err, tc.want)
		}
	}
	if reqs, _ := f.requests(); len(reqs) != 0 {
		t.Errorf("sent %+v, want nothing", reqs)
	}
}

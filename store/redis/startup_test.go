package redis

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// startupSecret is the password the tests give; no error may show it.
const startupSecret = "startup-s3cret-pw"

// unusedAddr returns a loopback address nothing listens on.
func unusedAddr(tb testing.TB) string {
	tb.Helper()
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// startupStore returns a store for opts, made the way Provision makes it,
// logging to the returned observer, and runs its start-up check.
func startupStore(tb testing.TB, opts Options) (*Store, *observer.ObservedLogs, error) {
	tb.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	opts.Logger = zap.New(core)
	opts.Name = "startup"
	opts = opts.withDefaults()
	c, err := NewClient(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	s := New(c, opts)
	tb.Cleanup(s.Close)
	_, err = s.checkStartup(context.Background(), opts)
	return s, logs, err
}

// checkMessage fails the test unless msg holds every one of want and no
// secret.
func checkMessage(tb testing.TB, what, msg string, want ...string) {
	tb.Helper()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			tb.Errorf("%s: %q does not mention %q", what, msg, w)
		}
	}
	if strings.Contains(msg, startupSecret) {
		tb.Errorf("%s: %q shows the password", what, msg)
	}
}

func TestUnreachableRedisAtStartup(t *testing.T) {
	t.Parallel()
	addr := unusedAddr(t)
	base := Options{
		Addresses: []string{addr}, Password: startupSecret,
		OnFailure: OnFailureDeny, BreakerFailures: 1,
		DialTimeout: caddy.Duration(200 * time.Millisecond),
	}

	t.Run("logs one error and decides by on_failure", func(t *testing.T) {
		t.Parallel()
		s, logs, err := startupStore(t, base)
		if err != nil {
			t.Fatalf("without require_store the check failed the load: %v", err)
		}
		entries := logs.FilterMessageSnippet("unreachable at start-up").All()
		if len(entries) != 1 || entries[0].Level != zapcore.ErrorLevel {
			t.Fatalf("want one error entry, got %+v", logs.All())
		}
		msg, _ := entries[0].ContextMap()["error"].(string)
		checkMessage(t, "log", msg, `redis store "startup"`, "standalone "+addr, "pinging")
		// The failed ping opened the breaker (breaker_failures 1): a
		// decision is denied at once, without asking Redis.
		if st := s.g.main.cb.State(); st != gobreaker.StateOpen {
			t.Errorf("breaker %v after a failed start-up check, want open", st)
		}
		_, err = takeOne(context.Background(), s, req(lookup(t, "gcra"), "z", key("startup"), 1, time.Second, 1))
		checkPolicy(t, OnFailureDeny, algorithms.Decision{}, err)
	})

	t.Run("require_store fails the load", func(t *testing.T) {
		t.Parallel()
		opts := base
		opts.RequireStore = true
		_, logs, err := startupStore(t, opts)
		if err == nil {
			t.Fatal("with require_store an unreachable redis passed the check")
		}
		t.Log(err)
		checkMessage(t, "error", err.Error(), "require_store", `redis store "startup"`, "standalone "+addr, "no answer within 200ms")
		if n := logs.Len(); n != 1 { // the breaker's own warning only
			t.Errorf("logged %d entries, want only the breaker's: %+v", n, logs.All())
		}
	})

	t.Run("the module refuses the config with require_store", func(t *testing.T) {
		t.Parallel()
		m := &Module{Options: base}
		m.RequireStore = true
		err := provision(t, m)
		if err == nil {
			t.Fatal("Provision succeeded against an unreachable redis with require_store")
		}
		checkMessage(t, "provision", err.Error(), `redis store "`, addr)
	})

	t.Run("the module starts without require_store", func(t *testing.T) {
		t.Parallel()
		m := &Module{Options: base}
		if err := provision(t, m); err != nil {
			t.Fatalf("Provision failed against an unreachable redis without require_store: %v", err)
		}
	})
}

func TestStartupCheckPassesOnAReachableRedis(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)
	s, logs, err := startupStore(t, Options{Addresses: []string{srv.Addr}, RequireStore: true})
	if err != nil || logs.Len() != 0 {
		t.Fatalf("check: %v, logs %+v", err, logs.All())
	}
	if st := s.g.main.cb.State(); st != gobreaker.StateClosed {
		t.Errorf("breaker %v, want closed", st)
	}
}

func TestMisconfigurationsGetClearErrors(t *testing.T) {
	t.Parallel()
	authed := startServer(t, "--requirepass", "the-right-one")
	plain := sharedServer(t)
	_, primaryPort, _ := net.SplitHostPort(startServer(t).Addr)
	sentinel := startSentinel(t, primaryPort)

	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"a wrong password", Options{Addresses: []string{authed.Addr}, Password: startupSecret},
			[]string{"standalone " + authed.Addr, "authentication failed", "WRONGPASS"}},
		{"no password", Options{Addresses: []string{authed.Addr}},
			[]string{"standalone " + authed.Addr, "authentication failed", "NOAUTH"}},
		{"a wrong password in a url", Options{URL: "redis://user:" + startupSecret + "@" + authed.Addr + "/0"},
			[]string{"url redis://" + authed.Addr + "/0", "authentication failed"}},
		{"a wrong sentinel master name", Options{SentinelMaster: "nope", SentinelAddresses: []string{sentinel.Addr},
			Password: startupSecret},
			[]string{`sentinel master "nope" via ` + sentinel.Addr, `master "nope"`, "sentinel_master"}},
		{"a standalone server given as a cluster", Options{Addresses: []string{plain.Addr, plain.Addr},
			Password: startupSecret},
			[]string{"cluster seed nodes " + plain.Addr + ", " + plain.Addr, "not a Redis Cluster node", "cluster support disabled"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.RequireStore = true
			tc.opts.DialTimeout = caddy.Duration(2 * time.Second)
			_, _, err := startupStore(t, tc.opts)
			if err == nil {
				t.Fatal("the start-up check passed")
			}
			t.Log(err)
			checkMessage(t, "error", err.Error(), append([]string{`redis store "startup"`}, tc.want...)...)
			if strings.Contains(err.Error(), "user:") {
				t.Errorf("the error shows the url's user information: %v", err)
			}
		})
	}
}

func TestModuleCaddyfileRequireStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  bool
		err   bool
	}{
		{"off by default", "store redis", false, false},
		{"on", "store redis {\nrequire_store\n}", true, false},
		{"with a value", "store redis {\nrequire_store yes\n}", false, true},
		{"given twice", "store redis {\nrequire_store\nrequire_store\n}", false, true},
	}
	for _, tc := range tests {
		var m Module
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if (err != nil) != tc.err {
			t.Errorf("%s: error = %v, want error %v", tc.name, err, tc.err)
			continue
		}
		if !tc.err && m.RequireStore != tc.want {
			t.Errorf("%s: RequireStore = %v, want %v", tc.name, m.RequireStore, tc.want)
		}
	}
}

func TestDiagnosisNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"a url with a password", Options{URL: "rediss://admin:" + startupSecret + "@redis.internal:6380/2"},
			`redis store "n" (url rediss://redis.internal:6380/2)`},
		{"a url that does not parse", Options{URL: "redis://u:" + startupSecret + "@host:6379\x7f/0"},
			`redis store "n" (url (not shown: it does not parse))`},
		{"shards in name order", Options{Shards: map[string]string{"b": "h2:1", "a": "h1:1"}},
			`redis store "n" (ring shards a=h1:1, b=h2:1)`},
		{"no topology", Options{}, `redis store "n"`},
	}
	for _, tc := range tests {
		d := tc.opts.diagnose("n")
		if d.where != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, d.where, tc.want)
		}
	}
	// go-redis's text is masked too, in case it ever quotes a secret.
	d := Options{Password: startupSecret}.diagnose("n")
	err := d.explain("doing", errors.New("dial redis://u:p@host:1 with "+startupSecret))
	if strings.Contains(err.Error(), startupSecret) || strings.Contains(err.Error(), "u:p@") {
		t.Errorf("explain kept a secret: %v", err)
	}
}

func TestMalformedRepliesAreErrorsNotPanics(t *testing.T) {
	t.Parallel()
	reqs := []store.Request{req(lookup(t, "gcra"), "z", key("r"), 5, time.Second, 1)}
	tests := []struct {
		name  string
		reply any
	}{
		{"nil", nil},
		{"a string", "OK"},
		{"an integer", int64(1)},
		{"too few values", []any{int64(1), int64(2)}},
		{"too many values", []any{int64(1), int64(0), int64(0), int64(0), int64(1)}},
		{"a string in the array", []any{int64(1), "4", int64(0), int64(0)}},
		{"a nested array", []any{[]any{int64(1)}, int64(4), int64(0), int64(0)}},
		{"a nil in the array", []any{nil, int64(4), int64(0), int64(0)}},
		{"an error in the array", []any{errors.New("ERR boom"), int64(4), int64(0), int64(0)}},
		{"allowed out of range", []any{int64(2), int64(4), int64(0), int64(0)}},
		{"a negative time", []any{int64(1), int64(4), int64(-1), int64(0)}},
	}
	for _, tc := range tests {
		out := make([]algorithms.Decision, 1)
		if err := parseReply(tc.reply, reqs, out); err == nil {
			t.Errorf("%s: parsed as %+v", tc.name, out[0])
		}
	}
	out := make([]algorithms.Decision, 1)
	if err := parseReply([]any{int64(1), int64(4), int64(0), int64(200000)}, reqs, out); err != nil ||
		!out[0].Allowed || out[0].Remaining != 4 || out[0].ResetAfter != 200*time.Millisecond {
		t.Errorf("a good reply: %+v, %v", out[0], err)
	}
}

func TestAKeyOfTheWrongTypeIsAStoreFailure(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	ctx := context.Background()
	for _, pipelined := range []bool{true, false} {
		for _, tc := range []struct {
			name  string
			alg   string
			id    algID
			plant func(k string) error
			want  string
		}{
			{"a list where gcra keeps a string", "gcra", algGCRA,
				func(k string) error { return c.RPush(ctx, k, "x").Err() }, "WRONGTYPE"},
			{"a string where sliding_log keeps a sorted set", "sliding_log", algSlidingLog,
				func(k string) error { return c.Set(ctx, k, "x", 0).Err() }, "WRONGTYPE"},
			{"a string that is no state", "token_bucket", algTokenBucket,
				func(k string) error { return c.Set(ctx, k, "garbage", 0).Err() }, "malformed state"},
		} {
			s, _ := guardedStore(t, c, Options{OnFailure: OnFailureDeny, BreakerFailures: 2,
				Timeout: caddy.Duration(10 * time.Second), Throughput: Throughput{DisablePipelining: !pipelined}})
			r := req(lookup(t, tc.alg), "z", key("wrongtype"), 5, time.Second, 1)
			if err := tc.plant(keyName(s.prefix, r.Zone, r.Key, tc.id)); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				_, err := takeOne(ctx, s, r)
				checkPolicy(t, OnFailureDeny, algorithms.Decision{}, err)
				if i == 0 && (err == nil || !strings.Contains(err.Error(), tc.want)) {
					t.Errorf("%s (pipelined %v): %v, want an error mentioning %s", tc.name, pipelined, err, tc.want)
				}
			}
			if st := s.g.main.cb.State(); st != gobreaker.StateOpen {
				t.Errorf("%s (pipelined %v): breaker %v after two failures, want open", tc.name, pipelined, st)
			}
		}
	}
}

package redis

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

func TestModuleCaddyfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  Options
		err   bool
	}{
		{"no block", `store redis`, Options{}, false},
		{"every option", `store redis main {
			address    10.0.0.1:6379 10.0.0.2:6379
			username   caddy
			password   {env.REDIS_PASSWORD}
			db         0
			key_prefix shop:
			timeout    20ms
			on_failure local
			breaker_failures 3
			breaker_cooldown 2s
		}`, Options{
			Addresses: []string{"10.0.0.1:6379", "10.0.0.2:6379"},
			Username:  "caddy", Password: "{env.REDIS_PASSWORD}",
			KeyPrefix: "shop:", Timeout: caddy.Duration(20 * time.Millisecond),
			OnFailure: OnFailureLocal, BreakerFailures: 3, BreakerCooldown: caddy.Duration(2 * time.Second),
		}, false},
		{"on_failure deny", "store redis {\non_failure deny\n}", Options{OnFailure: OnFailureDeny}, false},
		{"an unknown on_failure", "store redis {\non_failure retry\n}", Options{}, true},
		{"zero breaker_failures", "store redis {\nbreaker_failures 0\n}", Options{}, true},
		{"a bad breaker_cooldown", "store redis {\nbreaker_cooldown -1s\n}", Options{}, true},
		{"a url and a db", "store redis {\nurl rediss://redis.internal:6380\ndb 3\n}", Options{URL: "rediss://redis.internal:6380", DB: 3}, false},
		{"an option given twice", "store redis {\ndb 1\ndb 2\n}", Options{}, true},
		{"a missing value", "store redis {\npassword\n}", Options{}, true},
		{"an extra value", "store redis {\nurl a b\n}", Options{}, true},
		{"a negative db", "store redis {\ndb -1\n}", Options{}, true},
		{"a bad timeout", "store redis {\ntimeout soon\n}", Options{}, true},
		{"both url and address", "store redis {\nurl redis://x\naddress y:1\n}", Options{}, true},
		{"an unknown option", "store redis {\ncluster x\n}", Options{}, true},
	}
	for _, tc := range tests {
		var m Module
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if (err != nil) != tc.err {
			t.Errorf("%s: error = %v, want error %v", tc.name, err, tc.err)
			continue
		}
		if !tc.err && !reflect.DeepEqual(m.Options, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, m.Options, tc.want)
		}
	}
}

// provision provisions m in the context of a fresh Caddy config and cleans
// it up when the test ends. Each store gets a name of its own: stores of
// the same name are one store across configs (a new one takes over the
// outage of the one it replaces; see inherit.go).
func provision(tb testing.TB, m *Module) error {
	tb.Helper()
	ctx := configContext(tb, fmt.Sprintf("default-%d", storeSeq.Add(1)))
	if err := m.Provision(ctx); err != nil {
		return err
	}
	tb.Cleanup(func() { _ = m.Cleanup() })
	return nil
}

func TestModuleExpandsPlaceholdersAndPoolsClients(t *testing.T) {
	srv := startServer(t, "--requirepass", "s3cret-pw")
	t.Setenv("RW_TEST_REDIS_ADDR", srv.Addr)
	t.Setenv("RW_TEST_REDIS_PASSWORD", "s3cret-pw")
	opts := Options{
		Addresses: []string{"{env.RW_TEST_REDIS_ADDR}"},
		Password:  "{env.RW_TEST_REDIS_PASSWORD}",
		KeyPrefix: "mod:",
		Timeout:   caddy.Duration(5 * time.Second),
	}
	old, cur := &Module{Options: opts}, &Module{Options: opts}
	if err := provision(t, old); err != nil {
		t.Fatal(err)
	}
	if err := provision(t, cur); err != nil {
		t.Fatal(err)
	}
	if old.Store.c != cur.Store.c {
		t.Error("two configs with the same connection got different clients")
	}
	if old.Password != "{env.RW_TEST_REDIS_PASSWORD}" {
		t.Error("Provision replaced the configured placeholder, which the JSON config would then show")
	}

	r := req(lookup(t, "gcra"), "z", key("pool"), 2, time.Hour, 1)
	take(t, cur, r)
	// A reload releases the old config: the shared client stays open.
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if out := take(t, cur, r); out[0].Remaining != 0 {
		t.Errorf("after the old config's cleanup: %+v", out[0])
	}
	// The last user closes it.
	client := cur.Store.c.(goredis.UniversalClient)
	if err := cur.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(context.Background()).Err(); err == nil {
		t.Error("the pooled client is still open after its last user's cleanup")
	}
}

func TestModuleRefusesABadFailurePolicy(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{{OnFailure: "retry"}, {BreakerFailures: -1}, {BreakerCooldown: -1}} {
		if err := provision(t, &Module{Options: opts}); err == nil {
			t.Errorf("%+v: provisioned", opts)
		}
	}
}

func TestModuleFallsBackLocallyWhenConfigured(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	m := &Module{Options: Options{
		Addresses: []string{srv.Addr}, KeyPrefix: "mod-local:",
		Timeout: caddy.Duration(time.Second), OnFailure: OnFailureLocal,
	}}
	if err := provision(t, m); err != nil {
		t.Fatal(err)
	}
	r := req(lookup(t, "gcra"), "z", key("mod-local"), 2, time.Hour, 1)
	take(t, m, r)
	srv.stop()
	// Redis is gone: the local limiter decides, from an empty counter.
	for i, want := range []bool{true, true, false} {
		if out := take(t, m, r); out[0].Allowed != want {
			t.Errorf("local decision %d: %+v, want allowed %v", i, out[0], want)
		}
	}
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	srv := startServer(t, "--requirepass", "the-right-one")

	// A malformed URL: url.Parse would quote it, password and all.
	_, err := NewClient(Options{URL: "redis://user:" + secret + "@host:6379\x7f/0"})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("malformed url: %v", err)
	}

	// A wrong password: the decision fails without naming it.
	c, err := NewClient(Options{Addresses: []string{srv.Addr}, Password: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s := New(c, Options{Timeout: caddy.Duration(5 * time.Second)})
	out := make([]algorithms.Decision, 1)
	err = s.Take(context.Background(), []store.Request{req(lookup(t, "gcra"), "z", key("pw"), 1, time.Second, 1)}, out)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("wrong password: %v", err)
	}
}

func TestTakeGivesUpAtTheTimeoutOnAHungServer(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := srv.client(t)
	s := New(c, Options{Timeout: caddy.Duration(50 * time.Millisecond)})
	r := req(lookup(t, "gcra"), "z", key("hung"), 5, time.Second, 1)
	// Connect and load the script first, with room for a busy machine.
	take(t, New(c, Options{Timeout: caddy.Duration(5 * time.Second)}), r)

	resume := srv.pause(t)

	start := time.Now()
	err := s.Take(context.Background(), []store.Request{r}, make([]algorithms.Decision, 1))
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Take on a stopped server succeeded")
	}
	// Generous for -race on a small machine, far below go-redis's 3s
	// read timeout.
	if elapsed > 500*time.Millisecond {
		t.Errorf("Take waited %v on a stopped server with a 50ms timeout", elapsed)
	}
	resume()
	s.timeout = 5 * time.Second
	if out := take(t, s, r); !out[0].Allowed {
		t.Errorf("after SIGCONT: %+v", out[0])
	}
}

func TestTakeRefusesWhatTheLuaTwinsCannotDecide(t *testing.T) {
	t.Parallel()
	s := testStore(t, sharedServer(t).client(t))
	tests := []struct {
		name string
		r    store.Request
	}{
		{"an algorithm with no Lua twin", store.Request{Zone: "z", Algorithm: foreign{}, Policy: algorithms.Policy{Limit: 1}, Cost: 1}},
		{"no algorithm", store.Request{Zone: "z", Policy: algorithms.Policy{Limit: 1}, Cost: 1}},
		{"a token bucket past the precision bound", req(lookup(t, "token_bucket"), "z", key("big"), 50_000, 24*time.Hour, 1)},
	}
	for _, tc := range tests {
		err := s.Take(context.Background(), []store.Request{tc.r}, make([]algorithms.Decision, 1))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// foreign is a third-party algorithm: the Redis store cannot run it.
type foreign struct{}

func (foreign) Name() string { return "foreign" }
func (foreign) Take(s algorithms.State, _ time.Time, p algorithms.Policy, _ int64) (algorithms.State, algorithms.Decision) {
	return s, algorithms.Decision{Allowed: true, Limit: p.Limit}
}

func TestCheckPolicyBounds(t *testing.T) {
	t.Parallel()
	day, year := 24*time.Hour, 365*24*time.Hour
	tests := []struct {
		alg    string
		policy algorithms.Policy
		ok     bool
	}{
		{"token_bucket", algorithms.Policy{Limit: 45_000, Window: day}, true},
		{"token_bucket", algorithms.Policy{Limit: 46_000, Window: day}, false},
		{"token_bucket", algorithms.Policy{Limit: 1_000_000, Window: time.Hour}, true},
		{"token_bucket", algorithms.Policy{Limit: 1, Window: 20 * year}, false},
		{"sliding_window", algorithms.Policy{Limit: 90_000, Window: day}, true},
		{"sliding_window", algorithms.Policy{Limit: 92_000, Window: day}, false},
		{"gcra", algorithms.Policy{Limit: 1 << 40, Window: time.Second, Burst: 1 << 40}, true},
		{"gcra", algorithms.Policy{Limit: 1, Window: 30 * year, Burst: 2}, false},
		{"sliding_log", algorithms.Policy{Limit: 1 << 50, Window: time.Hour}, true},
		{"fixed_window", algorithms.Policy{Limit: 1<<50 + 1, Window: time.Hour}, false},
		{"fixed_window", algorithms.Policy{Limit: 10, Window: 36 * year}, false},
		{"concurrency", algorithms.Policy{Limit: 10}, true},
		{"concurrency", algorithms.Policy{Limit: 0, Window: time.Second}, true},
	}
	for _, tc := range tests {
		err := CheckPolicy(lookup(t, tc.alg), tc.policy)
		if (err == nil) != tc.ok {
			t.Errorf("%s %+v: %v, want ok %v", tc.alg, tc.policy, err, tc.ok)
		}
	}
	if err := CheckPolicy(foreign{}, algorithms.Policy{Limit: 1}); err == nil {
		t.Error("a foreign algorithm passed")
	}
}

func TestModuleCaddyfileThroughput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		input string
		want  Throughput
		err   string
	}{
		{"defaults", `store redis { address 127.0.0.1:6379 }`, Throughput{}, ""},
		{"every option", `store redis {
			address 127.0.0.1:6379
			pipelining off
			pipeline_max_batch 64
			pipeline_width 2
			deny_cache 500
		}`, Throughput{DisablePipelining: true, PipelineMaxBatch: 64, PipelineWidth: 2, DenyCache: 500}, ""},
		{"bare deny_cache", `store redis {
			address 127.0.0.1:6379
			deny_cache
		}`, Throughput{DenyCache: DefaultDenyCacheSize}, ""},
		{"bad pipelining", `store redis {
			pipelining maybe
		}`, Throughput{}, "pipelining must be on or off"},
		{"bad batch", `store redis {
			pipeline_max_batch 0
		}`, Throughput{}, "pipeline_max_batch must be a whole number greater than zero"},
		{"bad deny_cache", `store redis {
			deny_cache -3
		}`, Throughput{}, "deny_cache must be a whole number"},
		{"deny_cache twice", `store redis {
			deny_cache
			deny_cache 5
		}`, Throughput{}, "specified more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var m Module
			err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Throughput != tc.want {
				t.Errorf("throughput %+v, want %+v", m.Throughput, tc.want)
			}
		})
	}
}

// The local policy's counters survive a config reload during an outage:
// the new config's store decides from the same limiter, and the limiter
// goes when the last config using it does.
func TestLocalFallbackCountersSurviveAReload(t *testing.T) {
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("local-reload-%d", storeSeq.Add(1))
	opts := Options{
		Addresses: []string{fmt.Sprintf("127.0.0.1:%d", port)}, // nothing listens
		Timeout:   caddy.Duration(time.Second), OnFailure: OnFailureLocal,
	}
	load := func() *Module {
		m := &Module{Options: opts}
		if err := m.Provision(configContext(t, name)); err != nil {
			t.Fatal(err)
		}
		return m
	}
	r := req(lookup(t, "gcra"), "z", key("reload"), 2, time.Hour, 1)
	first := load()
	for i, want := range []bool{true, true, false} {
		if out := take(t, first, r); out[0].Allowed != want {
			t.Fatalf("decision %d before the reload: %+v, want allowed %v", i, out[0], want)
		}
	}
	second := load()
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if out := take(t, second, r); out[0].Allowed {
		t.Errorf("after the reload the local limiter admitted again: %+v", out[0])
	}
	if err := second.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, ok := locals.References(name); ok || n != 0 {
		t.Errorf("the fallback limiter is still pooled after the last config went: %d references", n)
	}
}

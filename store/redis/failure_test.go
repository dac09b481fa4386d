package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// Breaker states as the breaker_state gauge reports them.
const (
	gaugeClosed, gaugeHalfOpen, gaugeOpen = 0, 1, 2
)

// Snippets of the breaker's log messages.
const (
	logOpened   = "circuit breaker open, on_failure"
	logReopened = "circuit breaker open again"
	logHalfOpen = "circuit breaker half-open"
	logClosed   = "circuit breaker closed"
)

// guardedStore returns a store on c with the failure settings of opts, and
// a name (its metrics' label) and key prefix of its own, logging to the
// returned observer.
func guardedStore(tb testing.TB, c Client, opts Options) (*Store, *observer.ObservedLogs) {
	tb.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	opts.Name = fmt.Sprintf("t%d:%s", storeSeq.Add(1), tb.Name())
	opts.KeyPrefix = opts.Name + ":"
	opts.Logger = zap.New(core)
	s := New(c, opts)
	tb.Cleanup(s.Close)
	return s, logs
}

// value reads a counter's or a gauge's value, or a histogram's count.
func value(tb testing.TB, m any) float64 {
	tb.Helper()
	var d dto.Metric
	if err := m.(prometheus.Metric).Write(&d); err != nil {
		tb.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	return float64(d.GetHistogram().GetSampleCount())
}

// logged counts the log entries whose message contains snippet.
func logged(logs *observer.ObservedLogs, snippet string) int {
	return logs.FilterMessageSnippet(snippet).Len()
}

// takeOne calls s.Take for r and returns its decision and error.
func takeOne(ctx context.Context, s *Store, r store.Request) (algorithms.Decision, error) {
	out := make([]algorithms.Decision, 1)
	err := s.Take(ctx, []store.Request{r}, out)
	return out[0], err
}

// checkPolicy fails the test unless err is what policy returns when Redis
// cannot decide, and reports whether the local policy admitted.
func checkPolicy(tb testing.TB, policy string, d algorithms.Decision, err error) (admitted bool) {
	tb.Helper()
	var unavailable *store.UnavailableError
	switch policy {
	case OnFailureAllow:
		if err == nil || errors.As(err, &unavailable) {
			tb.Fatalf("allow: got error %v, want a plain error", err)
		}
	case OnFailureDeny:
		if !errors.As(err, &unavailable) || unavailable.RetryAfter <= 0 {
			tb.Fatalf("deny: got error %v, want an UnavailableError with a Retry-After", err)
		}
	case OnFailureLocal:
		if err != nil {
			tb.Fatalf("local: got error %v, want a local decision", err)
		}
		return d.Allowed
	}
	return false
}

// TestOpenBreakerAppliesOnFailureWithoutWaiting is not parallel: it times
// single calls in microseconds, which other tests on a small machine
// would disturb.
func TestOpenBreakerAppliesOnFailureWithoutWaiting(t *testing.T) {
	const failures, limit, calls = 3, 10, 1000
	const timeout = 50 * time.Millisecond
	for _, policy := range []string{OnFailureAllow, OnFailureDeny, OnFailureLocal} {
		t.Run(policy, func(t *testing.T) {
			srv := startServer(t)
			s, logs := guardedStore(t, srv.client(t), Options{
				Timeout: caddy.Duration(timeout), OnFailure: policy,
				BreakerFailures: failures, BreakerCooldown: caddy.Duration(time.Minute),
			})
			r := req(lookup(t, "gcra"), "z", key("dead"), limit, time.Hour, 1)
			take(t, s, r)
			srv.stop()

			admitted := 0
			for range failures {
				d, err := takeOne(context.Background(), s, r)
				if checkPolicy(t, policy, d, err) {
					admitted++
				}
			}
			if got := value(t, s.g.m.state); got != gaugeOpen {
				t.Fatalf("breaker state %v after %d failures, want open", got, failures)
			}

			var slowest time.Duration
			slow := 0
			start := time.Now()
			for range calls {
				t0 := time.Now()
				d, err := takeOne(context.Background(), s, r)
				took := time.Since(t0)
				slowest = max(slowest, took)
				if took > 5*time.Millisecond {
					slow++
				}
				if checkPolicy(t, policy, d, err) {
					admitted++
				}
			}
			total := time.Since(start)
			t.Logf("%s: %d decisions with the breaker open in %v, slowest %v, %d over 5ms", policy, calls, total, slowest, slow)
			// A call that waited on Redis would take the whole 50ms
			// timeout: 1000 of them, 50s. Open-breaker calls take
			// microseconds; the bounds leave room for a busy machine's
			// stalls (the odd call descheduled for tens of ms). The take
			// durations below show that no call reached Redis at all.
			if slow > calls/20 || total > calls*timeout/20 {
				t.Errorf("an open breaker still waits: %d calls over 5ms, slowest %v, all %d in %v", slow, slowest, calls, total)
			}
			if policy == OnFailureLocal && admitted != limit {
				t.Errorf("the local limiter admitted %d, want exactly the limit %d", admitted, limit)
			}
			for _, m := range []struct {
				name      string
				got, want float64
			}{
				{"store errors", value(t, s.g.m.errors), failures},
				{"take durations", value(t, s.g.m.take), 1 + failures},
				{"fallback decisions", value(t, s.g.m.fallback), failures + calls},
			} {
				if m.got != m.want {
					t.Errorf("%s = %v, want %v", m.name, m.got, m.want)
				}
			}
			if n := logged(logs, logOpened); n != 1 {
				t.Errorf("logged the opening %d times, want once", n)
			}
		})
	}
}

func TestDenialsAndCancelledCallsAreNotFailures(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s, _ := guardedStore(t, srv.client(t), Options{
		Timeout: caddy.Duration(50 * time.Millisecond), BreakerFailures: 2,
	})
	r := req(lookup(t, "gcra"), "z", key("not-failures"), 1, time.Hour, 1)
	for i := range 10 {
		if d, err := takeOne(context.Background(), s, r); err != nil || d.Allowed != (i == 0) {
			t.Fatalf("call %d: %+v, %v", i, d, err)
		}
	}
	srv.pause(t)
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := takeOne(ctx, s, r)
		cancel()
		if err == nil {
			t.Fatal("a call on a stopped server succeeded")
		}
	}
	if st, errs, fb := value(t, s.g.m.state), value(t, s.g.m.errors), value(t, s.g.m.fallback); st != gaugeClosed || errs != 0 || fb != 0 {
		t.Errorf("after denials and cancelled calls: state %v, errors %v, fallbacks %v; want all 0", st, errs, fb)
	}
	for range 2 {
		_, _ = takeOne(context.Background(), s, r)
	}
	if got := value(t, s.g.m.state); got != gaugeOpen {
		t.Errorf("breaker state %v after 2 timeouts, want open", got)
	}
}

// TestHungServerBoundsEveryDecision measures the latency a SIGSTOPped
// Redis adds, then checks recovery after SIGCONT. Its workers send a
// decision every millisecond, like clients do, rather than spinning, which
// on a small machine would measure the Go scheduler instead. It is not
// parallel, for the same reason.
func TestHungServerBoundsEveryDecision(t *testing.T) {
	const timeout, cooldown = 50 * time.Millisecond, 200 * time.Millisecond
	const workers, outage, pace = 8, time.Second, time.Millisecond
	srv := startServer(t)
	c := srv.client(t)
	s, logs := guardedStore(t, c, Options{Timeout: caddy.Duration(timeout), BreakerCooldown: caddy.Duration(cooldown)})
	alg := lookup(t, "gcra")
	take(t, s, req(alg, "z", key("warm"), 100, time.Hour, 1))

	resume := srv.pause(t)
	var mu sync.Mutex
	var durations []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(outage)
	for w := range workers {
		wg.Go(func() {
			var mine []time.Duration
			r := req(alg, "z", key(fmt.Sprint("hung", w)), 100, time.Hour, 1)
			for time.Now().Before(end) {
				t0 := time.Now()
				_, err := takeOne(context.Background(), s, r)
				mine = append(mine, time.Since(t0))
				if err == nil {
					t.Error("a decision on a stopped server succeeded")
					return
				}
				time.Sleep(pace)
			}
			mu.Lock()
			durations = append(durations, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(durations)
	pct := func(p float64) time.Duration { return durations[int(p*float64(len(durations)-1))] }
	waited := value(t, s.g.m.take) - 1
	t.Logf("SIGSTOP, timeout %v, cooldown %v, %d workers: %d decisions, %v reached redis; p50 %v, p99 %v, max %v",
		timeout, cooldown, workers, len(durations), waited, pct(.5), pct(.99), durations[len(durations)-1])
	// The slack covers -race and a busy two-CPU machine, where a timer
	// can fire tens of milliseconds late; the target is a p99
	// under timeout + 5ms.
	if worst := durations[len(durations)-1]; worst > 3*timeout {
		t.Errorf("a decision waited %v with a %v timeout", worst, timeout)
	}
	if p99 := pct(.99); p99 > timeout+5*time.Millisecond {
		t.Errorf("p99 %v, want under timeout + 5ms", p99)
	}
	if n := logged(logs, logOpened); n != 1 {
		t.Errorf("logged the opening %d times, want once", n)
	}

	resume()
	after := req(alg, "z", key("after"), 100, time.Hour, 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := takeOne(context.Background(), s, after); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no decision from redis 5s after SIGCONT")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := value(t, s.g.m.state); got != gaugeClosed {
		t.Errorf("breaker state %v after recovery, want closed", got)
	}
	id, _ := idOf(alg)
	if n, err := c.Exists(context.Background(), keyName(s.prefix, "z", key("after"), id)).Result(); err != nil || n != 1 {
		t.Errorf("after recovery the key is not in redis: %d, %v", n, err)
	}
	probes, reopened := logged(logs, logHalfOpen), logged(logs, logReopened)
	if logged(logs, logOpened) != 1 || logged(logs, logClosed) != 1 || probes < 1 || probes != reopened+1 {
		t.Errorf("transitions logged: %d opened, %d half-open, %d open again, %d closed; want 1, n+1, n, 1",
			logged(logs, logOpened), probes, reopened, logged(logs, logClosed))
	}
	for _, e := range logs.FilterMessageSnippet(logOpened).All() {
		if e.Level != zapcore.WarnLevel || e.ContextMap()["last_error"] == "" {
			t.Errorf("opening logged as %v with fields %v", e.Level, e.ContextMap())
		}
	}
}

func TestStoreRecoversFromARestartWithoutPersistence(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := srv.client(t)
	s, _ := guardedStore(t, c, Options{
		Timeout: caddy.Duration(2 * time.Second), OnFailure: OnFailureDeny,
		BreakerCooldown: caddy.Duration(100 * time.Millisecond),
	})
	r := req(lookup(t, "gcra"), "z", key("restart"), 5, time.Hour, 1)
	take(t, s, r)
	if out := take(t, s, r); out[0].Remaining != 3 {
		t.Fatalf("before the restart: %+v", out[0])
	}

	srv.restart(t)
	deadline := time.Now().Add(5 * time.Second)
	var d algorithms.Decision
	for {
		var err error
		if d, err = takeOne(context.Background(), s, r); err == nil {
			break
		}
		checkPolicy(t, OnFailureDeny, d, err)
		if time.Now().After(deadline) {
			t.Fatalf("no decision from the restarted server: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The counters went with the old process: the new one starts afresh.
	if d.Remaining != 4 {
		t.Errorf("first decision after the restart: %+v, want 4 remaining", d)
	}
	if ok, err := c.ScriptExists(context.Background(), takeScript.Hash()).Result(); err != nil || !ok[0] {
		t.Errorf("the take script was not reloaded: %v, %v", ok, err)
	}
}

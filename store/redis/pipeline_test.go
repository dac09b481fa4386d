package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/store"
)

// pipelinedStore returns a store on c that pipelines with t, with metrics
// and a key prefix of its own and a generous timeout.
func pipelinedStore(tb testing.TB, c Client, t Throughput) *Store {
	tb.Helper()
	name := fmt.Sprintf("t%d:%s", storeSeq.Add(1), tb.Name())
	s := New(c, Options{Name: name, KeyPrefix: name + ":", Timeout: caddy.Duration(10 * time.Second)})
	return s.WithThroughput(t)
}

// batchesAbove returns how many pipelines sent more than n calls.
func batchesAbove(tb testing.TB, s *Store, n float64) uint64 {
	tb.Helper()
	var d dto.Metric
	if err := s.g.m.batchSize.(prometheus.Metric).Write(&d); err != nil {
		tb.Fatal(err)
	}
	h := d.GetHistogram()
	below := uint64(0)
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == n {
			below = b.GetCumulativeCount()
		}
	}
	return h.GetSampleCount() - below
}

// hammer has workers goroutines call Take with r attempts times each and
// returns how many were admitted. It calls between once, after half the
// calls.
func hammer(t *testing.T, s *Store, r store.Request, workers, attempts int, between func()) int64 {
	t.Helper()
	var admitted, done atomic.Int64
	var once sync.Once
	half := int64(workers * attempts / 2)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range attempts {
				d, err := takeOne(context.Background(), s, r)
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
				if done.Add(1) == half && between != nil {
					once.Do(between)
				}
			}
		})
	}
	wg.Wait()
	return admitted.Load()
}

func TestPipelinedTakeAdmitsExactlyTheLimit(t *testing.T) {
	t.Parallel()
	const limit, workers, attempts = 200, 64, 8
	c := sharedServer(t).client(t)
	for _, name := range []string{"gcra", "token_bucket", "sliding_log", "fixed_window", "sliding_window"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// One pipeline at a time, so concurrent calls must queue and
			// share pipelines.
			s := pipelinedStore(t, c, Throughput{PipelineWidth: 1})
			r := req(lookup(t, name), "z", key(name), limit, time.Hour, 1)
			if got := hammer(t, s, r, workers, attempts, nil); got != limit {
				t.Errorf("admitted %d of %d calls with limit %d", got, workers*attempts, limit)
			}
			if n := batchesAbove(t, s, 1); n == 0 {
				t.Errorf("64 concurrent callers never shared a pipeline: %v pipelines of one", value(t, s.g.m.batchSize))
			}
			if trips, calls := value(t, s.g.m.roundTrips), float64(workers*attempts); trips >= calls {
				t.Errorf("%v round trips for %v calls", trips, calls)
			}
		})
	}
}

func TestPipelinedTakeRecoversFromAScriptFlush(t *testing.T) {
	t.Parallel()
	const limit, workers, attempts = 300, 32, 16
	srv := startServer(t)
	c := srv.client(t)
	s := pipelinedStore(t, c, Throughput{})
	r := req(lookup(t, "fixed_window"), "z", key("flush"), limit, time.Hour, 1)
	flushed := false
	got := hammer(t, s, r, workers, attempts, func() {
		flushed = c.ScriptFlush(context.Background()).Err() == nil
	})
	if !flushed {
		t.Fatal("SCRIPT FLUSH failed")
	}
	if got != limit {
		t.Errorf("admitted %d with limit %d across a SCRIPT FLUSH", got, limit)
	}
	// The pipelines after the flush got NOSCRIPT and went again with EVAL.
	if n := commandCalls(t, c, "eval"); n == 0 {
		t.Error("no EVAL after SCRIPT FLUSH: the flush did not hit the pipelines")
	}
	if ok, err := c.ScriptExists(context.Background(), takeScript.Hash()).Result(); err != nil || !ok[0] {
		t.Errorf("script not cached after the fallback: %v %v", ok, err)
	}
}

// commandCalls returns how many times the server ran cmd, from INFO
// commandstats.
func commandCalls(tb testing.TB, c *goredis.Client, cmd string) int64 {
	tb.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		var n int64
		fmt.Sscanf(rest, "%d", &n)
		return n
	}
	return 0
}

func TestPipelinedTakeHonoursTheTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	const workers = 16
	srv := startServer(t)
	c := srv.client(t)
	s, _ := guardedStore(t, c, Options{Timeout: caddy.Duration(timeout), BreakerFailures: workers * 4})
	r := req(lookup(t, "gcra"), "z", key("hung"), 100, time.Hour, 1)
	take(t, s, r)
	failures := value(t, s.g.m.errors)

	resume := srv.pause(t)
	var worst atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			t0 := time.Now()
			if _, err := takeOne(context.Background(), s, r); err == nil {
				t.Error("a pipelined decision on a stopped server succeeded")
			}
			for d := int64(time.Since(t0)); ; {
				w := worst.Load()
				if d <= w || worst.CompareAndSwap(w, d) {
					break
				}
			}
		})
	}
	wg.Wait()
	resume()
	// The slack covers -race on a busy two-CPU machine.
	if w := time.Duration(worst.Load()); w > 3*timeout {
		t.Errorf("a pipelined decision waited %v with a %v timeout", w, timeout)
	}
	if got := value(t, s.g.m.errors) - failures; got != workers {
		t.Errorf("%v failures counted by the breaker, want %d", got, workers)
	}
}

func TestPipeliningCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	s := pipelinedStore(t, c, Throughput{DisablePipelining: true})
	if s.batch != nil {
		t.Fatal("pipelining is on")
	}
	r := req(lookup(t, "gcra"), "z", key("off"), 10, time.Hour, 1)
	// Loaded, so that no call needs a second trip for NOSCRIPT.
	if err := takeScript.Load(context.Background(), c).Err(); err != nil {
		t.Fatal(err)
	}
	if got := hammer(t, s, r, 8, 4, nil); got != 10 {
		t.Errorf("admitted %d with limit 10", got)
	}
	if trips := value(t, s.g.m.roundTrips); trips != 32 {
		t.Errorf("%v round trips for 32 unpipelined calls", trips)
	}
	if n := value(t, s.g.m.batchSize); n != 0 {
		t.Errorf("%v batches observed with pipelining off", n)
	}
}

func TestThroughputValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    Throughput
		ok   bool
	}{
		{"zero is the defaults", Throughput{}, true},
		{"negative batch", Throughput{PipelineMaxBatch: -1}, false},
		{"negative width", Throughput{PipelineWidth: -1}, false},
		{"negative cache", Throughput{DenyCache: -1}, false},
	} {
		if err := tc.t.validate(); (err == nil) != tc.ok {
			t.Errorf("%s: validate() = %v", tc.name, err)
		}
	}
}

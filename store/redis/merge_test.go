package redis

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// command builds the take script command Store.eval sends for keys, with
// the given time and dry flag and one GCRA request per key.
func command(keys []string, now any, dry int) []any {
	cmd := appendCommand(nil, keys)
	cmd = append(cmd, now, int64(1), dry)
	for range keys {
		cmd = append(cmd, int64(algGCRA), int64(10), int64(1000), int64(10), int64(1), int64(0))
	}
	return cmd
}

func TestMergeCommandsLaysOutOneBatch(t *testing.T) {
	a := command([]string{"k1"}, "", 0)
	b := command([]string{"k2", "k3"}, "", 0)
	merged, ok := mergeCommands([][]any{a, b})
	if !ok {
		t.Fatal("two plain calls were not merged")
	}
	// The mode word gives each call's number of requests.
	if mode := merged[cmdKeys+3+2]; mode != "b1,2" {
		t.Errorf("mode %v, want b1,2 (sizes 1 and 2)", mode)
	}
	want := []any{evalShaName, takeHash, int64(3), "k1", "k2", "k3", "", int64(1), "b1,2"}
	want = append(want, a[cmdKeys+1+cmdHeader:]...)
	want = append(want, b[cmdKeys+2+cmdHeader:]...)
	if !reflect.DeepEqual(merged, want) {
		t.Errorf("merged\n%v\nwant\n%v", merged, want)
	}
	if len(merged) != commandLen(3) {
		t.Errorf("merged command has %d words, want %d", len(merged), commandLen(3))
	}
}

func TestMergeCommandsRefusesCallsThatDiffer(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmds [][]any
	}{
		{"a dry run", [][]any{command([]string{"k1"}, "", 0), command([]string{"k2"}, "", 1)}},
		{"different times", [][]any{command([]string{"k1"}, int64(5), 0), command([]string{"k2"}, int64(6), 0)}},
		{"a command of the wrong length", [][]any{command([]string{"k1"}, "", 0), command([]string{"k2"}, "", 0)[:8]}},
	} {
		if _, ok := mergeCommands(tc.cmds); ok {
			t.Errorf("%s: merged", tc.name)
		}
	}
}

// TestMergedBatchesAreAllOrNothingPerCall sends calls of two zones each,
// merged into batches: every call is decided on its own, all or nothing,
// so the wide zone is charged exactly as often as the narrow one admits.
func TestMergedBatchesAreAllOrNothingPerCall(t *testing.T) {
	t.Parallel()
	const narrowLimit, workers, attempts = 40, 48, 4
	srv := startServer(t)
	c := srv.client(t)
	s := pipelinedStore(t, c, Throughput{PipelineWidth: 1})
	gcra, fixed := lookup(t, "gcra"), lookup(t, "fixed_window")
	wide := req(gcra, "wide", key("k"), 1000, time.Hour, 1)
	narrow := req(fixed, "narrow", key("k"), narrowLimit, time.Hour, 1)

	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range attempts {
				out := make([]algorithms.Decision, 2)
				if err := s.Take(context.Background(), []store.Request{wide, narrow}, out); err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if out[1].Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != narrowLimit {
		t.Errorf("narrow zone admitted %d, want %d", got, narrowLimit)
	}
	d, err := s.Inspect(context.Background(), wide)
	if err != nil {
		t.Fatal(err)
	}
	if charged := 1000 - d.Remaining; charged != narrowLimit {
		t.Errorf("wide zone charged %d times, want %d (only the calls the narrow zone admitted)", charged, narrowLimit)
	}
	// Merged: Redis ran fewer scripts than there were calls, one per
	// pipeline.
	calls, trips := commandCalls(t, c, "evalsha")+commandCalls(t, c, "eval"), int64(value(t, s.g.m.roundTrips))
	if n := batchesAbove(t, s, 1); n == 0 {
		t.Fatal("no pipeline carried more than one call")
	}
	if calls != trips {
		t.Errorf("Redis ran %d scripts for %d pipelines, want one per pipeline", calls, trips)
	}
}

// TestABadCallInABatchFailsAlone sends a merged batch in which one call
// has arguments the script refuses and another finds its key holding a
// value of the wrong type: those two calls fail, each with its own error,
// and write nothing; the others are decided and charged.
func TestABadCallInABatchFailsAlone(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	s := pipelinedStore(t, c, Throughput{})
	ctx := context.Background()
	names := []string{"good1", "bad", "wrongtype", "good2"}
	cmds := make([][]any, len(names))
	for i, n := range names {
		cmds[i] = command([]string{s.prefix + n}, "", 0)
		cmds[i][len(cmds[i])-5] = int64(1000)          // limit
		cmds[i][len(cmds[i])-4] = int64(3_600_000_000) // an hour, in µs
	}
	cmds[1][len(cmds[1])-6] = int64(99) // no such algorithm
	if err := c.HSet(ctx, s.prefix+"wrongtype", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	calls := make([]*scriptCall, len(cmds))
	for i, cmd := range cmds {
		calls[i] = &scriptCall{ctx: ctx, deadline: time.Now().Add(time.Second), cmd: cmd, done: make(chan struct{})}
	}
	s.batch.send(calls)
	for i, call := range calls {
		<-call.done
		bad := names[i] == "bad" || names[i] == "wrongtype"
		if bad != (call.err != nil) {
			t.Errorf("call %s: reply %v, error %v", names[i], call.reply, call.err)
		}
	}
	if err := calls[2].err; err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("wrong-type call's error %v, want Redis's WRONGTYPE", err)
	}
	for _, n := range []string{"good1", "good2"} {
		if ttl, err := c.PTTL(ctx, s.prefix+n).Result(); err != nil || ttl <= 0 {
			t.Errorf("call %s of a batch with failed calls was not charged: PTTL %v, %v", n, ttl, err)
		}
	}
	if n, err := c.Exists(ctx, s.prefix+"bad").Result(); err != nil || n != 0 {
		t.Errorf("the bad call wrote its key: %d, %v", n, err)
	}
}

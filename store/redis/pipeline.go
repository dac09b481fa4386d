package redis

import (
	"context"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Autopipelining.
//
// Each Take is one script call. Sent one by one, every call costs a round
// trip and a read and a write system call on both sides, and Redis spends
// more time on those than on the script. So concurrent calls are batched:
// a call that finds a free pipeline slot sends itself, together with every
// call queued behind it, as one pipeline; calls that arrive while all
// PipelineWidth slots are busy queue up and go in the next pipeline. Under
// load, pipelines fill by themselves while the previous ones are on the
// wire; a lone call is sent at once and waits for no timer.
//
// This batcher is ours rather than go-redis's AutoPipeliner because of the
// failure contract: the AutoPipeliner runs a queued command on its own
// long-lived context, so a caller's deadline is not honoured once queued
// (its documented behaviour). Its blocking face would make a decision wait
// for the socket's read timeout (3s by default) instead of the store's
// timeout (50ms), and a hung Redis would hold every request for that long.
// Here every caller waits at most until its own deadline, a call whose
// caller already gave up is dropped before it is sent (so it charges
// nothing), and a pipeline is bounded by the latest deadline of its calls.
// A caller that gives up counts as a failure in the breaker, exactly as an
// unpipelined call that times out. We also see each batch, which the metrics
// need, without adding hooks to a client that is shared across reloads.
// BenchmarkTakeParallel compares the two.
//
// A batch is one pipeline. On a standalone server or a Sentinel-managed
// primary, whose keys all live on one server, its calls are also merged
// into one script call (execMerged), so that Redis runs one script per
// batch instead of one per decision. On Cluster and Ring, each node has a
// batcher of its own (see breakers.go); a Ring shard's batches are merged
// too, a Cluster primary's are not (a script's keys must share a slot). Scripts a server has lost (NOSCRIPT, after a
// restart, a failover or SCRIPT FLUSH) are sent again with EVAL, which
// also loads them, in one more pipeline.

// Defaults of Throughput.
const (
	DefaultPipelineMaxBatch = 128
	DefaultPipelineWidth    = 2
	DefaultDenyCacheSize    = 10_000
)

// Throughput configures autopipelining and the cache of denied keys. Its
// fields are JSON-ready so that Options can embed it.
type Throughput struct {
	// DisablePipelining sends each decision on its own instead of batching
	// concurrent decisions into pipelines. Batching cuts Redis round trips
	// and CPU under concurrency and adds no wait to a lone decision, so
	// leave it on unless you are measuring. Default: false (pipelining on).
	DisablePipelining bool `json:"disable_pipelining,omitempty"`

	// PipelineMaxBatch is the most decisions sent in one pipeline. Larger
	// batches save round trips; each decision in a batch waits for the
	// whole batch. Default: 128. Example: 64.
	PipelineMaxBatch int `json:"pipeline_max_batch,omitempty"`

	// PipelineWidth is how many pipelines may be on the wire at once, each
	// on its own pooled connection. Fewer pipelines make larger batches,
	// which cost Redis and Caddy less CPU per decision; more let a batch
	// leave while another is still on the wire, which helps when Redis is
	// far away. With Redis on the same 2-core machine, 1 served the most
	// requests per second with the lowest p99, 2 nearly as many, 4 the
	// fewest (docs/benchmarks.md). Default: 2. Example: 1.
	PipelineWidth int `json:"pipeline_width,omitempty"`

	// DenyCache, when above zero, keeps up to this many denied keys in
	// memory and refuses them without asking Redis until their retry
	// time. See deniedcache.go for what this trades away. Default: 0 (off).
	// Example: 10000.
	DenyCache int `json:"deny_cache,omitempty"`
}

// withDefaults returns t with every zero field set to its default.
func (t Throughput) withDefaults() Throughput {
	if t.PipelineMaxBatch <= 0 {
		t.PipelineMaxBatch = DefaultPipelineMaxBatch
	}
	if t.PipelineWidth <= 0 {
		t.PipelineWidth = DefaultPipelineWidth
	}
	return t
}

// validate reports settings that cannot work.
func (t Throughput) validate() error {
	if t.PipelineMaxBatch < 0 {
		return fmt.Errorf("pipeline_max_batch must be positive, got %d", t.PipelineMaxBatch)
	}
	if t.PipelineWidth < 0 {
		return fmt.Errorf("pipeline_width must be positive, got %d", t.PipelineWidth)
	}
	if t.DenyCache < 0 {
		return fmt.Errorf("deny_cache must not be negative, got %d", t.DenyCache)
	}
	return nil
}

// WithThroughput sets how s batches decisions and whether it caches denied
// keys, and returns s. Call it before the store's first use.
func (s *Store) WithThroughput(t Throughput) *Store {
	t = t.withDefaults()
	s.batch = nil
	if p, ok := s.c.(pipelineClient); ok && !t.DisablePipelining {
		s.batch = &batcher{p: p, max: t.PipelineMaxBatch, width: t.PipelineWidth, m: &s.g.m, merge: !s.split}
	}
	s.denied = nil
	if t.DenyCache > 0 {
		s.denied = newDeniedCache(t.DenyCache)
	}
	return s
}

// pipelineClient is a client that can send a pipeline: *redis.Client,
// *redis.ClusterClient, *redis.Ring and every redis.UniversalClient.
type pipelineClient interface {
	Pipeline() goredis.Pipeliner
}

// runScript runs cmd, an EVALSHA command of the take script on keys (see
// appendCommand), by deadline, batched with concurrent calls when
// pipelining is on, and returns its reply, unparsed. b is the breaker of
// keys[0], or nil to look it up: on a Cluster or a Ring its node's batcher
// sends the call.
func (s *Store) runScript(ctx context.Context, deadline time.Time, b *breaker, keys []string, cmd []any) (any, error) {
	if bt := s.batch; bt != nil {
		if s.g.nodes != nil {
			if b == nil {
				b = s.breakerFor(keys[0])
			}
			if b.batch != nil {
				bt = b.batch
			}
		}
		return bt.run(ctx, deadline, cmd)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	args := cmd[cmdKeys+len(keys):]
	s.g.m.roundTrips.Inc()
	reply, err := s.c.EvalSha(ctx, takeScript.Hash(), keys, args...).Result()
	if isNoScript(err) {
		s.g.m.roundTrips.Inc()
		reply, err = s.c.Eval(ctx, takeSource, keys, args...).Result()
	}
	return reply, err
}

// isNoScript reports whether err is Redis saying it does not know the
// script.
func isNoScript(err error) bool {
	return err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT")
}

// batcher batches concurrent script calls into pipelines; see above.
type batcher struct {
	p     pipelineClient
	max   int
	width int
	m     *storeMetrics
	// merge sends a batch as one script call instead of one per decision,
	// on clients whose keys all live on one server; see execMerged.
	merge bool

	mu       sync.Mutex
	pending  []*scriptCall
	inflight int // pipelines on the wire, at most width
}

// scriptCall is one queued call. The pipeline that sends it sets reply
// and err, then closes done.
type scriptCall struct {
	// ctx is the caller's: it carries the caller's span and ends when the
	// caller gives up. The call's own deadline is deadline.
	ctx      context.Context
	deadline time.Time
	cmd      []any
	reply    any
	err      error
	done     chan struct{}
}

// run queues one call and waits for its reply, for its deadline or for ctx
// to end. When a pipeline slot is free it starts a pipeline with
// everything queued. The deadline is enforced with a pooled timer rather
// than a context of its own: a decision then allocates no timer.
func (b *batcher) run(ctx context.Context, deadline time.Time, cmd []any) (any, error) {
	call := &scriptCall{ctx: ctx, deadline: deadline, cmd: cmd, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, call)
	var batch []*scriptCall
	if b.inflight < b.width {
		b.inflight++
		batch = b.take()
	}
	b.mu.Unlock()
	if batch != nil {
		go b.flush(batch)
	}
	timer := startTimer(time.Until(deadline))
	defer stopTimer(timer)
	select {
	case <-call.done:
		if call.err == nil {
			return call.reply, nil
		}
		if ctx.Err() != nil {
			break
		}
		if !time.Now().Before(deadline) {
			// The pipeline failed at the deadline, and may have noticed
			// before the timer: report the deadline, as an unpipelined
			// call would.
			return nil, b.expired(ctx, deadline)
		}
		return nil, call.err
	case <-timer.C:
		return nil, b.expired(ctx, deadline)
	case <-ctx.Done():
	}
	return nil, fmt.Errorf("waiting for a pipelined reply: %w", ctx.Err())
}

// expired is the error of a call whose deadline passed. When the caller's
// own deadline is the same or earlier, the caller gave up: its context
// ends about now, and the error says so, so that the breaker does not
// count the call as a failure of Redis.
func (b *batcher) expired(ctx context.Context, deadline time.Time) error {
	if d, ok := ctx.Deadline(); ok && !d.After(deadline) {
		<-ctx.Done()
		return fmt.Errorf("waiting for a pipelined reply: %w", ctx.Err())
	}
	return fmt.Errorf("waiting for a pipelined reply: %w", context.DeadlineExceeded)
}

// timers are stopped timers for run to reuse.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// startTimer returns a pooled timer that fires after d.
func startTimer(d time.Duration) *time.Timer {
	t := timers.Get().(*time.Timer)
	t.Reset(d)
	return t
}

// stopTimer stops t and gives it back to the pool, with its channel
// empty also under the timers of Go before 1.23 (asynctimerchan=1).
func stopTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	timers.Put(t)
}

// take removes up to max calls from the queue. b.mu must be held.
func (b *batcher) take() []*scriptCall {
	n := min(len(b.pending), b.max)
	if n == 0 {
		return nil
	}
	batch := make([]*scriptCall, n)
	copy(batch, b.pending)
	rest := copy(b.pending, b.pending[n:])
	clear(b.pending[rest:])
	b.pending = b.pending[:rest]
	return batch
}

// flush sends batch, then whatever queued up meanwhile, until the queue is
// empty; then it gives back its pipeline slot.
func (b *batcher) flush(batch []*scriptCall) {
	for batch != nil {
		b.send(batch)
		b.mu.Lock()
		batch = b.take()
		if batch == nil {
			b.inflight--
		}
		b.mu.Unlock()
	}
}

// send runs the calls of batch whose callers still wait as one pipeline,
// then those the server answered NOSCRIPT with EVAL in another, and hands
// every call its reply.
func (b *batcher) send(batch []*scriptCall) {
	live := batch[:0]
	now := time.Now()
	for _, call := range batch {
		if err := call.ctx.Err(); err != nil {
			// Never sent, so never charged.
			call.finish(nil, fmt.Errorf("waiting for a pipeline: %w", err))
			continue
		}
		if !now.Before(call.deadline) {
			call.finish(nil, fmt.Errorf("waiting for a pipeline: %w", context.DeadlineExceeded))
			continue
		}
		live = append(live, call)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := pipelineContext(live)
	defer cancel()
	retry := b.exec(ctx, live, false)
	if len(retry) > 0 {
		b.exec(ctx, retry, true)
	}
}

// pipelineGrace is how long a pipeline outlives the latest deadline of its
// calls, so that its callers' own deadlines end their waits first: a call
// is then a timeout for the breaker, or a caller gone, by the caller's
// deadline or context alone, exactly as without pipelining.
const pipelineGrace = 2 * time.Millisecond

// pipelineContext returns the context a pipeline of calls runs under: it
// ends pipelineGrace after the latest deadline of its calls.
func pipelineContext(calls []*scriptCall) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, call := range calls {
		if call.deadline.After(latest) {
			latest = call.deadline
		}
	}
	return context.WithDeadline(context.Background(), latest.Add(pipelineGrace))
}

// exec sends calls as one pipeline, with EVAL when eval is set and EVALSHA
// otherwise, finishes every call that got a reply and returns those that
// got NOSCRIPT.
func (b *batcher) exec(ctx context.Context, calls []*scriptCall, eval bool) []*scriptCall {
	if b.merge && len(calls) > 1 {
		cmds := make([][]any, len(calls))
		for i, call := range calls {
			cmds[i] = call.cmd
		}
		if merged, ok := mergeCommands(cmds); ok {
			return b.execMerged(ctx, calls, merged, eval)
		}
	}
	pipe := b.p.Pipeline()
	cmds := make([]*goredis.Cmd, len(calls))
	for i, call := range calls {
		args := call.cmd
		if eval {
			args = asEval(args)
		}
		cmd := goredis.NewCmd(ctx, args...)
		cmd.SetFirstKeyPos(cmdKeys)
		// A Pipeline only queues the command here; its error comes with
		// its reply.
		_ = pipe.Process(ctx, cmd)
		cmds[i] = cmd
	}
	// Exec returns the first command's error; each command has its own.
	_, _ = pipe.Exec(ctx)
	b.m.roundTrips.Inc()
	b.m.batchSize.Observe(float64(len(calls)))
	var retry []*scriptCall
	for i, call := range calls {
		// The caller's span, if any, learns the pipeline it went in.
		annotate(call.ctx, attrBatchSize.Int(len(calls)))
		reply, err := cmds[i].Result()
		if !eval && isNoScript(err) {
			retry = append(retry, call)
			continue
		}
		call.finish(reply, err)
	}
	return retry
}

// execMerged sends calls as one script call, merged (the take script's
// batch; see mergeCommands), with EVAL when eval is set and EVALSHA
// otherwise. It hands each call its part of the reply and returns the
// calls, to be sent again with EVAL, when the server answered NOSCRIPT.
//
// Redis then runs one script for the batch rather than one per decision:
// the script's set-up (its locals and the algorithm table), the TIME call,
// the command's parsing and its reply are paid once. The calls are still
// decided one after another, each all-or-nothing on its own, exactly as a
// pipeline of separate calls is, and each gets its own reply or error.
func (b *batcher) execMerged(ctx context.Context, calls []*scriptCall, merged []any, eval bool) []*scriptCall {
	if eval {
		merged = asEval(merged)
	}
	cmd := goredis.NewCmd(ctx, merged...)
	cmd.SetFirstKeyPos(cmdKeys)
	pipe := b.p.Pipeline()
	_ = pipe.Process(ctx, cmd)
	_, _ = pipe.Exec(ctx)
	b.m.roundTrips.Inc()
	b.m.batchSize.Observe(float64(len(calls)))
	reply, err := cmd.Result()
	if !eval && isNoScript(err) {
		return calls
	}
	vals, _ := reply.([]any)
	if err == nil && len(vals) != len(calls) {
		err = fmt.Errorf("take script replied a %T of %d values to a batch of %d calls", reply, len(vals), len(calls))
	}
	for i, call := range calls {
		annotate(call.ctx, attrBatchSize.Int(len(calls)))
		if err != nil {
			call.finish(nil, err)
			continue
		}
		// A call's entry is its integers, or the error it alone got.
		if e, ok := vals[i].(error); ok {
			call.finish(nil, e)
			continue
		}
		call.finish(vals[i], nil)
	}
	return nil
}

func (call *scriptCall) finish(reply any, err error) {
	call.reply, call.err = reply, err
	close(call.done)
}

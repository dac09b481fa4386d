package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// recordingProvider returns a TracerProvider of its own, as Caddy's tracing
// handler has (never the global one), and the recorder of its spans.
func recordingProvider(tb testing.TB, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	tb.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithSpanProcessor(sr))...)
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, sr
}

// instrumentedStore returns a store on a client of addr made by NewClient,
// as the module makes it, with pipelining on or off, and a name and key
// prefix of its own.
func instrumentedStore(tb testing.TB, addr string, opts Options) *Store {
	tb.Helper()
	c, err := NewClient(Options{Addresses: []string{addr}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	opts.Name = fmt.Sprintf("traced-%d", storeSeq.Add(1))
	opts.KeyPrefix = opts.Name + ":"
	if opts.Timeout == 0 {
		opts.Timeout = caddy.Duration(10 * time.Second)
	}
	s := New(c, opts)
	tb.Cleanup(s.Close)
	return s
}

// attrsOf returns a span's attributes by key.
func attrsOf(span sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range span.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// named returns the spans called one of names, in the order they ended.
func named(spans []sdktrace.ReadOnlySpan, names ...string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		for _, n := range names {
			if s.Name() == n {
				out = append(out, s)
			}
		}
	}
	return out
}

// childOf fails the test unless span is a child of parent.
func childOf(tb testing.TB, span sdktrace.ReadOnlySpan, parent trace.SpanContext) {
	tb.Helper()
	if span.SpanContext().TraceID() != parent.TraceID() || span.Parent().SpanID() != parent.SpanID() {
		tb.Errorf("span %s is in trace %s under %s, want a child of %s in trace %s", span.Name(),
			span.SpanContext().TraceID(), span.Parent().SpanID(), parent.SpanID(), parent.TraceID())
	}
}

func TestStoreCallSpansAreChildrenOfTheRequestSpan(t *testing.T) {
	t.Parallel()
	gcra := lookup(t, "gcra")
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			t.Parallel()
			tp, sr := recordingProvider(t)
			s := instrumentedStore(t, sharedServer(t).Addr, Options{Throughput: Throughput{DisablePipelining: !pipelining}})
			ctx, request := tp.Tracer("caddy").Start(context.Background(), "GET /")
			k := key("traced")
			reqs := []store.Request{req(gcra, "a", k, 1, time.Hour, 1), req(gcra, "b", k, 5, time.Hour, 1)}
			for _, wantAllowed := range []bool{true, false} {
				out := make([]algorithms.Decision, 2)
				if err := s.Take(ctx, reqs, out); err != nil {
					t.Fatal(err)
				}
				if out[0].Allowed != wantAllowed {
					t.Fatalf("decision %+v, want allowed %v", out[0], wantAllowed)
				}
			}
			if _, err := s.Inspect(ctx, reqs[0]); err != nil {
				t.Fatal(err)
			}
			if err := s.Reset(ctx, "a", k); err != nil {
				t.Fatal(err)
			}
			request.End()
			spans := sr.Ended()
			parent := request.SpanContext()

			takes := named(spans, spanTake)
			if len(takes) != 2 {
				t.Fatalf("%d take spans for 2 calls", len(takes))
			}
			for i, want := range []string{outcomeAllowed, outcomeDenied} {
				childOf(t, takes[i], parent)
				a := attrsOf(takes[i])
				if a[attrStore].AsString() != s.name || a[attrZoneCount].AsInt64() != 2 ||
					a[attrOutcome].AsString() != want || a[attrPipelined].AsBool() != pipelining {
					t.Errorf("take span %d attributes %v", i, takes[i].Attributes())
				}
				if _, batched := a[attrBatchSize]; batched != pipelining {
					t.Errorf("take span %d: batch size given %v with pipelining %v", i, batched, pipelining)
				}
			}
			inspects, resets := named(spans, spanInspect), named(spans, spanReset)
			if len(inspects) != 1 || len(resets) != 1 {
				t.Fatalf("%d inspect and %d reset spans, want 1 each", len(inspects), len(resets))
			}
			childOf(t, inspects[0], parent)
			childOf(t, resets[0], parent)
			// At cost 0, GCRA admits even a spent key.
			if got := attrsOf(inspects[0])[attrOutcome].AsString(); got != outcomeAllowed {
				t.Errorf("inspect span outcome %q, want %q", got, outcomeAllowed)
			}

			// Every span is in the request's trace, command spans included.
			for _, span := range spans {
				if span.SpanContext().TraceID() != parent.TraceID() {
					t.Errorf("span %s in trace %s, not the request's", span.Name(), span.SpanContext().TraceID())
				}
			}
			// The reset's DEL always runs under its caller's context; the
			// scripts only without pipelining, since a shared pipeline
			// belongs to no one request.
			dels := named(spans, "del")
			if len(dels) != 1 {
				t.Fatalf("%d DEL spans, want 1", len(dels))
			}
			childOf(t, dels[0], resets[0].SpanContext())
			if dels[0].SpanKind() != trace.SpanKindClient {
				t.Errorf("DEL span kind %v, want client", dels[0].SpanKind())
			}
			scripts := named(spans, "evalsha", "eval")
			if !pipelining {
				callers := map[trace.SpanID]bool{takes[0].SpanContext().SpanID(): true,
					takes[1].SpanContext().SpanID(): true, inspects[0].SpanContext().SpanID(): true}
				seen := map[trace.SpanID]bool{}
				for _, sc := range scripts {
					if !callers[sc.Parent().SpanID()] {
						t.Errorf("script span %s under %s, want one of the calls' spans", sc.Name(), sc.Parent().SpanID())
					}
					seen[sc.Parent().SpanID()] = true
				}
				if len(seen) != len(callers) {
					t.Errorf("script spans under %d of the %d calls", len(seen), len(callers))
				}
			} else if len(scripts) != 0 || len(named(spans, "redis.pipeline evalsha")) != 0 {
				t.Errorf("%d script spans from shared pipelines", len(scripts))
			}
		})
	}
}

// TestBatchedCallsKeepTheirOwnParents holds the pipeline's only slot while
// calls of several requests queue, so they go to Redis in one pipeline.
func TestBatchedCallsKeepTheirOwnParents(t *testing.T) {
	t.Parallel()
	const calls = 8
	tp, sr := recordingProvider(t)
	s := instrumentedStore(t, sharedServer(t).Addr, Options{Throughput: Throughput{PipelineWidth: 1}})
	b := s.batch
	b.mu.Lock()
	b.inflight = b.width // the slot is busy
	b.mu.Unlock()

	gcra := lookup(t, "gcra")
	requests := make([]trace.Span, calls)
	errs := make(chan error, calls)
	for i := range requests {
		ctx, span := tp.Tracer("caddy").Start(context.Background(), fmt.Sprintf("request %d", i))
		requests[i] = span
		go func() {
			out := make([]algorithms.Decision, 1)
			errs <- s.Take(ctx, []store.Request{req(gcra, "z", key(fmt.Sprint(i)), 5, time.Hour, 1)}, out)
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		queued := len(b.pending)
		b.mu.Unlock()
		if queued == calls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls queued", queued, calls)
		}
	}
	// Free the slot: the next pipeline takes every queued call.
	b.mu.Lock()
	batch := b.take()
	b.mu.Unlock()
	go b.flush(batch)
	for range calls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	parents := map[trace.SpanID]bool{}
	for _, r := range requests {
		parents[r.SpanContext().SpanID()] = true
	}
	takes := named(sr.Ended(), spanTake)
	if len(takes) != calls {
		t.Fatalf("%d take spans for %d calls", len(takes), calls)
	}
	for _, span := range takes {
		var request trace.Span
		for _, r := range requests {
			if r.SpanContext().TraceID() == span.SpanContext().TraceID() {
				request = r
			}
		}
		if request == nil {
			t.Fatalf("take span in trace %s of no request", span.SpanContext().TraceID())
		}
		childOf(t, span, request.SpanContext())
		delete(parents, span.Parent().SpanID())
		if n := attrsOf(span)[attrBatchSize].AsInt64(); n != calls {
			t.Errorf("take span says a batch of %d, want %d", n, calls)
		}
	}
	if len(parents) != 0 {
		t.Errorf("%d requests got no take span of their own", len(parents))
	}
}

func TestFailedCallSpanRecordsTheError(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	tp, sr := recordingProvider(t)
	s := instrumentedStore(t, srv.Addr, Options{
		Timeout: caddy.Duration(300 * time.Millisecond), OnFailure: OnFailureAllow,
		Throughput: Throughput{DisablePipelining: true},
	})
	srv.stop()
	ctx, request := tp.Tracer("caddy").Start(context.Background(), "GET /")
	r := req(lookup(t, "gcra"), "z", key("down"), 5, time.Hour, 1)
	if _, err := takeOne(ctx, s, r); err == nil {
		t.Fatal("Take on a stopped server succeeded")
	}
	request.End()
	takes := named(sr.Ended(), spanTake)
	if len(takes) != 1 {
		t.Fatalf("%d take spans, want 1", len(takes))
	}
	span := takes[0]
	childOf(t, span, request.SpanContext())
	a := attrsOf(span)
	if span.Status().Code != codes.Error || a[attrOutcome].AsString() != outcomeError || a[attrFallback].AsString() != OnFailureAllow {
		t.Errorf("failed take span: status %v, attributes %v", span.Status(), span.Attributes())
	}
	exceptions := 0
	for _, e := range span.Events() {
		if e.Name == "exception" {
			exceptions++
		}
	}
	if exceptions == 0 {
		t.Error("the failed take span records no error")
	}
}

// TestNoSpansWithoutARecordingParent checks that nothing is traced, not
// even through the global TracerProvider, for calls under no span or
// under a span that does not record (sampled out).
func TestNoSpansWithoutARecordingParent(t *testing.T) {
	global, globalSpans := recordingProvider(t)
	otel.SetTracerProvider(global)
	sampledOut, sampledOutSpans := recordingProvider(t, sdktrace.WithSampler(sdktrace.NeverSample()))
	notRecording, parent := sampledOut.Tracer("caddy").Start(context.Background(), "GET /")
	if parent.IsRecording() {
		t.Fatal("a NeverSample span records")
	}
	gcra := lookup(t, "gcra")
	for _, pipelining := range []bool{true, false} {
		s := instrumentedStore(t, sharedServer(t).Addr, Options{Throughput: Throughput{DisablePipelining: !pipelining}})
		for _, ctx := range []context.Context{context.Background(), notRecording} {
			r := req(gcra, "z", key("untraced"), 5, time.Hour, 1)
			if _, err := takeOne(ctx, s, r); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Inspect(ctx, r); err != nil {
				t.Fatal(err)
			}
			if err := s.Reset(ctx, "z", r.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	parent.End()
	for what, sr := range map[string]*tracetest.SpanRecorder{"global": globalSpans, "sampled-out": sampledOutSpans} {
		if spans := sr.Started(); len(spans) != 0 {
			t.Errorf("%d spans started on the %s provider, first %s", len(spans), what, spans[0].Name())
		}
	}
}

// TestUntracedCallsCostNoAllocations compares a Take through a client made
// by NewClient, traced by redisotel behind the gate, with one through a
// plain client, under no span: the instrumentation must not allocate.
func TestUntracedCallsCostNoAllocations(t *testing.T) {
	srv := sharedServer(t)
	gcra := lookup(t, "gcra")
	measure := func(s *Store) float64 {
		reqs := []store.Request{req(gcra, "z", key("allocs"), 1_000_000, time.Minute, 1)}
		out := make([]algorithms.Decision, 1)
		ctx := context.Background()
		return testing.AllocsPerRun(500, func() {
			if err := s.Take(ctx, reqs, out); err != nil {
				t.Fatal(err)
			}
		})
	}
	plain := New(srv.client(t), Options{KeyPrefix: fmt.Sprintf("plain-%d:", storeSeq.Add(1)), Timeout: caddy.Duration(10 * time.Second)})
	for _, pipelining := range []bool{true, false} {
		tp := Throughput{DisablePipelining: !pipelining}
		plain.WithThroughput(tp)
		instrumented := instrumentedStore(t, srv.Addr, Options{Throughput: tp})
		want, got := measure(plain), measure(instrumented)
		if got > want {
			t.Errorf("pipelining %v: %v allocations per untraced Take through NewClient's client, %v through a plain one", pipelining, got, want)
		}
	}
}

// TestShardedCommandSpansJoinTheRequest checks the gate on clients whose
// commands run on per-node clients: the scripts of a call split across the
// shards of a Ring or the nodes of a Cluster are children of the call's
// span.
func TestShardedCommandSpansJoinTheRequest(t *testing.T) {
	t.Parallel()
	for _, topology := range []string{"ring", "cluster"} {
		t.Run(topology, func(t *testing.T) {
			t.Parallel()
			var opts Options
			if topology == "ring" {
				a, b := startServer(t), startServer(t)
				opts.Shards = map[string]string{"a": a.Addr, "b": b.Addr}
			} else {
				opts.Addresses = startCluster(t).addrs()
			}
			c, err := NewClient(opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			s := New(c, Options{Name: topology, KeyPrefix: fmt.Sprintf("%s%d:", topology, storeSeq.Add(1)),
				Timeout: caddy.Duration(10 * time.Second), Throughput: Throughput{DisablePipelining: true}})
			tp, sr := recordingProvider(t)
			ctx, request := tp.Tracer("caddy").Start(context.Background(), "GET /")
			gcra := lookup(t, "gcra")
			var reqs []store.Request
			for i := range 8 { // eight zones: their hash tags land on several nodes
				reqs = append(reqs, req(gcra, fmt.Sprint("zone", i), key("sharded"), 5, time.Hour, 1))
			}
			if err := s.Take(ctx, reqs, make([]algorithms.Decision, len(reqs))); err != nil {
				t.Fatal(err)
			}
			request.End()
			spans := sr.Ended()
			takes := named(spans, spanTake)
			if len(takes) != 1 {
				t.Fatalf("%d take spans, want 1", len(takes))
			}
			childOf(t, takes[0], request.SpanContext())
			scripts := named(spans, "evalsha", "eval")
			if len(scripts) < 2 {
				t.Fatalf("%d script spans for a call split across nodes, want one per group and phase", len(scripts))
			}
			for _, sc := range scripts {
				childOf(t, sc, takes[0].SpanContext())
			}
		})
	}
}

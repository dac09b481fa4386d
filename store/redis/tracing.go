package redis

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// Tracing.
//
// When a call reaches the store under a recording span (Caddy's tracing
// handler puts the request's span in the request context), each Take,
// Inspect and Reset gets a child span, rate_limit.redis.take and so on,
// with the store's name, the number of zones and the outcome or the error.
// The span is started by the caller's goroutine, so it is a child of the
// request's span even when the call goes to Redis in a pipeline shared
// with other requests; it then says how many calls that pipeline carried.
//
// The Redis commands get spans of their own from go-redis's OpenTelemetry
// instrumentation (redisotel), as children of the call's span, when the
// command runs under the caller's context: with pipelining off. A shared
// pipeline belongs to no single request and runs untraced.
//
// Caddy's tracing handler uses a TracerProvider of its own, not the global
// one, and a client is shared by every config and handler. So redisotel
// gets ctxProvider, whose tracer starts each span with the provider of the
// span found in the context, and a command under no recording span costs
// nothing: commandGate keeps redisotel's hook out of its way entirely.

// tracerName names the tracer of the store's spans.
const tracerName = "github.com/ratewarden/ratewarden/store/redis"

// Span names, one per store call.
const (
	spanTake    = "rate_limit.redis.take"
	spanInspect = "rate_limit.redis.inspect"
	spanReset   = "rate_limit.redis.reset"
)

// Span attributes.
const (
	attrStore     = attribute.Key("rate_limit.store")
	attrZoneCount = attribute.Key("rate_limit.zone_count")
	attrOutcome   = attribute.Key("rate_limit.outcome")
	attrPipelined = attribute.Key("rate_limit.redis.pipelined")
	attrBatchSize = attribute.Key("rate_limit.redis.batch_size")
	attrCacheHit  = attribute.Key("rate_limit.redis.cache_hit")
	attrFallback  = attribute.Key("rate_limit.redis.fallback")
)

// Values of the outcome attribute.
const (
	outcomeAllowed = "allowed"
	outcomeDenied  = "denied"
	outcomeReset   = "reset"
	outcomeError   = "error"
)

// startSpan starts the span of one store call over zones zones, as a child
// of the span in ctx, and returns a context that carries it. When the span
// in ctx does not record, it returns ctx and nil, allocating nothing.
func (s *Store) startSpan(ctx context.Context, name string, zones int) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attrStore.String(s.name),
			attrZoneCount.Int(zones),
			attrPipelined.Bool(s.batch != nil && name != spanReset),
		))
}

// endSpan records the outcome of a call, or its error, and ends span.
func endSpan(span trace.Span, outcome string, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		outcome = outcomeError
	}
	span.SetAttributes(attrOutcome.String(outcome))
	span.End()
}

// takeOutcome is the outcome of a Take that returned no error.
func takeOutcome(reqs []store.Request, out []algorithms.Decision) string {
	if store.Blocked(reqs, out) {
		return outcomeDenied
	}
	return outcomeAllowed
}

// annotate adds attr to the span in ctx when it records. A call under no
// recording span pays a context lookup. (One attribute, not a variadic
// list: the list would be allocated on every call.)
func annotate(ctx context.Context, attr attribute.KeyValue) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attr)
	}
}

// traceFallback records on the span in ctx, when it records, that Redis
// failed with err and the on_failure policy decided.
func (s *Store) traceFallback(ctx context.Context, err error) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.RecordError(err)
		span.SetAttributes(attrFallback.String(s.g.policy))
	}
}

// instrument adds redisotel's tracing to c, behind g. A Ring's shards
// are traced as newShard makes them: a Ring makes them before redisotel
// could ask to hear of new ones.
func (g *commandGate) instrument(c goredis.UniversalClient) error {
	c.AddHook(g)
	if _, ring := c.(*goredis.Ring); ring {
		return nil
	}
	return redisotel.InstrumentTracing(c, g.options()...)
}

// newShard makes a shard client of a Ring with redisotel's tracing; it is
// the Ring's NewClient.
func (g *commandGate) newShard(opt *goredis.Options) *goredis.Client {
	c := goredis.NewClient(opt)
	// redisotel instruments every *goredis.Client without error.
	_ = redisotel.InstrumentTracing(c, g.options()...)
	return c
}

// options are redisotel's options for a client behind g.
func (g *commandGate) options() []redisotel.TracingOption {
	return []redisotel.TracingOption{
		redisotel.WithTracerProvider(ctxProvider{}),
		// The caller is go-redis itself, and the statement holds the
		// whole script on a NOSCRIPT retry: neither is worth its cost.
		redisotel.WithCallerEnabled(false),
		redisotel.WithDBStatement(false),
		redisotel.WithCommandFilter(g.skip),
		redisotel.WithCommandsFilter(g.skipAll),
	}
}

// commandGate lets redisotel's hook trace only the commands sent under a
// recording span. That hook builds attributes and options for every
// command before it starts a span, which would cost a command under no
// span a few allocations, so its filters skip every command the gate has
// not marked. The gate is the client's outermost hook: it sees each
// command with its caller's context, before any node of a Cluster or a
// Ring does, and marks the command while it runs under a recording span.
type commandGate struct {
	// marked holds the commands in flight under a recording span.
	marked cmdSet
}

// DialHook leaves dialing alone; redisotel traces dials through
// ctxProvider, which costs nothing without a recording span.
func (g *commandGate) DialHook(goredis.DialHook) goredis.DialHook { return nil }

// ProcessHook marks a command sent under a recording span while it runs.
func (g *commandGate) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmd)
		}
		g.marked.add(cmd)
		defer g.marked.remove(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook marks the commands of a pipeline sent under a
// recording span while it runs.
func (g *commandGate) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmds)
		}
		for _, cmd := range cmds {
			g.marked.add(cmd)
		}
		defer func() {
			for _, cmd := range cmds {
				g.marked.remove(cmd)
			}
		}()
		return next(ctx, cmds)
	}
}

// skip is redisotel's command filter: it skips unmarked commands, and
// AUTH as redisotel does by default.
func (g *commandGate) skip(cmd goredis.Cmder) bool {
	return !g.marked.has(cmd) || redisotel.DefaultCommandFilter(cmd)
}

// skipAll is redisotel's pipeline filter. A node of a Cluster or a Ring
// gets part of a pipeline: its first command tells whether it is marked.
func (g *commandGate) skipAll(cmds []goredis.Cmder) bool {
	if len(cmds) == 0 || !g.marked.has(cmds[0]) {
		return true
	}
	for _, cmd := range cmds {
		if redisotel.DefaultCommandFilter(cmd) {
			return true
		}
	}
	return false
}

// cmdSet is a set of commands, safe for concurrent use. It counts a
// command added twice twice. Most of the time it is empty, and has says so
// with one atomic load.
type cmdSet struct {
	n  atomic.Int64
	mu sync.Mutex
	m  map[goredis.Cmder]int
}

func (s *cmdSet) add(cmd goredis.Cmder) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[goredis.Cmder]int)
	}
	s.m[cmd]++
	s.n.Add(1)
	s.mu.Unlock()
}

func (s *cmdSet) remove(cmd goredis.Cmder) {
	s.mu.Lock()
	if s.m[cmd]--; s.m[cmd] <= 0 {
		delete(s.m, cmd)
	}
	s.n.Add(-1)
	s.mu.Unlock()
}

func (s *cmdSet) has(cmd goredis.Cmder) bool {
	if s.n.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[cmd] > 0
}

// ctxProvider is the TracerProvider redisotel gets: its tracers start each
// span with the TracerProvider of the span in the context, so that command
// spans join the request's trace, whoever configured it.
type ctxProvider struct {
	embedded.TracerProvider
}

// Tracer returns a tracer that borrows the provider of each span's parent.
func (ctxProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return ctxTracer{name: name, opts: opts}
}

// ctxTracer is ctxProvider's tracer.
type ctxTracer struct {
	embedded.Tracer
	name string
	opts []trace.TracerOption
}

// noSpan is what ctxTracer starts under no recording span.
var noSpan trace.Span = noop.Span{}

// Start starts a span with the provider of the span in ctx when that span
// records. Otherwise it returns ctx unchanged and a span that does
// nothing, allocating nothing.
func (t ctxTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	return parent.TracerProvider().Tracer(t.name, t.opts...).Start(ctx, name, opts...)
}

// Interface guards
var (
	_ goredis.Hook         = (*commandGate)(nil)
	_ trace.TracerProvider = ctxProvider{}
	_ trace.Tracer         = ctxTracer{}
)

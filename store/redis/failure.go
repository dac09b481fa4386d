package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
	"github.com/ratewarden/ratewarden/store/memory"
)

// Failure handling.
//
// Every call to Redis goes through a circuit breaker and is bounded by the
// store's timeout. BreakerFailures consecutive failures (errors or
// timeouts) open the breaker; while it is open no call reaches Redis and
// Take applies the on_failure policy at once, so no request waits on a dead
// or hung server. After BreakerCooldown one call probes Redis (half-open):
// its success closes the breaker, its failure opens it for another
// cooldown. While the probe runs, other calls apply the policy.
//
// A denial is a success: Redis decided. A NOSCRIPT reply never gets here
// (go-redis falls back to EVAL by itself). A call whose caller cancelled it
// counts as neither success nor failure, and gets no policy decision: no
// one is waiting for it.

// Defaults for the failure Options.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 5 * time.Second
)

// errCallerGone marks a call abandoned by its caller, which the breaker
// counts as neither a success nor a failure.
var errCallerGone = errors.New("the caller cancelled the call")

// guard is a store's breakers, failure policy and their metrics.
type guard struct {
	name     string
	policy   string
	cooldown time.Duration
	// main is the store's breaker; nodes, on a Cluster, those of its
	// primaries (see breakers.go).
	main  *breaker
	nodes *nodeBreakers
	// local decides under the local policy; nil under the others.
	// localPooled is set when it is the module's pooled one (see locals),
	// which Close leaves running.
	local       *memory.Store
	localPooled bool

	// lastErr is the last failure's message, for the log line that says a
	// breaker opened.
	lastErr atomic.Pointer[string]
	// levels holds the breakers that are not closed, with their
	// breaker_state level; level is the worst of them.
	levelsMu sync.Mutex
	levels   map[*breaker]int
	level    atomic.Int32

	log *zap.Logger
	m   storeMetrics
	// events delivers the store's up and down events; nil without
	// Options.Notify. See events.go.
	events *notifier

	// reloading is set while a topology reload runs; see reloadTopology.
	reloading atomic.Bool
	// inheriting is set while the breaker opens for an outage that began
	// before a config reload; see inherit.go.
	inheriting atomic.Bool
	// handedOver is set when a newer store of the same name has taken
	// over; this one then emits no more events.
	handedOver atomic.Bool
}

// newGuard returns the guard for opts, which have their defaults, of a
// store on client c.
func newGuard(opts Options, c Client) *guard {
	g := &guard{
		name:     opts.Name,
		policy:   opts.OnFailure,
		cooldown: time.Duration(opts.BreakerCooldown),
		log:      opts.Logger.With(zap.String("store", opts.Name)),
		m:        newStoreMetrics(opts.Name, opts.OnFailure),
		events:   newNotifier(opts),
	}
	failures := uint32(opts.BreakerFailures)
	g.main = g.newBreaker("", failures)
	if topo := topologyOf(c); topo != nil {
		g.nodes = &nodeBreakers{topo: topo, failures: failures, stop: make(chan struct{})}
	}
	g.m.state.Set(0)
	switch {
	case g.policy != OnFailureLocal:
	case opts.local != nil:
		g.local, g.localPooled = opts.local, true
	default:
		g.local = memory.New(memory.Options{Now: wallNow})
	}
	return g
}

// do runs call through the breaker with the store's timeout, and records
// its outcome. When the breaker is open it returns at once, without
// calling.
func (s *Store) do(ctx context.Context, op string, call func(context.Context) error) error {
	return s.doWithin(ctx, op, s.g.main, s.timeout, call)
}

// doWithin is do guarded by breaker b, with the given timeout.
func (s *Store) doWithin(ctx context.Context, op string, b *breaker, timeout time.Duration, call func(context.Context) error) error {
	return s.guarded(ctx, op, b, func() error {
		callCtx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return call(callCtx)
	})
}

// doScript is do for runs of the take script, guarded by b (see
// breakerFor): call gets the deadline, the
// store's timeout from now, instead of a context bounded by it. With
// pipelining on, the batcher enforces the deadline itself, so a decision
// makes no timer context of its own; otherwise runScript makes one.
func (s *Store) doScript(ctx context.Context, op string, b *breaker, call func(deadline time.Time) error) error {
	return s.guarded(ctx, op, b, func() error {
		return call(time.Now().Add(s.timeout))
	})
}

// guarded runs call through breaker b and records its outcome. When b is
// open it returns at once, without calling.
func (s *Store) guarded(ctx context.Context, op string, b *breaker, call func() error) error {
	done, err := b.cb.Allow()
	if err != nil {
		return fmt.Errorf("not asking redis: %w", err)
	}
	start := time.Now()
	err = call()
	s.g.m.duration(op).Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		done(nil)
	case ctx.Err() != nil:
		done(errCallerGone)
	default:
		s.g.m.errors.Inc()
		msg := err.Error()
		s.g.lastErr.Store(&msg)
		done(err)
		s.reloadTopology()
	}
	return err
}

// topologyReloader is a client that can refresh its map of which node
// serves which slot (*goredis.ClusterClient).
type topologyReloader interface {
	ReloadState(ctx context.Context)
}

// reloadTopology asks a Cluster client to refresh its slot map after a
// failed call, one refresh at a time. go-redis learns a new map only from
// MOVED/ASK replies or every ClusterStateReloadInterval (60s by default),
// not when a node stops answering: without this, the slots of a primary
// that died stay failed long after its replica has taken them over.
func (s *Store) reloadTopology() {
	r, ok := s.c.(topologyReloader)
	if !ok || !s.g.reloading.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.g.reloading.Store(false)
		r.ReloadState(context.Background())
	}()
}

// fallback decides reqs by the on_failure policy after Redis failed with
// err, and returns what Take returns.
func (s *Store) fallback(ctx context.Context, b *breaker, reqs []store.Request, out []algorithms.Decision, err error) error {
	if ctx.Err() != nil {
		return err
	}
	s.g.m.fallback.Inc()
	s.traceFallback(ctx, err)
	switch s.g.policy {
	case OnFailureDeny:
		return &store.UnavailableError{RetryAfter: b.retryAfter(), Err: err}
	case OnFailureLocal:
		if err := s.g.local.Take(ctx, reqs, out); err != nil {
			return fmt.Errorf("deciding locally while redis is unavailable: %w", err)
		}
		return nil
	}
	return err
}

// Close stops the in-memory limiter of the local policy. The store stays
// usable: the limiter only stops sweeping expired keys.
func (s *Store) Close() {
	if s.g.local != nil && !s.g.localPooled {
		s.g.local.Close()
	}
	s.g.nodes.close()
}

// Package redis is Ratewarden's Redis store: counters live in Redis, so many
// Caddy instances share one exact limit.
//
// Each algorithm has a Lua twin of its Go transition (lua/*.lua), and one
// script decides a whole Take call atomically on the Redis server, with the
// server's clock (TIME), so an instance with a skewed clock cannot change a
// decision. The script runs with EVALSHA and falls back to EVAL when the
// server has lost it (NOSCRIPT). Every key it writes gets a TTL of the
// decision's ResetAfter, so idle keys expire by themselves.
//
// Lua numbers are doubles, so the twins are exact only within bounds that
// cover every practical policy (a window up to 35 years; token_bucket up to
// about 45 thousand per day with the default burst, a million per hour). CheckPolicy reports a
// policy outside them, and Take refuses one. See precision.go.
//
// On Redis Cluster and with a client-side Ring, keys of different zones live
// in different slots, so a Take over several zones is split per slot; see
// split.go for how that stays all-or-nothing.
package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultKeyPrefix = "ratewarden:"
	DefaultTimeout   = 50 * time.Millisecond
)

// Client is what the store needs from a go-redis client. *redis.Client,
// *redis.ClusterClient, *redis.Ring and every redis.UniversalClient
// implement it.
type Client interface {
	goredis.Scripter
	Del(ctx context.Context, keys ...string) *goredis.IntCmd
}

// Store is the Redis store. It implements store.Store, store.Inspector and
// store.Resetter, and is safe for concurrent use. Create one with New.
type Store struct {
	c       Client
	name    string
	prefix  string
	timeout time.Duration
	// split is set for clients that route each key to its own node
	// (Cluster, Ring): a call whose keys have different hash tags is then
	// split per tag.
	split bool
	// g is the circuit breaker and the on_failure policy; see failure.go.
	g *guard
	// diag names the store and its topology in errors; see diagnose.go.
	diag diagnosis
	// batch batches concurrent script calls into pipelines, when on;
	// denied caches denied keys, when on. See pipeline.go and
	// deniedcache.go.
	batch  *batcher
	denied *deniedCache

	// now, when set, gives the script an explicit time in unix
	// microseconds instead of the server's TIME, and minTTL is the
	// shortest TTL it sets in milliseconds. Only tests set them, to drive
	// the Lua twins on a simulated clock.
	now    func() int64
	minTTL int64
}

// New returns a store that keeps its counters in Redis through c. The
// connection settings of opts are NewClient's, and not used here. Under the
// local failure policy, call Close when done with the store.
func New(c Client, opts Options) *Store {
	opts = opts.withDefaults()
	s := &Store{c: c, name: opts.Name, prefix: opts.KeyPrefix, timeout: time.Duration(opts.Timeout), minTTL: 1, g: newGuard(opts, c),
		diag: opts.diagnose(opts.Name)}
	switch c.(type) {
	case *goredis.ClusterClient, *goredis.Ring:
		s.split = true
	}
	return s.WithThroughput(opts.Throughput)
}

// Take decides every request in reqs at once and writes one decision per
// request into out. See store.Store for the all-or-nothing contract. The
// whole call, retries included, takes at most the store's Timeout. When
// Redis fails, or the circuit breaker is open, the on_failure policy
// decides: see Options.OnFailure and failure.go. With the cache of denied
// keys on, a key Redis denied is refused locally until its retry time; see
// deniedcache.go. Under a recording span the call gets a span of its own;
// see tracing.go.
func (s *Store) Take(ctx context.Context, reqs []store.Request, out []algorithms.Decision) error {
	ctx, span := s.startSpan(ctx, spanTake, len(reqs))
	err := s.take(ctx, reqs, out)
	if span != nil {
		outcome := ""
		if err == nil {
			outcome = takeOutcome(reqs, out)
		}
		endSpan(span, outcome, err)
	}
	return err
}

// take is Take without its span.
func (s *Store) take(ctx context.Context, reqs []store.Request, out []algorithms.Decision) error {
	if len(out) != len(reqs) {
		return fmt.Errorf("taking from redis store: %d decisions for %d requests", len(out), len(reqs))
	}
	if len(reqs) == 0 {
		return nil
	}
	start := wallNow()
	if s.denied != nil && s.denied.answer(reqs, out, start) {
		s.g.m.cacheHits.Inc()
		annotate(ctx, attrCacheHit.Bool(true))
		return nil
	}
	keys, ids, err := s.prepare(reqs)
	if err != nil {
		return fmt.Errorf("taking from redis store: %w", err)
	}
	b := s.breakerFor(keys[0])
	var groups [][]int
	if s.split {
		if groups = groupByTag(keys); len(groups) < 2 {
			groups = nil
		}
	}
	nodes, several := s.groupBreakers(b, keys, groups)
	if several {
		// The groups live on several nodes: each runs under its own
		// node's breaker (see split.go), and a failure falls back with the
		// failing node's retry time.
		err = s.takeSplit(ctx, time.Now().Add(s.timeout), reqs, keys, ids, out, groups, nodes, true, &b)
	} else {
		err = s.doScript(ctx, opTake, b, func(deadline time.Time) error {
			return s.decide(ctx, deadline, b, reqs, keys, ids, out, groups, nodes)
		})
	}
	if err != nil {
		return s.fallback(ctx, b, reqs, out, s.diag.explain("taking from", err))
	}
	if s.denied != nil {
		s.denied.remember(reqs, out, start)
	}
	return nil
}

// decide runs the take script for reqs by deadline, split into groups
// (keys' indexes per hash tag; nil for one) when the client routes keys to
// several nodes but these groups' keys all live on one. b is the breaker
// of keys[0] (see breakerFor), nodes each group's (see groupBreakers).
func (s *Store) decide(ctx context.Context, deadline time.Time, b *breaker, reqs []store.Request, keys []string, ids []algID, out []algorithms.Decision, groups [][]int, nodes []*breaker) error {
	if groups != nil {
		return s.takeSplit(ctx, deadline, reqs, keys, ids, out, groups, nodes, false, nil)
	}
	return s.eval(ctx, deadline, b, reqs, keys, ids, out, false)
}

// prepare returns the key and script id of every request, and refuses a
// request the Lua twins cannot decide exactly.
func (s *Store) prepare(reqs []store.Request) ([]string, []algID, error) {
	keys := make([]string, len(reqs))
	ids := make([]algID, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		id, err := idOf(r.Algorithm)
		if err != nil {
			return nil, nil, fmt.Errorf("zone %q: %w", r.Zone, err)
		}
		if err := checkPrecision(id, r.Policy); err != nil {
			return nil, nil, fmt.Errorf("zone %q: %w", r.Zone, err)
		}
		keys[i], ids[i] = keyName(s.prefix, r.Zone, r.Key, id), id
	}
	return keys, ids, nil
}

// eval runs the take script once for reqs, whose keys must share a slot,
// by deadline, and fills out. A dry run decides as usual but writes
// nothing.
func (s *Store) eval(ctx context.Context, deadline time.Time, b *breaker, reqs []store.Request, keys []string, ids []algID, out []algorithms.Decision, dry bool) error {
	var now any = ""
	if s.now != nil {
		now = s.now()
	}
	dryArg := 0
	if dry {
		dryArg = 1
	}
	cmd := appendCommand(make([]any, 0, commandLen(len(reqs))), keys)
	cmd = append(cmd, now, s.minTTL, dryArg)
	for i := range reqs {
		cmd = appendArgs(cmd, ids[i], &reqs[i])
	}
	reply, err := s.runScript(ctx, deadline, b, keys, cmd)
	if err != nil {
		return fmt.Errorf("running the take script: %w", err)
	}
	return parseReply(reply, reqs, out)
}

// parseReply fills out from the take script's reply to reqs: four
// integers per request (see lua/take.lua). A reply of any other shape is
// an error, which the caller counts as a failure of the store.
func parseReply(reply any, reqs []store.Request, out []algorithms.Decision) error {
	vals, ok := reply.([]any)
	if !ok {
		return fmt.Errorf("take script replied a %T, want an array of integers", reply)
	}
	if len(vals) != 4*len(reqs) || len(out) < len(reqs) {
		return fmt.Errorf("take script replied %d values for %d requests", len(vals), len(reqs))
	}
	var v [4]int64
	for i := range reqs {
		for j := range v {
			n, ok := vals[4*i+j].(int64)
			if !ok {
				return fmt.Errorf("take script replied a %T in place %d of request %d, want an integer", vals[4*i+j], j, i)
			}
			v[j] = n
		}
		if v[0] < 0 || v[0] > 1 || v[1] < 0 || v[2] < 0 || v[3] < 0 {
			return fmt.Errorf("take script replied %v for request %d", v, i)
		}
		out[i] = algorithms.Decision{
			Allowed:    v[0] == 1,
			Limit:      reqs[i].Policy.Limit,
			Remaining:  v[1],
			RetryAfter: algorithms.FromMicros(v[2]),
			ResetAfter: algorithms.FromMicros(v[3]),
		}
	}
	return nil
}

// Inspect returns the decision req would get at cost 0, charging nothing.
// It reports what Redis holds: when Redis fails it returns the error, not a
// decision of the on_failure policy.
func (s *Store) Inspect(ctx context.Context, req store.Request) (d algorithms.Decision, err error) {
	ctx, span := s.startSpan(ctx, spanInspect, 1)
	if span != nil {
		defer func() {
			outcome := outcomeAllowed
			if !d.Allowed {
				outcome = outcomeDenied
			}
			endSpan(span, outcome, err)
		}()
	}
	req.Cost, req.Peek = 0, true
	reqs := []store.Request{req}
	out := make([]algorithms.Decision, 1)
	keys, ids, err := s.prepare(reqs)
	if err == nil {
		b := s.breakerFor(keys[0])
		err = s.doScript(ctx, opInspect, b, func(deadline time.Time) error {
			return s.eval(ctx, deadline, b, reqs, keys, ids, out, false)
		})
	}
	if err != nil {
		return algorithms.Decision{}, s.diag.explain("inspecting a key in", err)
	}
	return out[0], nil
}

// Reset forgets the counters of key in zone, whatever their algorithm.
func (s *Store) Reset(ctx context.Context, zone string, key store.Key) (err error) {
	ctx, span := s.startSpan(ctx, spanReset, 1)
	if span != nil {
		defer func() { endSpan(span, outcomeReset, err) }()
	}
	keys := make([]string, 0, len(algNames)-1)
	for id := algGCRA; id <= algConcurrency; id++ {
		keys = append(keys, keyName(s.prefix, zone, key, id))
	}
	if s.denied != nil {
		s.denied.forget(zone, key)
	}
	err = s.doWithin(ctx, opReset, s.breakerFor(keys[0]), s.timeout, func(ctx context.Context) error {
		return s.c.Del(ctx, keys...).Err()
	})
	if err != nil {
		return s.diag.explain("resetting a key in", err)
	}
	return nil
}

// CheckPolicy reports whether the store can decide alg under p exactly; see
// the package function CheckPolicy. A handler that finds this method on its
// store calls it for each zone at provision time.
func (s *Store) CheckPolicy(alg algorithms.Algorithm, p algorithms.Policy) error {
	return CheckPolicy(alg, p)
}

// Interface guards
var (
	_ store.Store     = (*Store)(nil)
	_ store.Inspector = (*Store)(nil)
	_ store.Resetter  = (*Store)(nil)
	_ Client          = (*goredis.Client)(nil)
	_ Client          = (*goredis.ClusterClient)(nil)
	_ Client          = (*goredis.Ring)(nil)
	_ Client          = goredis.UniversalClient(nil)
)

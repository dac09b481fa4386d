package redis

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// Circuit breakers per node: a Cluster's primaries, a Ring's shards.
//
// On a standalone server or a Sentinel-managed primary, the store has one
// breaker. On a Cluster each primary has its own, keyed by its address,
// and on a Ring each shard: a dead node sends only its keys to on_failure
// while the others keep deciding. Each node's decisions are pipelined
// apart from the others' for the same reason (a pipeline waits for its
// slowest node); on a Ring, a shard's batch is one script call (see
// execMerged), since a shard holds any keys. A call is guarded by the
// breaker of its first key's node, from the client's map of nodes (see
// nodes.go); a call whose zones live on several nodes (see split.go) runs
// each node's part under that node's breaker, so a dead node neither
// trips a live one's breaker nor makes calls wait once its own is open.
// Calls without keys (pings, control records) use the store's breaker.
//
// After a Cluster failover a dead primary's slots belong to its replica,
// whose address has a breaker of its own, closed: decisions come back as
// soon as the client's slot map has the new owner. A Ring's heartbeat
// moves a dead shard's keys to the live shards in the same way. While any
// of the store's breakers is not closed, a watcher reloads the map every
// cooldown, drops the breakers of addresses that no longer serve keys and
// PINGs through the others (no call may reach them any more), so an outage
// ends (breaker_state 0, rate_limit_store_up) once every key has a live
// node.
//
// The store counts as down (breaker_state, health, the down and up events)
// while any of its breakers is not closed: breaker_state reports the worst
// of them.

// breaker is one circuit breaker: the store's, or a node's.
type breaker struct {
	cb   *gobreaker.TwoStepCircuitBreaker[struct{}]
	node string // the node's address; "" for the store's own
	// openUntil is when the breaker last opened plus the cooldown, in unix
	// nanoseconds.
	openUntil atomic.Int64
	// dropped is set when the address stopped serving keys (see
	// prune): calls still in flight on this breaker then change nothing.
	dropped atomic.Bool
	// batch, for a node's breaker with pipelining on, batches the calls to
	// that node alone, so that a dead node's pipelines, which wait out
	// their timeout, never hold up calls to the others.
	batch *batcher
}

// newBreaker returns a closed breaker for node ("" for the store's own)
// with g's settings.
func (g *guard) newBreaker(node string, failures uint32) *breaker {
	b := &breaker{node: node}
	name := g.name
	if node != "" {
		name += "@" + node
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     g.cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsExcluded:  func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			g.changed(b, from, to)
		},
	})
	return b
}

// retryAfter is how long until b probes Redis again, or 1s when it is not
// open.
func (b *breaker) retryAfter() time.Duration {
	if d := time.Until(time.Unix(0, b.openUntil.Load())); d > 0 {
		return d
	}
	return time.Second
}

// nodeBreakers are the breakers of a Cluster's primaries or a Ring's
// shards.
type nodeBreakers struct {
	topo     nodeTopology
	failures uint32

	mu   sync.Mutex
	byID atomic.Pointer[map[string]*breaker] // copy on write
	// watching is set while the watcher runs; stop ends it.
	watching bool
	stop     chan struct{}
	stopped  sync.Once
}

// breakerFor returns the breaker that guards a call whose first key is
// key.
func (s *Store) breakerFor(key string) *breaker {
	nb := s.g.nodes
	if nb == nil {
		return s.g.main
	}
	addr, ok := nb.topo.nodeFor(key)
	if !ok {
		return s.g.main
	}
	return s.nodeBreaker(addr)
}

// groupBreakers returns the breaker of each group's node (groups: keys'
// indexes per hash tag, see split.go; the first group's is first, keys[0]'s)
// and whether they are not all first. It returns nil without groups or
// per-node breakers.
func (s *Store) groupBreakers(first *breaker, keys []string, groups [][]int) (bs []*breaker, several bool) {
	if s.g.nodes == nil || groups == nil {
		return nil, false
	}
	bs = make([]*breaker, len(groups))
	bs[0] = first
	for g := 1; g < len(groups); g++ {
		bs[g] = s.breakerFor(keys[groups[g][0]])
		several = several || bs[g] != first
	}
	return bs, several
}

// nodeBreaker returns the breaker of the node at addr, creating
// it on first use. s.g.nodes must be set.
func (s *Store) nodeBreaker(addr string) *breaker {
	nb := s.g.nodes
	if m := nb.byID.Load(); m != nil {
		if b, ok := (*m)[addr]; ok {
			return b
		}
	}
	nb.mu.Lock()
	defer nb.mu.Unlock()
	old := nb.byID.Load()
	if old != nil {
		if b, ok := (*old)[addr]; ok {
			return b
		}
	}
	next := make(map[string]*breaker, 4)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	b := s.g.newBreaker(addr, nb.failures)
	if s.batch != nil {
		b.batch = &batcher{p: s.batch.p, max: s.batch.max, width: s.batch.width, m: s.batch.m, merge: nb.topo.mergeable()}
	}
	next[addr] = b
	nb.byID.Store(&next)
	return b
}

// changed records a transition of b. It runs under b's lock, once per
// transition. Opening and closing are logged as warnings and information;
// the probes of a lasting outage (open to half-open and back) only at
// debug level. The store's down event goes out when its first breaker
// opens, its up event when its last one closes (or is dropped), so an
// outage costs two lines and two events however long it lasts.
func (g *guard) changed(b *breaker, from, to gobreaker.State) {
	var fields []zap.Field
	if b.node != "" {
		fields = append(fields, zap.String("node", b.node))
	}
	switch to {
	case gobreaker.StateOpen:
		b.openUntil.Store(time.Now().Add(g.cooldown).UnixNano())
		var last string
		if p := g.lastErr.Load(); p != nil {
			last = *p
		}
		level := zap.WarnLevel
		msg := "redis store unavailable: circuit breaker open, on_failure decides without asking redis"
		if from == gobreaker.StateHalfOpen {
			level, msg = zap.DebugLevel, "redis store still unavailable: circuit breaker open again"
		}
		if !g.inheriting.Load() {
			g.log.Log(level, msg, append(fields, zap.String("on_failure", g.policy),
				zap.Duration("cooldown", g.cooldown), zap.String("last_error", last))...)
		}
		g.setLevel(b, gaugeLevelOpen, last)
	case gobreaker.StateHalfOpen:
		g.log.Debug("circuit breaker half-open: probing redis", fields...)
		g.setLevel(b, gaugeLevelHalfOpen, "")
	case gobreaker.StateClosed:
		g.log.Info("redis store available again: circuit breaker closed", fields...)
		g.setLevel(b, gaugeLevelClosed, "")
	}
}

// Levels of the breaker_state gauge.
const (
	gaugeLevelClosed   = 0
	gaugeLevelHalfOpen = 1
	gaugeLevelOpen     = 2
)

// setLevel records b's state and updates the store's: the worst of its
// breakers'. The first breaker to leave closed posts the down event (with
// lastErr), the last one to return posts the up event.
func (g *guard) setLevel(b *breaker, level int, lastErr string) {
	if level != gaugeLevelClosed && b.dropped.Load() {
		return
	}
	g.levelsMu.Lock()
	if g.levels == nil {
		g.levels = make(map[*breaker]int)
	}
	_, wasDown := g.levels[b]
	wasStoreDown := len(g.levels) > 0
	if level == gaugeLevelClosed {
		delete(g.levels, b)
	} else {
		g.levels[b] = level
	}
	worst := gaugeLevelClosed
	for _, l := range g.levels {
		worst = max(worst, l)
	}
	g.level.Store(int32(worst))
	g.m.state.Set(float64(worst))
	quiet := g.inheriting.Load() || g.handedOver.Load()
	switch {
	case quiet:
	case !wasStoreDown && len(g.levels) > 0:
		g.events.down(lastErr, time.Now())
	case wasStoreDown && len(g.levels) == 0:
		g.events.up(time.Now())
	}
	g.levelsMu.Unlock()
	// After the unlock: the watcher takes nb.mu, then g.levelsMu.
	if !wasDown && level != gaugeLevelClosed && g.nodes != nil {
		g.nodes.watch(g)
	}
}

// stateName is the worst state of the store's breakers, as gobreaker
// names it.
func (g *guard) stateName() string {
	switch g.level.Load() {
	case gaugeLevelOpen:
		return gobreaker.StateOpen.String()
	case gaugeLevelHalfOpen:
		return gobreaker.StateHalfOpen.String()
	}
	return gobreaker.StateClosed.String()
}

// watch starts the watcher of nb unless it runs; see the top of the file.
func (nb *nodeBreakers) watch(g *guard) {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	if nb.watching {
		return
	}
	nb.watching = true
	go nb.watchLoop(g)
}

// watchLoop runs every cooldown, until none of the store's breakers is
// open or half-open, or the store closes: it reloads the map of nodes,
// drops the breakers of addresses that no longer serve keys, and probes
// each breaker that is not closed with a PING, since a breaker no call
// reaches any more (its keys moved, or calls only fell back to the store's
// own while the map was incomplete) would otherwise never close.
func (nb *nodeBreakers) watchLoop(g *guard) {
	tick := time.NewTicker(max(g.cooldown, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-nb.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		nb.topo.refresh(ctx)
		masters := nb.topo.members(ctx)
		if masters != nil {
			nb.prune(g, masters)
		}
		nb.probe(ctx, g, masters)
		cancel()
		nb.mu.Lock()
		if len(g.down()) == 0 {
			nb.watching = false
			nb.mu.Unlock()
			return
		}
		nb.mu.Unlock()
	}
}

// down returns the breakers that are open or half-open.
func (g *guard) down() []*breaker {
	g.levelsMu.Lock()
	defer g.levelsMu.Unlock()
	out := make([]*breaker, 0, len(g.levels))
	for b := range g.levels {
		out = append(out, b)
	}
	return out
}

// prune drops the breakers of addresses that are not among masters (the
// nodes that serve keys) any more, and counts them as closed.
func (nb *nodeBreakers) prune(g *guard, masters map[string]*goredis.Client) {
	nb.mu.Lock()
	old := nb.byID.Load()
	var gone []*breaker
	if old != nil {
		next := make(map[string]*breaker, len(*old))
		for addr, b := range *old {
			if masters[addr] != nil {
				next[addr] = b
			} else {
				gone = append(gone, b)
			}
		}
		nb.byID.Store(&next)
	}
	nb.mu.Unlock()
	for _, b := range gone {
		b.dropped.Store(true)
		g.log.Info("redis node no longer serves keys (a former Cluster primary, or a Ring shard the ring took out): its circuit breaker is dropped", zap.String("node", b.node))
		g.setLevel(b, gaugeLevelClosed, "")
	}
}

// probe PINGs, through its breaker, each breaker that is not closed and
// whose cooldown is over: the store's own through the client, a node's
// through that node.
func (nb *nodeBreakers) probe(ctx context.Context, g *guard, masters map[string]*goredis.Client) {
	for _, b := range g.down() {
		var p pinger = nb.topo
		if b.node != "" {
			c := masters[b.node]
			if c == nil {
				continue
			}
			p = c
		}
		done, err := b.cb.Allow()
		if err != nil {
			continue // open and cooling down, or another probe runs
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		done(p.Ping(pctx).Err())
		cancel()
	}
}

// close stops the watcher.
func (nb *nodeBreakers) close() {
	if nb != nil {
		nb.stopped.Do(func() { close(nb.stop) })
	}
}

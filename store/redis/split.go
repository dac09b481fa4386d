package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// Multi-zone calls on Cluster and Ring.
//
// A script may only touch keys of one slot (one shard for a Ring), and the
// keys of different zones hash to different slots. Putting a whole call
// under one hash tag (say, its first key's) would store a counter under a
// different name depending on which other zones a request matched, so one
// limit would be split across several counters. Instead each counter keeps
// its own tag, and a call over several tags is split into groups of
// requests that share a tag, in two phases:
//
//  1. Every group is decided in a dry run, which writes nothing. If any
//     request that is not Shadow is denied, these are the decisions and
//     nothing was charged anywhere: the common denial costs no refund.
//  2. Otherwise the groups are charged one after the other, each atomically
//     and all-or-nothing by the take script. If a group is now blocked,
//     because another call charged its keys since phase 1, the groups
//     charged before it are refunded: each charge is given back with the
//     opposite cost, and the groups after it keep their phase-1 decisions.
//
// So no counter ever admits more than its limit, and without concurrent
// calls on the same keys a split call decides exactly like one atomic call.
// Under such a race it loses isolation: between a charge and its refund
// (a round trip) another call may see the charge and be denied, and a
// give-back is an exact inverse only when nothing else touched the key
// meanwhile (sliding_log gives back the newest units; a refunded
// concurrency acquire renews the lease; a refunded release re-acquires,
// and is dropped when it no longer fits). Calls whose zones share a tag are
// never split, and a split call costs two round trips per group.

// groupByTag returns the indexes of keys grouped by hash tag, in order of
// first appearance.
func groupByTag(keys []string) [][]int {
	var groups [][]int
	tags := make([]string, 0, 2)
	for i, k := range keys {
		tag := hashTag(k)
		g := 0
		for g < len(tags) && tags[g] != tag {
			g++
		}
		if g == len(tags) {
			tags = append(tags, tag)
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// subset is the part of a call that one group covers.
type subset struct {
	reqs []store.Request
	keys []string
	ids  []algID
	out  []algorithms.Decision
}

func pick(reqs []store.Request, keys []string, ids []algID, idx []int) subset {
	sub := subset{
		reqs: make([]store.Request, len(idx)),
		keys: make([]string, len(idx)),
		ids:  make([]algID, len(idx)),
		out:  make([]algorithms.Decision, len(idx)),
	}
	for j, i := range idx {
		sub.reqs[j], sub.keys[j], sub.ids[j] = reqs[i], keys[i], ids[i]
	}
	return sub
}

// takeSplit decides a call whose keys have several hash tags; see above.
// nodes[g], when nodes is not nil, is group g's node's breaker, whose
// batcher sends the group's calls. With guard set (the groups live on
// several nodes), each group's calls also run under that breaker, so that
// a dead node's timeouts count against its breaker alone, and once it is
// open a call that needs that node falls to the policy at once instead of
// waiting; failed is then set to the breaker of the group that failed.
// Without guard the caller's breaker guards the whole call.
func (s *Store) takeSplit(ctx context.Context, deadline time.Time, reqs []store.Request, keys []string, ids []algID, out []algorithms.Decision, groups [][]int, nodes []*breaker, guard bool, failed **breaker) error {
	subs := make([]subset, len(groups))
	eval := func(g int, dry bool) error {
		var b *breaker
		if nodes != nil {
			b = nodes[g]
		}
		if !guard {
			return s.evalGroup(ctx, deadline, b, subs[g], groups[g], out, dry)
		}
		err := s.guarded(ctx, opTake, b, func() error {
			return s.evalGroup(ctx, deadline, b, subs[g], groups[g], out, dry)
		})
		if err != nil {
			*failed = b
		}
		return err
	}
	for g, idx := range groups {
		subs[g] = pick(reqs, keys, ids, idx)
		if err := eval(g, true); err != nil {
			return err
		}
	}
	if store.Blocked(reqs, out) {
		return nil
	}
	for g := range groups {
		if err := eval(g, false); err != nil {
			return errors.Join(err, s.refund(ctx, subs[:g]))
		}
		if store.Blocked(subs[g].reqs, subs[g].out) {
			return s.refund(ctx, subs[:g])
		}
	}
	return nil
}

// evalGroup runs the take script for one group, through the batcher of
// breaker b's node (nil: look it up), and copies its decisions to their
// places in out.
func (s *Store) evalGroup(ctx context.Context, deadline time.Time, b *breaker, sub subset, idx []int, out []algorithms.Decision, dry bool) error {
	if err := s.eval(ctx, deadline, b, sub.reqs, sub.keys, sub.ids, sub.out, dry); err != nil {
		return err
	}
	for j, i := range idx {
		out[i] = sub.out[j]
	}
	return nil
}

// refund gives back what the groups in charged were charged. It runs even
// when ctx is done, within a timeout of its own, since the charges stand
// until it does.
func (s *Store) refund(ctx context.Context, charged []subset) error {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(s.timeout)
	var errs []error
	for _, sub := range charged {
		var back subset
		for j := range sub.reqs {
			r := sub.reqs[j]
			if !sub.out[j].Allowed || r.Peek || r.Cost == 0 {
				continue
			}
			r.Cost = opposite(r.Cost)
			// A shadow refund never blocks the others.
			r.Shadow = true
			back.reqs = append(back.reqs, r)
			back.keys = append(back.keys, sub.keys[j])
			back.ids = append(back.ids, sub.ids[j])
		}
		if len(back.reqs) == 0 {
			continue
		}
		back.out = make([]algorithms.Decision, len(back.reqs))
		if err := s.eval(ctx, deadline, nil, back.reqs, back.keys, back.ids, back.out, false); err != nil {
			errs = append(errs, fmt.Errorf("refunding a split call: %w", err))
		}
	}
	return errors.Join(errs...)
}

// opposite returns -cost, saturating for math.MinInt64.
func opposite(cost int64) int64 {
	if cost == math.MinInt64 {
		return math.MaxInt64
	}
	return -cost
}

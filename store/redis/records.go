package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/store"
)

// Control records.
//
// Control records (API keys, overrides) live in one Redis hash per kind,
//
//	<prefix>rw:rec:<kind>     field: the record's id, value: the record
//
// and every change is published on the channel <prefix>rw:rec as
// "<kind>\n<id>", so every Caddy instance sharing the Redis hears of it
// within a round trip. Instances watch the channel with SUBSCRIBE: go-redis
// keeps the subscription on the primary behind Sentinel, on the channel's
// node in a Cluster (PUBLISH reaches every node there) and on the
// channel's shard in a Ring (where PUBLISH goes to that shard too).
//
// The hashes have no TTL, by design: control records are durable, and are
// deleted only by DeleteRecord. The store's promise that every key it
// writes expires is about counters, which a client can create at will;
// control records are written only through the admin API.
//
// Record calls are bounded by the store's Timeout, but do not go through
// the circuit breaker or the on_failure policy, which are for decisions: a
// control write that fails returns its error, whatever the breaker's state,
// and does not count towards opening it.

// Record key names, after the store's key prefix.
const (
	recordsKey     = "rw:rec:"
	recordsChannel = "rw:rec"
)

// recordsResync is how often a watch reloads everything anyway, in case a
// notice was lost (a publish that failed after its write, a subscription
// that was down, a Ring that moved the channel).
const recordsResync = 30 * time.Second

// recordsClient is what control records need besides Client: a hash per
// kind, and publish/subscribe for change notices. *goredis.Client,
// *goredis.ClusterClient, *goredis.Ring and every UniversalClient have it;
// Client does not ask for it, so a store of decisions only can do without.
type recordsClient interface {
	HGet(ctx context.Context, key, field string) *goredis.StringCmd
	HGetAll(ctx context.Context, key string) *goredis.MapStringStringCmd
	HSet(ctx context.Context, key string, values ...any) *goredis.IntCmd
	HDel(ctx context.Context, key string, fields ...string) *goredis.IntCmd
	Publish(ctx context.Context, channel string, message any) *goredis.IntCmd
	Subscribe(ctx context.Context, channels ...string) *goredis.PubSub
}

// records returns the store's client as a recordsClient, or an error
// saying that it cannot keep records.
func (s *Store) records() (recordsClient, error) {
	rc, ok := s.c.(recordsClient)
	if !ok {
		return nil, fmt.Errorf("%s cannot keep control records: its client, a %T, has no hash and publish/subscribe commands (HGET, HSET, HDEL, PUBLISH, SUBSCRIBE)", s.diag.where, s.c)
	}
	return rc, nil
}

// recordCall runs call on the records client within the store's timeout,
// and explains its error.
func (s *Store) recordCall(ctx context.Context, doing string, call func(context.Context, recordsClient) error) error {
	rc, err := s.records()
	if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := call(ctx, rc); err != nil {
		return s.diag.explain(doing, err)
	}
	return nil
}

// LoadRecords returns every record of kind, by id.
func (s *Store) LoadRecords(ctx context.Context, kind string) (map[string][]byte, error) {
	if err := store.CheckRecordKind(kind); err != nil {
		return nil, fmt.Errorf("loading records: %w", err)
	}
	var out map[string][]byte
	err := s.recordCall(ctx, "loading "+kind+" records from", func(ctx context.Context, rc recordsClient) error {
		all, err := rc.HGetAll(ctx, s.recordsKey(kind)).Result()
		if err != nil {
			return err
		}
		out = make(map[string][]byte, len(all))
		for id, v := range all {
			out[id] = []byte(v)
		}
		return nil
	})
	return out, err
}

// LoadRecord returns one record; ok is false when there is none.
func (s *Store) LoadRecord(ctx context.Context, kind, id string) ([]byte, bool, error) {
	if err := checkRecord(kind, id); err != nil {
		return nil, false, fmt.Errorf("loading a record: %w", err)
	}
	var v []byte
	var ok bool
	err := s.recordCall(ctx, fmt.Sprintf("loading %s record %q from", kind, id), func(ctx context.Context, rc recordsClient) error {
		got, err := rc.HGet(ctx, s.recordsKey(kind), id).Result()
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		v, ok = []byte(got), true
		return nil
	})
	return v, ok, err
}

// PutRecord creates or replaces one record and publishes the change. When
// the record was stored but the notice failed, it returns an error all the
// same: the other instances will not see the change before their next
// reload (at most 30s), and writing the record again is harmless.
func (s *Store) PutRecord(ctx context.Context, kind, id string, value []byte) error {
	if err := checkRecord(kind, id); err != nil {
		return fmt.Errorf("storing a record: %w", err)
	}
	return s.recordCall(ctx, fmt.Sprintf("storing %s record %q in", kind, id), func(ctx context.Context, rc recordsClient) error {
		if err := rc.HSet(ctx, s.recordsKey(kind), id, value).Err(); err != nil {
			return err
		}
		return s.announce(ctx, rc, kind, id)
	})
}

// DeleteRecord removes one record, if there is one, and publishes the
// change either way.
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := checkRecord(kind, id); err != nil {
		return fmt.Errorf("deleting a record: %w", err)
	}
	return s.recordCall(ctx, fmt.Sprintf("deleting %s record %q in", kind, id), func(ctx context.Context, rc recordsClient) error {
		if err := rc.HDel(ctx, s.recordsKey(kind), id).Err(); err != nil {
			return err
		}
		return s.announce(ctx, rc, kind, id)
	})
}

// announce publishes the change of one record.
func (s *Store) announce(ctx context.Context, rc recordsClient, kind, id string) error {
	if err := rc.Publish(ctx, s.prefix+recordsChannel, kind+"\n"+id).Err(); err != nil {
		return fmt.Errorf("the record was written, but publishing the change failed: %w", err)
	}
	return nil
}

func (s *Store) recordsKey(kind string) string { return s.prefix + recordsKey + kind }

// WatchRecords calls fn(kind, id) for every record changed by any instance
// sharing the store's Redis and key prefix, until ctx is done. It calls
// fn("", "") each time the subscription is made or made again (after a
// reconnect, or a failover), since changes may have been missed meanwhile,
// and every 30s as a safety net. The first call is such a reload, once the
// subscription is live. Calls come from one goroutine, one at a time.
//
// A store whose client cannot subscribe logs an error and never calls fn.
func (s *Store) WatchRecords(ctx context.Context, fn func(kind, id string)) {
	s.watch(ctx, fn, recordsResync)
}

// watch is WatchRecords with a reload every resync.
func (s *Store) watch(ctx context.Context, fn func(kind, id string), resync time.Duration) {
	if ctx.Err() != nil {
		return
	}
	rc, err := s.records()
	if err != nil {
		s.g.log.Error("not watching control records", zap.Error(err))
		return
	}
	go s.watchLoop(ctx, rc, fn, resync)
}

// watchLoop subscribes until ctx is done, and subscribes again on a Ring
// whose channel moved to another shard, or whose shard was removed.
func (s *Store) watchLoop(ctx context.Context, rc recordsClient, fn func(kind, id string), resync time.Duration) {
	deliver := func(kind, id string) {
		if ctx.Err() == nil {
			fn(kind, id)
		}
	}
	channel := s.prefix + recordsChannel
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		ps, shard, err := subscribe(ctx, rc, channel)
		if err == nil {
			end := receive(ctx, ps, deliver, tick.C, func() bool { return ringMoved(rc, shard, channel) })
			_ = ps.Close()
			switch {
			case end == watchMoved:
				continue
			case end == watchDone, shard == nil:
				// The watch is over, or the client closed.
				return
			}
		}
		// No Ring shard is up, or the one subscribed to was removed: try
		// again shortly.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// subscribe subscribes to channel. On a Ring it subscribes through the
// channel's shard, which it returns: Ring.Subscribe panics when no shard is
// up, where this returns an error.
func subscribe(ctx context.Context, rc recordsClient, channel string) (*goredis.PubSub, *goredis.Client, error) {
	if r, ok := rc.(*goredis.Ring); ok {
		shard, err := r.GetShardClientForKey(channel)
		if err != nil {
			return nil, nil, err
		}
		return shard.Subscribe(ctx, channel), shard, nil
	}
	return rc.Subscribe(ctx, channel), nil, nil
}

// ringMoved reports whether a Ring now places channel on another shard than
// the one subscribed through.
func ringMoved(rc recordsClient, shard *goredis.Client, channel string) bool {
	r, ok := rc.(*goredis.Ring)
	if !ok || shard == nil {
		return false
	}
	now, err := r.GetShardClientForKey(channel)
	return err == nil && now != shard
}

// Why receive returned.
const (
	watchDone   = iota // ctx is done
	watchClosed        // the subscription's client was closed
	watchMoved         // moved reported true at a resync tick
)

// receive hands the notices of ps to deliver, and a reload at each resync
// tick, until ctx is done, the subscription's client is closed, or moved
// reports true at a tick. It returns which.
func receive(ctx context.Context, ps *goredis.PubSub, deliver func(kind, id string), resync <-chan time.Time, moved func() bool) int {
	// Subscription confirmations come through too: each one follows a
	// (re)connect.
	msgs := ps.ChannelWithSubscriptions(goredis.WithChannelSize(1024))
	for {
		select {
		case <-ctx.Done():
			return watchDone
		case <-resync:
			deliver("", "")
			if moved() {
				return watchMoved
			}
		case m, ok := <-msgs:
			if !ok {
				return watchClosed
			}
			switch m := m.(type) {
			case *goredis.Subscription:
				if m.Kind == "subscribe" {
					deliver("", "")
				}
			case *goredis.Message:
				kind, id, ok := strings.Cut(m.Payload, "\n")
				if !ok {
					// Not a notice this version understands.
					kind, id = "", ""
				}
				deliver(kind, id)
			}
		}
	}
}

// checkRecord reports a kind or an id that store.Records does not allow.
func checkRecord(kind, id string) error {
	if err := store.CheckRecordKind(kind); err != nil {
		return err
	}
	return store.CheckRecordID(id)
}

// Interface guards
var (
	_ store.Records = (*Store)(nil)
	_ store.Records = (*Module)(nil)

	_ recordsClient = (*goredis.Client)(nil)
	_ recordsClient = (*goredis.ClusterClient)(nil)
	_ recordsClient = (*goredis.Ring)(nil)
	_ recordsClient = goredis.UniversalClient(nil)
)

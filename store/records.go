package store

import (
	"context"
	"fmt"
	"time"
)

// Records is implemented by stores that can keep Ratewarden's control
// records: API keys and live overrides. A record is an opaque value (JSON)
// under a kind ("api_keys", "zone_overrides", "key_overrides") and an id.
// Ids are made of [A-Za-z0-9_.:-] and at most 200 bytes; a store may escape
// them however its backend needs.
//
// The memory store keeps records in Caddy's configured storage, so they
// survive a restart; the Redis store keeps them in Redis and tells every
// instance sharing it about each change.
type Records interface {
	// LoadRecords returns every record of kind, by id.
	LoadRecords(ctx context.Context, kind string) (map[string][]byte, error)
	// LoadRecord returns one record; ok is false when there is none.
	LoadRecord(ctx context.Context, kind, id string) (value []byte, ok bool, err error)
	// PutRecord creates or replaces one record and notifies watchers on
	// every instance sharing the store.
	PutRecord(ctx context.Context, kind, id string, value []byte) error
	// DeleteRecord removes one record (no error when absent) and notifies
	// watchers.
	DeleteRecord(ctx context.Context, kind, id string) error
	// WatchRecords calls fn(kind, id) for each record any instance changed,
	// until ctx is done, and returns at once (the watch runs in the
	// background). It calls fn("", "") when changes may have been missed,
	// for example after a reconnect: the caller should then reload
	// everything. Changes must reach watchers on other instances within
	// one second.
	WatchRecords(ctx context.Context, fn func(kind, id string))
}

// RecordSwapper is a Records that can change a record only while it still
// holds what its writer read, so that two instances changing one record at
// once (one revokes an API key, another rotates it) cannot silently undo
// each other: the second change fails instead, and its writer reads again.
type RecordSwapper interface {
	// SwapRecord sets record kind/id to value, or deletes it when value
	// is nil, if it holds old now (nil: if there is none), and then
	// notifies watchers as PutRecord does. swapped is false, and nothing
	// is written, when the record holds something else.
	SwapRecord(ctx context.Context, kind, id string, old, value []byte) (swapped bool, err error)
}

// Health is one store's state as the admin API reports it.
type Health struct {
	// Backend is the store module: "memory" or "redis".
	Backend string `json:"backend"`
	// OK is true when the store can decide requests now.
	OK bool `json:"ok"`
	// Error says what failed, with no secret in it.
	Error string `json:"error,omitempty"`
	// Topology is standalone, sentinel, cluster, ring (Redis only).
	Topology string `json:"topology,omitempty"`
	// Breaker is the circuit breaker state: closed, half-open or open.
	Breaker string `json:"breaker,omitempty"`
	// OnFailure is the failure policy: allow, deny or local.
	OnFailure string `json:"on_failure,omitempty"`
	// Scripts tells whether the Lua scripts are loaded on the server(s):
	// "loaded", "missing" (loaded on first use) or "unknown".
	Scripts string `json:"scripts,omitempty"`
	// Pool holds connection pool statistics (Redis only).
	Pool *PoolStats `json:"pool,omitempty"`
	// Keys is the number of live keys (memory only).
	Keys *int64 `json:"keys,omitempty"`
	// Latency is how long the health probe took.
	Latency time.Duration `json:"latency_ns,omitempty"`
}

// PoolStats are a Redis connection pool's statistics.
type PoolStats struct {
	Hits       uint32 `json:"hits"`
	Misses     uint32 `json:"misses"`
	Timeouts   uint32 `json:"timeouts"`
	TotalConns uint32 `json:"total_conns"`
	IdleConns  uint32 `json:"idle_conns"`
	StaleConns uint32 `json:"stale_conns"`
}

// HealthChecker is implemented by stores that can report their health. A
// store that does not is reported healthy.
type HealthChecker interface {
	CheckHealth(ctx context.Context) Health
}

// MaxRecordID is the longest record id or kind, in bytes.
const MaxRecordID = 200

// CheckRecordID reports an id that Records does not allow: empty, longer
// than MaxRecordID bytes, or with a byte outside [A-Za-z0-9_.:-].
func CheckRecordID(id string) error {
	if id == "" || len(id) > MaxRecordID {
		return fmt.Errorf("record id of %d bytes: want 1 to %d", len(id), MaxRecordID)
	}
	for i := 0; i < len(id); i++ {
		if !recordIDByte(id[i]) {
			return fmt.Errorf("record id %q: byte %d is not one of [A-Za-z0-9_.:-]", id, i)
		}
	}
	return nil
}

// CheckRecordKind reports a kind that is not made of [A-Za-z0-9_-], like
// "api_keys", so that it can name a directory or a Redis hash (braces would
// set a Cluster slot, a newline would garble change notices).
func CheckRecordKind(kind string) error {
	if kind == "" || len(kind) > MaxRecordID {
		return fmt.Errorf("record kind of %d bytes: want 1 to %d", len(kind), MaxRecordID)
	}
	for i := 0; i < len(kind); i++ {
		if c := kind[i]; !recordIDByte(c) || c == '.' || c == ':' {
			return fmt.Errorf("record kind %q: byte %d is not one of [A-Za-z0-9_-]", kind, i)
		}
	}
	return nil
}

func recordIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}

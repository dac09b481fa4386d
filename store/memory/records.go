package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/ratewarden/ratewarden/store"
)

// Control records.
//
// The memory store keeps control records (API keys, overrides) in Caddy's
// configured storage, so that they survive a restart, under
//
//	rate_limit/<store name>/<kind>/<escaped id>.rec
//
// An id is escaped by writing each ':' as '~' (Windows file names cannot
// hold a colon, and no id holds a '~'), and the ".rec" suffix keeps names
// such as "." and ".." from meaning a directory and tells a record from the
// temporary files a storage may write next to it. On a case-insensitive
// file system (macOS, Windows) two ids that differ only in case share one
// file.
//
// Records go to the storage of the newest config: the store is pooled
// across reloads, and each Provision hands it its config's storage. Every
// change is told to the watchers of every config that shares the store, in
// this process: the memory store has no other instance to tell.

// recordSuffix ends every record's storage key.
const recordSuffix = ".rec"

// maxQueued bounds a watcher's backlog of changes; past it the backlog is
// replaced by one reload notice.
const maxQueued = 1024

// errNoStorage is returned by the record methods of a store that was not
// provisioned in a Caddy config, so has no storage.
var errNoStorage = errors.New("the memory store has no storage for control records: it was not provisioned in a Caddy config")

// records is a store's control-record state: where records live, and who
// watches them.
type records struct {
	place atomic.Pointer[recordPlace]
	// swap serialises SwapRecord's read and write in this process (the
	// only writer a memory store has).
	swap sync.Mutex

	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

// recordPlace is a storage and the key prefix of a store's records in it.
type recordPlace struct {
	storage certmagic.Storage
	prefix  string
}

// UseStorage makes the store keep its control records in st, under
// rate_limit/<name>/. The module calls it on every Provision, so a pooled
// store uses the storage of the newest config. A nil st leaves the store
// without records.
func (s *Store) UseStorage(st certmagic.Storage, name string) {
	if st == nil {
		s.records.place.Store(nil)
		return
	}
	s.records.place.Store(&recordPlace{storage: st, prefix: path.Join("rate_limit", name)})
}

// configStorage returns the storage of ctx's config, or nil when ctx belongs
// to no config, as a bare caddy.NewContext in a test does: caddy.Context
// cannot say whether it has a config, and its Storage dereferences it.
func configStorage(ctx caddy.Context) (st certmagic.Storage) {
	defer func() {
		if recover() != nil {
			st = nil
		}
	}()
	return ctx.Storage()
}

// LoadRecords returns every record of kind, by id. Entries of the storage
// that are not records (temporary files, foreign names) are passed over.
func (s *Store) LoadRecords(ctx context.Context, kind string) (map[string][]byte, error) {
	p, dir, err := s.recordDir(kind)
	if err != nil {
		return nil, fmt.Errorf("loading %s records: %w", kind, err)
	}
	keys, err := p.storage.List(ctx, dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading %s records: listing %s: %w", kind, dir, err)
	}
	out := make(map[string][]byte, len(keys))
	for _, key := range keys {
		id, ok := unescapeID(path.Base(key))
		if !ok {
			continue
		}
		v, err := p.storage.Load(ctx, key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("loading %s record %q: %w", kind, id, err)
		}
		out[id] = v
	}
	return out, nil
}

// LoadRecord returns one record; ok is false when there is none.
func (s *Store) LoadRecord(ctx context.Context, kind, id string) ([]byte, bool, error) {
	p, key, err := s.recordKey(kind, id)
	if err != nil {
		return nil, false, fmt.Errorf("loading %s record: %w", kind, err)
	}
	v, err := p.storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("loading %s record %q: %w", kind, id, err)
	}
	return v, true, nil
}

// PutRecord creates or replaces one record, and then tells the watchers.
func (s *Store) PutRecord(ctx context.Context, kind, id string, value []byte) error {
	p, key, err := s.recordKey(kind, id)
	if err != nil {
		return fmt.Errorf("storing %s record: %w", kind, err)
	}
	if err := p.storage.Store(ctx, key, value); err != nil {
		return fmt.Errorf("storing %s record %q: %w", kind, id, err)
	}
	s.records.notify(change{kind, id})
	return nil
}

// SwapRecord sets or deletes one record while it still holds old (see
// store.RecordSwapper), and then tells the watchers. Swaps are serialised
// in this process; a plain PutRecord or DeleteRecord is not held back by
// them.
func (s *Store) SwapRecord(ctx context.Context, kind, id string, old, value []byte) (bool, error) {
	s.records.swap.Lock()
	defer s.records.swap.Unlock()
	cur, ok, err := s.LoadRecord(ctx, kind, id)
	if err != nil {
		return false, err
	}
	if ok != (old != nil) || ok && !bytes.Equal(cur, old) {
		return false, nil
	}
	if value == nil {
		return true, s.DeleteRecord(ctx, kind, id)
	}
	return true, s.PutRecord(ctx, kind, id, value)
}

// DeleteRecord removes one record, if there is one, and then tells the
// watchers either way.
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) error {
	p, key, err := s.recordKey(kind, id)
	if err != nil {
		return fmt.Errorf("deleting %s record: %w", kind, err)
	}
	if err := p.storage.Delete(ctx, key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting %s record %q: %w", kind, id, err)
	}
	s.records.notify(change{kind, id})
	return nil
}

// WatchRecords calls fn for every record changed through this store, until
// ctx is done. The first call is fn("", ""), since changes made before the
// watch began are not told: the caller reloads everything. Calls come from
// one goroutine per watch, in the order of the changes, never blocking the
// writer.
func (s *Store) WatchRecords(ctx context.Context, fn func(kind, id string)) {
	if ctx.Err() != nil {
		return
	}
	w := &watcher{ctx: ctx, fn: fn, queue: []change{{}}, wake: make(chan struct{}, 1)}
	w.wake <- struct{}{}
	rs := &s.records
	rs.mu.Lock()
	if rs.watchers == nil {
		rs.watchers = make(map[*watcher]struct{})
	}
	rs.watchers[w] = struct{}{}
	rs.mu.Unlock()
	go w.run(func() {
		rs.mu.Lock()
		delete(rs.watchers, w)
		rs.mu.Unlock()
	})
}

// recordDir returns the storage and the directory of kind's records.
func (s *Store) recordDir(kind string) (*recordPlace, string, error) {
	p := s.records.place.Load()
	if p == nil {
		return nil, "", errNoStorage
	}
	if err := checkKind(kind); err != nil {
		return nil, "", err
	}
	return p, path.Join(p.prefix, kind), nil
}

// recordKey returns the storage and the storage key of one record.
func (s *Store) recordKey(kind, id string) (*recordPlace, string, error) {
	p, dir, err := s.recordDir(kind)
	if err != nil {
		return nil, "", err
	}
	if err := checkID(id); err != nil {
		return nil, "", err
	}
	return p, dir + "/" + escapeID(id), nil
}

// escapeID returns the file name of id's record; see Control records.
func escapeID(id string) string {
	return strings.ReplaceAll(id, ":", "~") + recordSuffix
}

// unescapeID returns the id whose record has the file name name, and
// whether name is a record's at all.
func unescapeID(name string) (string, bool) {
	escaped, ok := strings.CutSuffix(name, recordSuffix)
	if !ok {
		return "", false
	}
	id := strings.ReplaceAll(escaped, "~", ":")
	return id, checkID(id) == nil
}

// checkID and checkKind are store.Records' rules for ids and kinds.
var (
	checkID   = store.CheckRecordID
	checkKind = store.CheckRecordKind
)

// change is one changed record; the zero change means "reload everything".
type change struct{ kind, id string }

// notify queues c for every watcher.
func (rs *records) notify(c change) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for w := range rs.watchers {
		w.push(c)
	}
}

// watcher is one WatchRecords: a backlog of changes and the goroutine that
// hands them to fn.
type watcher struct {
	ctx context.Context
	fn  func(kind, id string)

	mu    sync.Mutex
	queue []change
	wake  chan struct{}
}

// push queues c and wakes the watcher. A backlog grown past maxQueued (a
// watcher much slower than the writers) becomes one reload notice.
func (w *watcher) push(c change) {
	w.mu.Lock()
	if len(w.queue) >= maxQueued {
		w.queue = append(w.queue[:0], change{})
	}
	w.queue = append(w.queue, c)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run hands queued changes to fn until ctx is done, then calls remove.
func (w *watcher) run(remove func()) {
	defer remove()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, c := range batch {
			if w.ctx.Err() != nil {
				return
			}
			w.fn(c.kind, c.id)
		}
	}
}

// Interface guards
var (
	_ store.Records       = (*Store)(nil)
	_ store.RecordSwapper = (*Store)(nil)
)

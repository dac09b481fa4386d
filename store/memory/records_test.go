package memory

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
	"github.com/caddyserver/certmagic"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
	"github.com/ratewarden/ratewarden/store/storetest"
)

// fileStore returns a store whose records live in a certmagic.FileStorage
// under dir.
func fileStore(t *testing.T, dir string) *Store {
	s := newTestStore(t, Options{})
	s.UseStorage(&certmagic.FileStorage{Path: dir}, "test")
	return s
}

func TestRecordsContract(t *testing.T) {
	t.Parallel()
	storetest.RunRecords(t, func(t *testing.T) store.Records {
		return fileStore(t, t.TempDir())
	})
}

func TestRecordsSurviveARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	before := fileStore(t, dir)
	for id, v := range map[string]string{"k1": `{"a":1}`, "zone:api": `{"b":2}`, "..": "dots"} {
		if err := before.PutRecord(t.Context(), "api_keys", id, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	before.Close()

	// A new process: a new store over the same storage.
	after := fileStore(t, dir)
	got, err := after.LoadRecords(t.Context(), "api_keys")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"k1": `{"a":1}`, "zone:api": `{"b":2}`, "..": "dots"}
	if len(got) != len(want) {
		t.Fatalf("after a restart: %d records, want %d", len(got), len(want))
	}
	for id, v := range want {
		if string(got[id]) != v {
			t.Errorf("after a restart, %q = %q, want %q", id, got[id], v)
		}
	}
}

func TestRecordsLayoutInStorage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := fileStore(t, dir)
	if err := s.PutRecord(t.Context(), "key_overrides", "api:0f1e", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Operators back up and inspect this path: it is part of the contract.
	file := filepath.Join(dir, "rate_limit", "test", "key_overrides", "api~0f1e.rec")
	if b, err := os.ReadFile(file); err != nil || string(b) != "v" {
		t.Fatalf("reading %s: %q, %v", file, b, err)
	}

	// Files that are not records, such as a storage's temporary files,
	// are not loaded.
	for _, name := range []string{"123456789", "notes.txt", "bad id.rec"} {
		if err := os.WriteFile(filepath.Join(filepath.Dir(file), name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.LoadRecords(t.Context(), "key_overrides")
	if err != nil || len(got) != 1 || string(got["api:0f1e"]) != "v" {
		t.Fatalf("LoadRecords = %q, %v; want only api:0f1e", got, err)
	}
}

func TestRecordsRefuseBadKinds(t *testing.T) {
	t.Parallel()
	s := fileStore(t, t.TempDir())
	for _, kind := range []string{"", ".", "..", "a/b", "api:keys", "a.b"} {
		if err := s.PutRecord(t.Context(), kind, "id", []byte("x")); err == nil {
			t.Errorf("PutRecord accepted the kind %q", kind)
		}
		if _, err := s.LoadRecords(t.Context(), kind); err == nil {
			t.Errorf("LoadRecords accepted the kind %q", kind)
		}
	}
}

func TestRecordsWithoutStorage(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	ctx := t.Context()
	checks := map[string]error{
		"PutRecord":    s.PutRecord(ctx, "api_keys", "k", nil),
		"DeleteRecord": s.DeleteRecord(ctx, "api_keys", "k"),
	}
	_, _, checks["LoadRecord"] = s.LoadRecord(ctx, "api_keys", "k")
	_, checks["LoadRecords"] = s.LoadRecords(ctx, "api_keys")
	for name, err := range checks {
		if !errors.Is(err, errNoStorage) {
			t.Errorf("%s without storage: %v, want errNoStorage", name, err)
		}
	}
}

// configContext returns the context of a Caddy config whose storage is a
// file system under root, as a running Caddy hands modules, with the
// store name name.
func configContext(t *testing.T, root, name string) caddy.Context {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{
		"admin":   map[string]any{"disabled": true},
		"storage": map[string]any{"module": "file_system", "root": root},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"writer": map[string]any{"output": "discard"}}}},
	})
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	provisionMu.Lock()
	root0, err := caddy.ProvisionContext(&cfg)
	provisionMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(root0)
	t.Cleanup(cancel)
	return ctx.WithValue(store.NameCtxKey, name)
}

// provisionMu serializes caddy.ProvisionContext, which sets process-wide
// defaults.
var provisionMu sync.Mutex

func TestRecordsOfAPooledStoreFollowTheNewestConfig(t *testing.T) {
	t.Parallel()
	const name = "TestRecordsOfAPooledStoreFollowTheNewestConfig"
	oldDir, newDir := t.TempDir(), t.TempDir()
	var old, cur Module
	if err := old.Provision(configContext(t, oldDir, name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Cleanup() })
	oldWatch, stopOld := context.WithCancel(t.Context())
	oldCalls := watchAll(&old, oldWatch)

	// A reload: the new config's module shares the pooled store, and both
	// configs' watchers hear of changes made through either.
	if err := cur.Provision(configContext(t, newDir, name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cur.Cleanup() })
	if old.Store != cur.Store {
		t.Fatal("the reload did not share the pooled store")
	}
	curCalls := watchAll(&cur, t.Context())
	for _, calls := range []chan [2]string{oldCalls, curCalls} {
		wantCall(t, calls, [2]string{"", ""}) // each watch starts with a reload
	}

	if err := old.PutRecord(t.Context(), "api_keys", "k1", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, calls := range []chan [2]string{oldCalls, curCalls} {
		wantCall(t, calls, [2]string{"api_keys", "k1"})
	}
	// Written to the newest config's storage, even through the old module.
	if _, err := os.Stat(filepath.Join(newDir, "rate_limit", name, "api_keys", "k1.rec")); err != nil {
		t.Errorf("the record is not in the new config's storage: %v", err)
	}
	if _, err := os.Stat(filepath.Join(oldDir, "rate_limit", name, "api_keys", "k1.rec")); err == nil {
		t.Error("the record went to the old config's storage")
	}

	// The old config is unloaded: its watcher stops, the new one hears on.
	stopOld()
	time.Sleep(50 * time.Millisecond)
	if err := cur.DeleteRecord(t.Context(), "api_keys", "k1"); err != nil {
		t.Fatal(err)
	}
	wantCall(t, curCalls, [2]string{"api_keys", "k1"})
	select {
	case c := <-oldCalls:
		t.Errorf("the old config's cancelled watcher was called with %q", c)
	case <-time.After(100 * time.Millisecond):
	}
	cur.records.mu.Lock()
	n := len(cur.records.watchers)
	cur.records.mu.Unlock()
	if n != 1 {
		t.Errorf("%d watchers registered, want 1 after the old one's context ended", n)
	}
}

func TestAModuleInABareContextHasNoRecords(t *testing.T) {
	t.Parallel()
	ctx, cancel := caddy.NewContext(caddy.Context{
		Context: context.WithValue(context.Background(), store.NameCtxKey, "TestAModuleInABareContextHasNoRecords"),
	})
	defer cancel()
	var m Module
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Cleanup()
	if err := m.PutRecord(t.Context(), "api_keys", "k", nil); !errors.Is(err, errNoStorage) {
		t.Errorf("PutRecord in a module with no config storage: %v, want errNoStorage", err)
	}
}

func TestASlowWatcherDoesNotBlockWritersAndGetsAReload(t *testing.T) {
	t.Parallel()
	s := fileStore(t, t.TempDir())
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var calls [][2]string
	var mu sync.Mutex
	s.WatchRecords(t.Context(), func(kind, id string) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		mu.Lock()
		calls = append(calls, [2]string{kind, id})
		mu.Unlock()
	})
	<-entered // the watcher is stuck in its first call
	// The writes' notices, without a thousand file writes: only the
	// notices are under test.
	start := time.Now()
	for range maxQueued + 10 {
		s.records.notify(change{"api_keys", "k"})
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("notifying took %v with a stuck watcher", d)
	}
	close(release)
	err := waitUntil(5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) > 0 && calls[len(calls)-1] == [2]string{"api_keys", "k"}
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		t.Fatalf("the watcher did not catch up: %d calls", len(calls))
	}
	// The first call was the watch's start; the backlog overflowed into a
	// reload, so the watcher got far fewer calls than writes, and a reload
	// among them.
	if len(calls) > maxQueued+1 {
		t.Errorf("%d calls for %d writes: the backlog was not bounded", len(calls), maxQueued+10)
	}
	reloads := 0
	for _, c := range calls[1:] {
		if c == [2]string{"", ""} {
			reloads++
		}
	}
	if reloads == 0 {
		t.Error("an overflowed backlog did not become a reload notice")
	}
}

// watchAll watches m's records until ctx is done, into a channel.
func watchAll(m *Module, ctx context.Context) chan [2]string {
	calls := make(chan [2]string, 64)
	m.WatchRecords(ctx, func(kind, id string) { calls <- [2]string{kind, id} })
	return calls
}

func wantCall(t *testing.T, calls chan [2]string, want [2]string) {
	t.Helper()
	select {
	case got := <-calls:
		if got != want {
			t.Fatalf("watcher called with %q, want %q", got, want)
		}
	case <-time.After(time.Second):
		t.Fatalf("watcher not called with %q within 1s", want)
	}
}

func waitUntil(limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// CheckHealth has no file of its own tests: it is one call.
func TestCheckHealthCountsLiveKeysOnly(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTestStore(t, Options{Now: clk.Now, SweepInterval: caddy.Duration(time.Hour)})
	short, long := req(key("short1"), 5, 1), req(key("long"), 5, 1)
	long.Policy.Window = time.Hour
	for _, r := range []store.Request{short, req(key("short2"), 5, 1), long} {
		if err := s.Take(t.Context(), []store.Request{r}, make([]algorithms.Decision, 1)); err != nil {
			t.Fatal(err)
		}
	}
	h := s.CheckHealth(t.Context())
	if h.Backend != "memory" || !h.OK || h.Error != "" || h.Keys == nil || *h.Keys != 3 {
		t.Fatalf("health = %+v (keys %v), want memory, OK, 3 keys", h, h.Keys)
	}

	clk.Advance(2 * time.Minute) // the one-minute keys expire, unswept
	h = s.CheckHealth(t.Context())
	if h.Keys == nil || *h.Keys != 1 || s.Len() != 3 {
		t.Fatalf("after expiry: health keys %v, stored %d; want 1 live of 3 stored", h.Keys, s.Len())
	}
}

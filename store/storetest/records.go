// Package storetest holds behaviour suites that every store runs, so that
// the stores keep one contract. A store's own tests call a suite with a
// function that opens a fresh, empty instance of it.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/store"
)

// The kinds the suite writes: the control plane's own.
const (
	kindKeys      = "api_keys"
	kindZones     = "zone_overrides"
	kindOverrides = "key_overrides"
	// kindProbe is where a watch test writes until its watcher answers.
	kindProbe = "watch_probe"
)

// notifyWithin is how soon a change must reach a watcher (store.Records).
const notifyWithin = time.Second

// idAlphabet is every character an id may hold.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"

// RunRecords runs the store.Records contract against the stores open
// returns. Each case opens its own store and runs in parallel with the
// others, so open must return a store that no other call shares records
// with (for example by a key prefix of its own), and clean it up when t
// ends.
func RunRecords(t *testing.T, open func(t *testing.T) store.Records) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, r store.Records)
	}{
		{"a record is put, loaded, overwritten and deleted", putLoadOverwriteDelete},
		{"deleting a missing id is not an error", deleteMissing},
		{"LoadRecords returns exactly the kind's records", loadKindOnly},
		{"ids of every allowed character and up to 200 bytes round-trip", everyID},
		{"ids outside the alphabet are refused", badIDs},
		{"values come back byte for byte", byteForByte},
		{"a watcher sees puts and deletes by kind and id", watcherSeesChanges},
		{"a cancelled watcher is not called again", cancelledWatcher},
		{"a swap writes only over the value its writer read", swapOnlyOverWhatWasRead},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

func putLoadOverwriteDelete(t *testing.T, r store.Records) {
	ctx := t.Context()
	if _, ok, err := r.LoadRecord(ctx, kindKeys, "k1"); err != nil || ok {
		t.Fatalf("LoadRecord before any put: ok %v, err %v; want no record", ok, err)
	}
	mustPut(t, r, kindKeys, "k1", []byte(`{"v":1}`))
	wantRecord(t, r, kindKeys, "k1", []byte(`{"v":1}`))

	mustPut(t, r, kindKeys, "k1", []byte(`{"v":2,"longer":true}`))
	wantRecord(t, r, kindKeys, "k1", []byte(`{"v":2,"longer":true}`))
	mustPut(t, r, kindKeys, "k1", []byte(`{}`))
	wantRecord(t, r, kindKeys, "k1", []byte(`{}`))
	wantRecords(t, r, kindKeys, map[string][]byte{"k1": []byte(`{}`)})

	if err := r.DeleteRecord(ctx, kindKeys, "k1"); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	if v, ok, err := r.LoadRecord(ctx, kindKeys, "k1"); err != nil || ok {
		t.Fatalf("LoadRecord after delete: %q, ok %v, err %v; want no record", v, ok, err)
	}
	wantRecords(t, r, kindKeys, map[string][]byte{})

	// A deleted id can be put again.
	mustPut(t, r, kindKeys, "k1", []byte(`{"v":3}`))
	wantRecord(t, r, kindKeys, "k1", []byte(`{"v":3}`))
}

func deleteMissing(t *testing.T, r store.Records) {
	ctx := t.Context()
	if err := r.DeleteRecord(ctx, kindKeys, "never-put"); err != nil {
		t.Errorf("deleting an id never put: %v", err)
	}
	mustPut(t, r, kindKeys, "once", []byte("x"))
	for i := range 2 {
		if err := r.DeleteRecord(ctx, kindKeys, "once"); err != nil {
			t.Errorf("delete %d of the same id: %v", i+1, err)
		}
	}
	wantRecords(t, r, kindKeys, map[string][]byte{})
}

func loadKindOnly(t *testing.T, r store.Records) {
	wantRecords(t, r, kindZones, map[string][]byte{}) // a kind never written
	keys := map[string][]byte{"a": []byte("1"), "b": []byte("2"), "shared": []byte("3")}
	for id, v := range keys {
		mustPut(t, r, kindKeys, id, v)
	}
	mustPut(t, r, kindZones, "shared", []byte("zone"))
	mustPut(t, r, kindOverrides, "c", []byte("override"))

	wantRecords(t, r, kindKeys, keys)
	wantRecords(t, r, kindZones, map[string][]byte{"shared": []byte("zone")})
	wantRecords(t, r, kindOverrides, map[string][]byte{"c": []byte("override")})
	// The same id in another kind is another record.
	wantRecord(t, r, kindKeys, "shared", []byte("3"))
	if err := r.DeleteRecord(t.Context(), kindZones, "shared"); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, r, kindKeys, "shared", []byte("3"))
	wantRecords(t, r, kindZones, map[string][]byte{})
}

// edgeIDs are ids that a file system, a URL or a Redis key could mistake
// for something else.
func edgeIDs() []string {
	return []string{
		idAlphabet,
		strings.Repeat("x", 200),
		strings.Repeat(idAlphabet, 4)[:200],
		strings.Repeat(":", 200),
		strings.Repeat(".", 200),
		".", "..", "...", ".hidden", "trailing.", ":", "-", "_", "0",
		"zone:0f1e2d3c4b5a69788796a5b4c3d2e1f0",
		"CaseMatters", "casematters",
	}
}

func everyID(t *testing.T, r store.Records) {
	want := map[string][]byte{}
	for i, id := range edgeIDs() {
		if len(id) > 200 {
			t.Fatalf("test id %q is longer than 200 bytes", id)
		}
		want[id] = fmt.Appendf(nil, "value %d", i)
		mustPut(t, r, kindOverrides, id, want[id])
	}
	for id, v := range want {
		wantRecord(t, r, kindOverrides, id, v)
	}
	wantRecords(t, r, kindOverrides, want)
	for id := range want {
		if err := r.DeleteRecord(t.Context(), kindOverrides, id); err != nil {
			t.Fatalf("DeleteRecord(%q): %v", id, err)
		}
	}
	wantRecords(t, r, kindOverrides, map[string][]byte{})
}

func badIDs(t *testing.T, r store.Records) {
	ctx := t.Context()
	for _, id := range []string{"", "a/b", "../escape", "a\nb", "sp ace", "caf\u00e9", "a{b}", strings.Repeat("x", 201)} {
		if err := r.PutRecord(ctx, kindKeys, id, []byte("x")); err == nil {
			t.Errorf("PutRecord accepted the id %q", id)
		}
	}
	wantRecords(t, r, kindKeys, map[string][]byte{})
}

func byteForByte(t *testing.T, r store.Records) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	values := map[string][]byte{
		"empty":        {},
		"every-byte":   all,
		"nul":          {0, 0, 'a', 0},
		"not-utf8":     {0xff, 0xfe, 0xc3, 0x28},
		"line-endings": []byte("a\r\nb\nc\r"),
		"json":         []byte(`{"id":"k","labels":{"a":"\u00e9"},"n":1e3}`),
		"big":          big,
	}
	for id, v := range values {
		mustPut(t, r, kindKeys, id, v)
	}
	for id, v := range values {
		wantRecord(t, r, kindKeys, id, v)
	}
	wantRecords(t, r, kindKeys, values)
}

func watcherSeesChanges(t *testing.T, r store.Records) {
	w := startWatch(t, r, t.Context())
	ctx := t.Context()

	mustPut(t, r, kindKeys, "k1", []byte("1"))
	w.expect(t, kindKeys, "k1")
	mustPut(t, r, kindZones, "z:1", []byte("2"))
	w.expect(t, kindZones, "z:1")
	mustPut(t, r, kindKeys, "k1", []byte("overwritten"))
	w.expect(t, kindKeys, "k1")
	if err := r.DeleteRecord(ctx, kindKeys, "k1"); err != nil {
		t.Fatal(err)
	}
	w.expect(t, kindKeys, "k1")
}

// swapOnlyOverWhatWasRead checks store.RecordSwapper, on stores that have
// it: a swap creates, replaces and deletes only when the record holds what
// the caller says, tells watchers only of the swaps that happened, and
// otherwise leaves the record alone.
func swapOnlyOverWhatWasRead(t *testing.T, r store.Records) {
	sw, ok := r.(store.RecordSwapper)
	if !ok {
		t.Logf("%T cannot swap: a swap is a plain write there", r)
		return
	}
	w := startWatch(t, r, t.Context())
	swap := func(old, value []byte, want bool) {
		t.Helper()
		got, err := sw.SwapRecord(t.Context(), kindKeys, "s:1", old, value)
		if err != nil || got != want {
			t.Fatalf("SwapRecord(old %s, value %s) = %v, %v; want %v", brief(old), brief(value), got, err, want)
		}
		if want {
			w.expect(t, kindKeys, "s:1")
		}
	}
	absent := func() {
		t.Helper()
		if _, ok, err := r.LoadRecord(t.Context(), kindKeys, "s:1"); ok || err != nil {
			t.Fatalf("the record exists (%v, %v); want none", ok, err)
		}
	}
	swap([]byte("v0"), []byte("v1"), false) // nothing to replace
	absent()
	swap(nil, []byte("v1"), true) // create
	wantRecord(t, r, kindKeys, "s:1", []byte("v1"))
	swap(nil, []byte("v2"), false)          // it exists now
	swap([]byte("v0"), []byte("v2"), false) // it holds v1
	swap([]byte("v1x"), nil, false)         // a longer value is not a match
	wantRecord(t, r, kindKeys, "s:1", []byte("v1"))
	swap([]byte("v1"), []byte("v2"), true) // replace
	wantRecord(t, r, kindKeys, "s:1", []byte("v2"))
	swap([]byte("v2"), nil, true) // delete
	absent()
	swap([]byte("v2"), []byte("v3"), false) // gone
	absent()
}

func cancelledWatcher(t *testing.T, r store.Records) {
	watchCtx, cancel := context.WithCancel(t.Context())
	gone := startWatch(t, r, watchCtx)
	live := startWatch(t, r, t.Context())
	gone.settle()
	live.settle()

	cancel()
	gone.stop()
	mustPut(t, r, kindKeys, "after-cancel", []byte("1"))
	live.expect(t, kindKeys, "after-cancel")
	// The live watcher has the change: give the cancelled one as long
	// again before looking.
	time.Sleep(100 * time.Millisecond)
	if n := gone.callsAfterStop(); n != 0 {
		t.Errorf("the cancelled watcher was called %d times after its context was done", n)
	}
}

// watcher records the calls of one WatchRecords.
type watcher struct {
	events chan [2]string
	mu     sync.Mutex
	done   bool
	late   int
}

// startWatch watches r until ctx is done, and returns once the watch is
// live: it writes probe records until the watcher reports one, so a store
// that subscribes in the background is not raced.
func startWatch(t *testing.T, r store.Records, ctx context.Context) *watcher {
	t.Helper()
	w := &watcher{events: make(chan [2]string, 4096)}
	r.WatchRecords(ctx, w.call)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		mustPut(t, r, kindProbe, fmt.Sprint("probe-", n), []byte("probe"))
	wait:
		for {
			select {
			case ev := <-w.events:
				if ev[0] == kindProbe {
					return w
				}
			case <-tick.C:
				break wait
			case <-deadline:
				t.Fatal("the watcher saw none of the probe records written over 10s")
			}
		}
	}
}

func (w *watcher) call(kind, id string) {
	w.mu.Lock()
	if w.done {
		w.late++
	}
	w.mu.Unlock()
	w.events <- [2]string{kind, id}
}

// expect waits for the change (kind, id), passing over reloads and other
// changes, for at most notifyWithin.
func (w *watcher) expect(t *testing.T, kind, id string) {
	t.Helper()
	timeout := time.After(notifyWithin)
	var seen []string
	for {
		select {
		case ev := <-w.events:
			if ev == [2]string{kind, id} {
				return
			}
			seen = append(seen, fmt.Sprintf("%q/%q", ev[0], ev[1]))
		case <-timeout:
			t.Fatalf("no notice of %s/%q within %v; saw %v", kind, id, notifyWithin, seen)
		}
	}
}

// settle reads calls until none came for 200ms, so nothing is in flight.
func (w *watcher) settle() {
	for {
		select {
		case <-w.events:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

// stop marks the point after which any call is late.
func (w *watcher) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func (w *watcher) callsAfterStop() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.late
}

func mustPut(t *testing.T, r store.Records, kind, id string, v []byte) {
	t.Helper()
	if err := r.PutRecord(t.Context(), kind, id, v); err != nil {
		t.Fatalf("PutRecord(%s, %q): %v", kind, id, err)
	}
}

func wantRecord(t *testing.T, r store.Records, kind, id string, want []byte) {
	t.Helper()
	got, ok, err := r.LoadRecord(t.Context(), kind, id)
	if err != nil || !ok {
		t.Fatalf("LoadRecord(%s, %q): ok %v, err %v; want a record", kind, id, ok, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("LoadRecord(%s, %q) = %s, want %s", kind, id, brief(got), brief(want))
	}
}

func wantRecords(t *testing.T, r store.Records, kind string, want map[string][]byte) {
	t.Helper()
	got, err := r.LoadRecords(t.Context(), kind)
	if err != nil {
		t.Fatalf("LoadRecords(%s): %v", kind, err)
	}
	if !maps.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("LoadRecords(%s) ids = %q, want %q", kind, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		for id, v := range want {
			if g, ok := got[id]; ok && !bytes.Equal(g, v) {
				t.Errorf("LoadRecords(%s)[%q] = %s, want %s", kind, id, brief(g), brief(v))
			}
		}
	}
}

// brief shows a value in a failure message, cut short when long.
func brief(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("%q", b)
}

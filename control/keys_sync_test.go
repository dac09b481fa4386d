package control

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestChangesThroughOneRegistryReachAnother(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	a := testKeys(t, f, c, nil)
	b := testKeys(t, f, c, nil)

	tok, info := mustCreate(t, a, KeySpec{Name: "shared"})
	if _, res := a.Lookup(tok); res != LookupOK {
		t.Fatalf("the writing registry sees %v at once, want ok", res)
	}
	eventually(t, "B to see the new key", func() bool { _, res := b.Lookup(tok); return res == LookupOK })

	newTok := mustRotate(t, a, info.ID, 0)
	eventually(t, "B to see the rotation", func() bool {
		_, oldRes := b.Lookup(tok)
		_, newRes := b.Lookup(newTok)
		return oldRes == LookupExpired && newRes == LookupOK
	})

	if _, _, err := b.Revoke(bg, info.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A to see B's revocation", func() bool { _, res := a.Lookup(newTok); return res == LookupRevoked })
}

func TestFullReloadPicksUpMissedChanges(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	a := testKeys(t, f, c, nil)
	b := testKeys(t, f, c, nil)
	tok, info := mustCreate(t, a, KeySpec{Name: "quiet"})
	eventually(t, "B to see the key", func() bool { _, res := b.Lookup(tok); return res == LookupOK })

	// A revocation and a new key whose notifications were lost.
	revoked := a.Export()[0]
	at := c.Now()
	revoked.RevokedAt = &at
	raw, _ := json.Marshal(revoked)
	f.putQuiet(KindAPIKeys, info.ID, raw)
	other := APIKey{ID: "otherkey0001", Name: "other", CreatedAt: at,
		Secrets: []SecretHash{{Hash: strings.Repeat("ab", 32)}}}
	raw, _ = json.Marshal(other)
	f.putQuiet(KindAPIKeys, other.ID, raw)

	time.Sleep(50 * time.Millisecond)
	if _, res := b.Lookup(tok); res != LookupOK {
		t.Fatalf("B changed without a notification: %v", res)
	}
	f.notify("", "")
	eventually(t, "B to reload everything", func() bool {
		_, res := b.Lookup(tok)
		_, err := b.Info(other.ID)
		return res == LookupRevoked && err == nil
	})
}

func TestInvalidRecordsAreSkippedAndLogged(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	writer := testKeys(t, f, c, nil)
	tok, info := mustCreate(t, writer, KeySpec{Name: "good"})
	good := writer.Export()[0]

	bad := map[string]any{
		"notjson00001": "{not json",
		"wrongtype001": map[string]any{"id": "wrongtype001", "name": "x", "secrets": "nope"},
		"badhash00001": APIKey{ID: "badhash00001", Name: "x", Secrets: []SecretHash{{Hash: tok}}},
		"nosecrets001": APIKey{ID: "nosecrets001", Name: "x"},
		"noname000001": APIKey{ID: "noname000001", Secrets: good.Secrets},
		"otherid00001": APIKey{ID: "otherid00002", Name: "x", Secrets: good.Secrets},
		"bad id":       APIKey{ID: "bad id", Name: "x", Secrets: good.Secrets},
	}
	for id, v := range bad {
		raw, _ := json.Marshal(v)
		if s, ok := v.(string); ok {
			raw = []byte(s)
		}
		f.putQuiet(KindAPIKeys, id, raw)
	}

	log, logs := newObserved()
	reader := testKeys(t, f, c, log)
	if list := reader.List(); len(list) != 1 || list[0].ID != info.ID {
		t.Fatalf("List = %+v, want only the valid key", list)
	}
	if _, res := reader.Lookup(tok); res != LookupOK {
		t.Fatalf("valid key: %v", res)
	}
	skipped := logs.FilterMessage("skipping invalid control record").All()
	if len(skipped) != len(bad) {
		t.Fatalf("logged %d skipped records, want %d", len(skipped), len(bad))
	}
	for _, e := range skipped {
		if e.Level != zapcore.ErrorLevel || e.ContextMap()["id"] == "" {
			t.Errorf("skip log %v %v", e.Level, e.ContextMap())
		}
	}

	// A full reload that finds nothing new neither logs again nor rebuilds.
	snap, loads := reader.m.load(), f.loads.Load()
	f.notify("", "")
	eventually(t, "the full reload", func() bool { return f.loads.Load() > loads })
	waitIdle(reader.m)
	if reader.m.load() != snap {
		t.Error("an unchanged full reload published a new snapshot")
	}
	if n := logs.FilterMessage("skipping invalid control record").Len(); n != len(bad) {
		t.Errorf("after a reload %d skip lines, want still %d", n, len(bad))
	}

	// A valid record that turns invalid leaves the mirror.
	f.putQuiet(KindAPIKeys, info.ID, []byte(`{"id":"`+info.ID+`"}`))
	f.notify(KindAPIKeys, info.ID)
	eventually(t, "the broken record to leave", func() bool { _, res := reader.Lookup(tok); return res == LookupUnknown })
}

func TestStartRetriesWhileTheStoreIsDown(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	writer := testKeys(t, f, c, nil)
	tok, _ := mustCreate(t, writer, KeySpec{Name: "k"})

	f.down.Store(true)
	log, logs := newObserved()
	k := NewKeys(KeysOptions{Records: f, Now: c.Now, Logger: log})
	k.m.retryEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	err := k.Start(ctx)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Start with the store down: %v, want ErrUnavailable", err)
	}
	if _, _, err := k.Create(bg, KeySpec{Name: "x"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Create with the store down: %v, want ErrUnavailable", err)
	}
	eventually(t, "a few retries", func() bool { return f.loads.Load() >= 4 })
	if _, res := k.Lookup(tok); res != LookupUnknown {
		t.Fatalf("Lookup before the store is back: %v", res)
	}
	f.down.Store(false)
	eventually(t, "the retry to load the keys", func() bool { _, res := k.Lookup(tok); return res == LookupOK })
	if logs.FilterMessage("reloading control records; will retry").Len() == 0 {
		t.Fatal("the failed retries were not logged")
	}
	if err := k.Start(ctx); err == nil {
		t.Fatal("a second Start succeeded")
	}
}

func TestExpiryIsAuditedOnce(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	log, logs := newObserved()
	k := testKeys(t, f, c, log)
	at := c.Now().Add(time.Minute)
	_, info := mustCreate(t, k, KeySpec{Name: "temp", ExpiresAt: &at})
	_, revoked := mustCreate(t, k, KeySpec{Name: "revoked", ExpiresAt: &at})
	if _, _, err := k.Revoke(bg, revoked.ID); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, k, KeySpec{Name: "forever"})

	audits := func() []observer.LoggedEntry {
		return logs.FilterField(zap.String("action", ActionKeyExpired)).All()
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(audits()); n != 0 {
		t.Fatalf("%d expiry events before expiry", n)
	}
	c.Advance(time.Minute)
	eventually(t, "the expiry event", func() bool { return len(audits()) > 0 })
	time.Sleep(50 * time.Millisecond) // several more ticks
	k.auditExpired(c.Now().Add(time.Hour))
	got := audits()
	if len(got) != 1 {
		t.Fatalf("%d expiry events, want exactly 1", len(got))
	}
	fields := got[0].ContextMap()
	if fields["object"] != "api_key:"+info.ID {
		t.Errorf("object = %v", fields["object"])
	}
	actor, _ := json.Marshal(fields["actor"])
	if !strings.Contains(string(actor), `"System":true`) && !strings.Contains(string(actor), `"system":true`) {
		t.Errorf("actor = %s, want the system", actor)
	}
	before, _ := fields["before"].(KeyInfo)
	after, _ := fields["after"].(KeyInfo)
	if before.Status != StatusActive || after.Status != StatusExpired || after.ID != info.ID {
		t.Errorf("before %+v after %+v", before, after)
	}
}

// With a retention, each key that stopped working (revoked, or expired)
// that long ago is deleted at a tick, with a key.deleted event by the
// system; working keys stay, and without a retention nothing is deleted.
func TestRetentionPurgesKeysThatStoppedWorking(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	log, logs := newObserved()
	k := testKeys(t, f, c, log)
	at := c.Now().Add(time.Minute)
	_, expiring := mustCreate(t, k, KeySpec{Name: "expiring", ExpiresAt: &at})
	_, revoked := mustCreate(t, k, KeySpec{Name: "revoked"})
	if _, _, err := k.Revoke(bg, revoked.ID); err != nil {
		t.Fatal(err)
	}
	_, forever := mustCreate(t, k, KeySpec{Name: "forever"})
	ids := func() []string {
		var out []string
		for _, info := range k.List() {
			out = append(out, info.ID)
		}
		return out
	}
	settle := func() { time.Sleep(50 * time.Millisecond) } // several ticks

	c.Advance(48 * time.Hour)
	settle()
	if n := len(ids()); n != 3 {
		t.Fatalf("without a retention %d keys are left, want all 3", n)
	}

	// The revoked key stopped 48h ago, the expiring one 48h - 1m ago.
	k.SetRetention(48*time.Hour - 30*time.Second)
	eventually(t, "the revoked key's purge", func() bool { return len(ids()) == 2 })
	settle()
	if got := ids(); len(got) != 2 || slices.Contains(got, revoked.ID) {
		t.Fatalf("keys left %v, want all but the revoked one", got)
	}
	c.Advance(time.Minute)
	eventually(t, "the expired key's purge", func() bool { return len(ids()) == 1 })
	if got := ids(); got[0] != forever.ID {
		t.Fatalf("keys left %v, want only the working one", got)
	}
	if _, ok := f.get(KindAPIKeys, expiring.ID); ok {
		t.Error("the store still holds the purged key")
	}
	events := logs.FilterField(zap.String("action", ActionKeyDeleted)).All()
	if len(events) != 2 {
		t.Fatalf("%d key.deleted events, want 2", len(events))
	}
	fields := events[1].ContextMap()
	before, _ := fields["before"].(KeyInfo)
	actor, _ := json.Marshal(fields["actor"])
	if fields["object"] != "api_key:"+expiring.ID || before.Status != StatusExpired || !strings.Contains(strings.ToLower(string(actor)), `"system":true`) {
		t.Errorf("event %v, actor %s", fields, actor)
	}
}

// Two instances purging at once: the deletion is a swap, so exactly one of
// them deletes and audits the key, and the other skips it quietly.
func TestRetentionPurgeIsAuditedOnce(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	logA, logsA := newObserved()
	logB, logsB := newObserved()
	a, b := testKeys(t, f, c, logA), testKeys(t, f, c, logB)
	_, info := mustCreate(t, a, KeySpec{Name: "old"})
	if _, _, err := a.Revoke(bg, info.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to see the revocation", func() bool {
		got, err := b.Info(info.ID)
		return err == nil && got.Status == StatusRevoked
	})
	c.Advance(2 * time.Hour)
	a.SetRetention(time.Hour)
	b.SetRetention(time.Hour)
	eventually(t, "the purge", func() bool { return len(a.List()) == 0 && len(b.List()) == 0 })
	time.Sleep(50 * time.Millisecond) // several more ticks on both
	deleted := logsA.FilterField(zap.String("action", ActionKeyDeleted)).Len() + logsB.FilterField(zap.String("action", ActionKeyDeleted)).Len()
	if deleted != 1 {
		t.Errorf("%d key.deleted events across the two instances, want 1", deleted)
	}
	if n := logsA.FilterMessage("purging an API key failed; trying again later").Len() + logsB.FilterMessage("purging an API key failed; trying again later").Len(); n != 0 {
		t.Errorf("%d purge warnings, want none", n)
	}
}

// TestNoSecretInLogsOrErrors drives every path that logs or fails and scans
// all the output for the tokens and their hashes.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	log, logs := newObserved()
	a := testKeys(t, f, c, log)
	b := testKeys(t, f, c, log)

	var secrets, errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	soon := c.Now().Add(time.Second)
	tok, info := mustCreate(t, a, KeySpec{Name: "leaky", ExpiresAt: &soon})
	tok2, _, _, err := a.Rotate(bg, info.ID, time.Millisecond)
	note(err)
	secrets = append(secrets, tok, tok2)
	for _, e := range a.Export() {
		for _, s := range e.Secrets {
			secrets = append(secrets, s.Hash)
		}
	}
	c.Advance(time.Minute)
	eventually(t, "the expiry event", func() bool { return logs.FilterField(zap.String("action", ActionKeyExpired)).Len() >= 2 })
	_, _, err = a.Revoke(bg, info.ID)
	note(err)
	_, _, err = a.Revoke(bg, info.ID)
	note(err)
	_, _, _, err = a.Rotate(bg, info.ID, 0)
	note(err)

	// A token stored where a hash belongs, and a store outage.
	raw, _ := json.Marshal(APIKey{ID: "mistake00001", Name: "x", Secrets: []SecretHash{{Hash: tok}}})
	f.putQuiet(KindAPIKeys, "mistake00001", raw)
	f.notify("", "")
	eventually(t, "the bad record to be skipped", func() bool {
		return logs.FilterMessage("skipping invalid control record").Len() >= 2
	})
	f.down.Store(true)
	f.notify("", "")
	eventually(t, "the outage to be logged", func() bool {
		return logs.FilterMessage("reloading control records; will retry").Len() >= 2
	})
	_, _, _, err = b.Rotate(bg, info.ID, 0)
	note(err)
	_, err = b.Import(bg, []APIKey{{ID: "mistake00001", Name: "x", Secrets: []SecretHash{{Hash: tok}}}})
	note(err)
	f.down.Store(false)

	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var out []string
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.String())
	}
	if len(out) < 5 || len(errs) < 4 {
		t.Fatalf("only %d log lines and %d errors were produced", len(out), len(errs))
	}
	for _, s := range secrets {
		for _, line := range append(out, errs...) {
			if strings.Contains(line, s) || strings.Contains(line, s[:20]) {
				t.Fatalf("a secret or hash appears in %q", line)
			}
		}
	}
}

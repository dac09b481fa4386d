package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var bg = context.Background()

func mustCreate(t testing.TB, k *Keys, spec KeySpec) (string, KeyInfo) {
	t.Helper()
	tok, info, err := k.Create(bg, spec)
	if err != nil {
		t.Fatalf("Create(%+v): %v", spec, err)
	}
	return tok, info
}

func mustRotate(t testing.TB, k *Keys, id string, grace time.Duration) string {
	t.Helper()
	tok, _, _, err := k.Rotate(bg, id, grace)
	if err != nil {
		t.Fatalf("Rotate(%s): %v", id, err)
	}
	return tok
}

func TestLookupResults(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)

	active, activeInfo := mustCreate(t, k, KeySpec{Name: "active", Tier: "gold", Owner: "ops"})
	soon := c.Now().Add(time.Minute)
	expiring, _ := mustCreate(t, k, KeySpec{Name: "expiring", ExpiresAt: &soon})
	revoked, revokedInfo := mustCreate(t, k, KeySpec{Name: "revoked"})
	if _, _, err := k.Revoke(bg, revokedInfo.ID); err != nil {
		t.Fatal(err)
	}
	rotatedOld, rotatedInfo := mustCreate(t, k, KeySpec{Name: "rotated"})
	rotatedNew := mustRotate(t, k, rotatedInfo.ID, 30*time.Second)
	c.Advance(2 * time.Minute) // past "expiring" and past the rotation grace

	badChecksum := typo(active, tokenLen-1)
	cases := []struct {
		name  string
		token string
		want  LookupResult
	}{
		{"no token is missing", "", LookupMissing},
		{"a random string is malformed", "hunter2", LookupMalformed},
		{"a typo fails the checksum", badChecksum, LookupMalformed},
		{"an id nobody issued is unknown", forgeToken("zzzzzzzzzzzz", strings.Repeat("1", secretLen)), LookupUnknown},
		{"a wrong secret for a real id is unknown", forgeToken(activeInfo.ID, strings.Repeat("1", secretLen)), LookupUnknown},
		{"a wrong secret does not reveal revocation", forgeToken(revokedInfo.ID, strings.Repeat("1", secretLen)), LookupUnknown},
		{"an active key is ok", active, LookupOK},
		{"a key past its expires_at is expired", expiring, LookupExpired},
		{"a revoked key is revoked", revoked, LookupRevoked},
		{"an old secret past its grace is expired", rotatedOld, LookupExpired},
		{"the new secret after rotation is ok", rotatedNew, LookupOK},
	}
	for _, tc := range cases {
		id, got := k.Lookup(tc.token)
		if got != tc.want {
			t.Errorf("%s: Lookup = %v, want %v", tc.name, got, tc.want)
		}
		if (id != nil) != (tc.want == LookupOK) {
			t.Errorf("%s: identity %v with result %v", tc.name, id, got)
		}
	}

	id, _ := k.Lookup(active)
	if id.ID != activeInfo.ID || id.Name != "active" || id.Tier != "gold" || id.Owner != "ops" {
		t.Fatalf("identity = %+v", id)
	}
	if id.Values != [4]any{activeInfo.ID, "active", "gold", "ops"} {
		t.Fatalf("identity values = %v", id.Values)
	}
	if again, _ := k.Lookup(active); again != id {
		t.Fatal("Lookup built a new identity for the same record version")
	}
}

func TestLookupComparesAgainstEveryAcceptedSecret(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	first, info := mustCreate(t, k, KeySpec{Name: "multi"})
	second := mustRotate(t, k, info.ID, time.Hour)
	third := mustRotate(t, k, info.ID, time.Hour)

	e := k.m.load().byID[info.ID]
	if len(e.hashes) != 3 {
		t.Fatalf("key has %d secret hashes, want 3", len(e.hashes))
	}
	if e.rec.Secrets[0].Hash != tokenHashHex(third) {
		t.Fatal("the newest secret is not first")
	}
	for i, tok := range []string{first, second, third} {
		if _, res := k.Lookup(tok); res != LookupOK {
			t.Errorf("secret %d: Lookup = %v, want ok", i, res)
		}
	}
}

func TestRotationGrace(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	old, info := mustCreate(t, k, KeySpec{Name: "svc"})

	newTok, before, after, err := k.Rotate(bg, info.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if before.GraceUntil != nil || before.RotatedAt != nil {
		t.Fatalf("before = %+v", before)
	}
	wantGrace := c.Now().Add(time.Minute)
	if after.GraceUntil == nil || !after.GraceUntil.Equal(wantGrace) || after.RotatedAt == nil {
		t.Fatalf("after = %+v, want grace until %v", after, wantGrace)
	}
	if _, res := k.Lookup(newTok); res != LookupOK {
		t.Fatalf("new secret: %v, want ok at once", res)
	}
	c.Advance(59 * time.Second)
	if _, res := k.Lookup(old); res != LookupOK {
		t.Fatalf("old secret within grace: %v, want ok", res)
	}
	c.Advance(time.Second)
	if _, res := k.Lookup(old); res != LookupExpired {
		t.Fatalf("old secret when grace ends: %v, want expired", res)
	}
	if got, _ := k.Info(info.ID); got.GraceUntil != nil || got.Status != StatusActive {
		t.Fatalf("info after grace = %+v", got)
	}

	// Grace 0 stops the previous secret at once; the next rotation prunes
	// the hashes whose grace ended.
	newer := mustRotate(t, k, info.ID, 0)
	if _, res := k.Lookup(newTok); res != LookupExpired {
		t.Fatalf("secret rotated with grace 0: %v, want expired", res)
	}
	if _, res := k.Lookup(newer); res != LookupOK {
		t.Fatalf("newest secret: %v", res)
	}
	if n := len(k.m.load().byID[info.ID].rec.Secrets); n != 2 {
		t.Fatalf("after rotating with grace 0 the key has %d hashes, want 2 (the first one pruned)", n)
	}
	c.Advance(time.Nanosecond)
	mustRotate(t, k, info.ID, time.Hour)
	if n := len(k.m.load().byID[info.ID].rec.Secrets); n != 2 {
		t.Fatalf("after a third rotation the key has %d hashes, want 2", n)
	}
	if _, res := k.Lookup(newer); res != LookupOK {
		t.Fatalf("previous secret within its new grace: %v", res)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	tok, info := mustCreate(t, k, KeySpec{Name: "svc"})

	before, after, err := k.Revoke(bg, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if before.Status != StatusActive || after.Status != StatusRevoked || after.RevokedAt == nil {
		t.Fatalf("before %+v after %+v", before, after)
	}
	if _, res := k.Lookup(tok); res != LookupRevoked {
		t.Fatalf("Lookup after revoke = %v", res)
	}
	c.Advance(time.Second)
	if _, _, err := k.Revoke(bg, info.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("second Revoke: %v, want ErrConflict", err)
	}
	if got, _ := k.Info(info.ID); !got.RevokedAt.Equal(*after.RevokedAt) {
		t.Fatal("a second Revoke changed revoked_at")
	}
	if _, _, _, err := k.Rotate(bg, info.ID, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("Rotate of a revoked key: %v, want ErrConflict", err)
	}
}

func TestDeleteOnlyKeysThatNoLongerWork(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	other := testKeys(t, f, c, nil) // a second instance on the same store
	tok, active := mustCreate(t, k, KeySpec{Name: "active"})
	exp := c.Now().Add(time.Minute)
	expTok, expiring := mustCreate(t, k, KeySpec{Name: "expiring", ExpiresAt: &exp})

	for _, id := range []string{active.ID, expiring.ID} {
		if _, err := k.Delete(bg, id); !errors.Is(err, ErrConflict) {
			t.Fatalf("Delete of a working key %s: %v, want ErrConflict", id, err)
		}
	}
	if _, res := k.Lookup(tok); res != LookupOK {
		t.Fatalf("a refused Delete changed the key: Lookup = %v", res)
	}

	// Revoked, or expired: both go, and their tokens become unknown.
	if _, _, err := k.Revoke(bg, active.ID); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	for _, tc := range []struct {
		id, tok string
		status  string
	}{{active.ID, tok, StatusRevoked}, {expiring.ID, expTok, StatusExpired}} {
		got, err := k.Delete(bg, tc.id)
		if err != nil {
			t.Fatalf("Delete(%s): %v", tc.id, err)
		}
		if got.ID != tc.id || got.Status != tc.status {
			t.Errorf("Delete returned %+v, want the %s key as it was", got, tc.status)
		}
		if _, res := k.Lookup(tc.tok); res != LookupUnknown {
			t.Errorf("Lookup of a deleted key = %v, want unknown", res)
		}
		if _, err := k.Info(tc.id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Info of a deleted key: %v, want ErrNotFound", err)
		}
		if _, ok := f.get(KindAPIKeys, tc.id); ok {
			t.Errorf("the store still holds key %s", tc.id)
		}
		if _, err := k.Delete(bg, tc.id); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete: %v, want ErrNotFound", err)
		}
	}
	if n := len(k.List()); n != 0 {
		t.Errorf("List after deleting every key has %d keys", n)
	}
	eventually(t, "the other instance to drop the deleted keys", func() bool { return len(other.List()) == 0 })
}

// A change made from a stale copy of a key fails instead of undoing a
// change another instance made meanwhile: here the key was revoked
// elsewhere and the notice has not arrived, so a rotation here is a
// conflict, the record stays revoked, and the registry fetches it again.
func TestChangesFromAStaleCopyConflict(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	tok, info := mustCreate(t, k, KeySpec{Name: "svc"})
	raw, _ := f.get(KindAPIKeys, info.ID)
	var rec APIKey
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	at := c.Now()
	rec.RevokedAt = &at
	revoked, _ := json.Marshal(rec)
	f.putQuiet(KindAPIKeys, info.ID, revoked) // another instance's revoke, notice lost

	for name, change := range map[string]func() error{
		"rotate": func() error { _, _, _, err := k.Rotate(bg, info.ID, time.Hour); return err },
		"revoke": func() error { _, _, err := k.Revoke(bg, info.ID); return err },
	} {
		if err := change(); !errors.Is(err, ErrConflict) {
			t.Errorf("%s from a stale copy: %v, want ErrConflict", name, err)
		}
		if got, _ := f.get(KindAPIKeys, info.ID); !bytes.Equal(got, revoked) {
			t.Fatalf("%s from a stale copy overwrote the other instance's change: %s", name, got)
		}
	}
	eventually(t, "the registry to fetch the revoked key", func() bool {
		_, res := k.Lookup(tok)
		return res == LookupRevoked
	})
	// Now up to date, the next change applies.
	if _, err := k.Delete(bg, info.ID); err != nil {
		t.Fatalf("Delete after catching up: %v", err)
	}
}

func TestCountsByStatus(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	at := c.Now().Add(time.Minute)
	mustCreate(t, k, KeySpec{Name: "active"})
	mustCreate(t, k, KeySpec{Name: "expiring", ExpiresAt: &at})
	_, revoked := mustCreate(t, k, KeySpec{Name: "revoked"})
	if _, _, err := k.Revoke(bg, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if a, e, r := k.Counts(c.Now()); a != 2 || e != 0 || r != 1 {
		t.Errorf("Counts = %d active, %d expired, %d revoked; want 2, 0, 1", a, e, r)
	}
	if a, e, r := k.Counts(at); a != 1 || e != 1 || r != 1 {
		t.Errorf("Counts at the expiry = %d active, %d expired, %d revoked; want 1, 1, 1", a, e, r)
	}
}

func TestUnknownKeyIsNotFound(t *testing.T) {
	t.Parallel()
	k := testKeys(t, newFakeRecords(), newClock(), nil)
	if _, err := k.Info("nosuchkey000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Info: %v", err)
	}
	if _, _, _, err := k.Rotate(bg, "nosuchkey000", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rotate: %v", err)
	}
	if _, _, err := k.Revoke(bg, "nosuchkey000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke: %v", err)
	}
}

func TestValidationNamesTheField(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	past := c.Now().Add(-time.Second)
	now := c.Now()
	labels := map[string]string{}
	for i := range 65 {
		labels[strings.Repeat("l", i+1)] = "v"
	}
	cases := []struct {
		name  string
		spec  KeySpec
		field string
	}{
		{"name is required", KeySpec{}, "/name"},
		{"a blank name is missing", KeySpec{Name: "  "}, "/name"},
		{"name has at most 200 characters", KeySpec{Name: strings.Repeat("é", 201)}, "/name"},
		{"at most 64 labels", KeySpec{Name: "n", Labels: labels}, "/labels"},
		{"expires_at in the past", KeySpec{Name: "n", ExpiresAt: &past}, "/expires_at"},
		{"expires_at now", KeySpec{Name: "n", ExpiresAt: &now}, "/expires_at"},
		{"owner is bounded too", KeySpec{Name: "n", Owner: strings.Repeat("o", 201)}, "/owner"},
	}
	for _, tc := range cases {
		_, _, err := k.Create(bg, tc.spec)
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError on %s", tc.name, err, tc.field)
		}
	}
	if _, _, err := k.Create(bg, KeySpec{Name: strings.Repeat("é", 200)}); err != nil {
		t.Errorf("200 characters: %v", err)
	}
	if _, _, _, err := k.Rotate(bg, "abcdefghijkl", -time.Second); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative grace: %v", err)
	}
	if n := f.count(KindAPIKeys); n != 1 {
		t.Errorf("store has %d keys, want only the valid one", n)
	}
}

func TestInfoAndList(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	later := c.Now().Add(time.Hour)
	_, a := mustCreate(t, k, KeySpec{Name: "a", Labels: map[string]string{"team": "x"}, ExpiresAt: &later})
	c.Advance(time.Minute)
	_, b := mustCreate(t, k, KeySpec{Name: "b"})
	c.Advance(time.Minute)
	_, cc := mustCreate(t, k, KeySpec{Name: "c"})
	if _, _, err := k.Revoke(bg, b.ID); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)

	list := k.List()
	var got []string
	for _, i := range list {
		got = append(got, i.Name+"="+i.Status)
	}
	if want := "a=expired b=revoked c=active"; strings.Join(got, " ") != want {
		t.Fatalf("List = %v, want %s", got, want)
	}
	list[0].Labels["team"] = "changed"
	if info, _ := k.Info(a.ID); info.Labels["team"] != "x" {
		t.Fatal("changing a listed key's labels changed the registry")
	}
	exp := k.Export()
	if len(exp) != 3 || exp[2].ID != cc.ID || len(exp[0].Secrets) != 1 || len(exp[0].Secrets[0].Hash) != 64 {
		t.Fatalf("Export = %+v", exp)
	}
	exp[0].Secrets[0].Hash = "x"
	if k.Export()[0].Secrets[0].Hash == "x" {
		t.Fatal("changing an exported record changed the registry")
	}
}

func TestLookupAllocatesAtMostOnce(t *testing.T) {
	f, c := newFakeRecords(), newClock()
	k := testKeys(t, f, c, nil)
	tok, _ := mustCreate(t, k, KeySpec{Name: "svc", Tier: "t"})
	for _, tc := range []struct {
		name  string
		token string
	}{{"valid", tok}, {"malformed", "rwk_nope"}, {"wrong secret", forgeToken("abcdefghijkl", strings.Repeat("1", secretLen))}} {
		allocs := testing.AllocsPerRun(200, func() { k.Lookup(tc.token) })
		if allocs > 1 {
			t.Errorf("%s: Lookup allocates %v times, want at most 1", tc.name, allocs)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	f, c := newFakeRecords(), newClock()
	k := NewKeys(KeysOptions{Records: f, Now: c.Now})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	if err := k.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		mustCreate(b, k, KeySpec{Name: "k" + string(rune('a'+i%26))})
	}
	tok, _ := mustCreate(b, k, KeySpec{Name: "bench"})
	waitIdle(k.m)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, res := k.Lookup(tok); res != LookupOK {
			b.Fatal(res)
		}
	}
}

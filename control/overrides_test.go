package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/store"
)

func i64(v int64) *int64        { return &v }
func f64(v float64) *float64    { return &v }
func boolp(v bool) *bool        { return &v }
func at(t time.Time) *time.Time { return &t }

var testKey = store.Key{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

func TestZoneOverrideLifecycle(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	o := testOverrides(t, f, c, nil)
	if o.Zone("api") != nil {
		t.Fatal("override before any was set")
	}
	before, after, err := o.SetZone(bg, ZoneOverride{Zone: "api", Limit: i64(10), UpdatedAt: c.Now().Add(-time.Hour)})
	if err != nil || before != nil {
		t.Fatalf("first SetZone: %v, %v", before, err)
	}
	if !after.UpdatedAt.Equal(c.Now()) {
		t.Fatalf("UpdatedAt = %v, want the registry's now %v", after.UpdatedAt, c.Now())
	}
	if got := o.Zone("api"); got == nil || *got.Limit != 10 || got.Mode != "" {
		t.Fatalf("Zone = %+v", got)
	}
	c.Advance(time.Second)
	before, _, err = o.SetZone(bg, ZoneOverride{Zone: "api", Mode: ModeShadow, Enabled: boolp(false)})
	if err != nil || before == nil || *before.Limit != 10 {
		t.Fatalf("second SetZone: before %+v, %v", before, err)
	}
	if got := o.Zone("api"); got.Limit != nil || got.Mode != ModeShadow || *got.Enabled {
		t.Fatalf("a set replaces the whole override: %+v", got)
	}
	removed, err := o.RemoveZone(bg, "api")
	if err != nil || removed.Mode != ModeShadow {
		t.Fatalf("RemoveZone: %+v, %v", removed, err)
	}
	if o.Zone("api") != nil || f.count(KindZoneOverrides) != 0 {
		t.Fatal("the override is still there")
	}
	if _, err := o.RemoveZone(bg, "api"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second RemoveZone: %v, want ErrNotFound", err)
	}
}

func TestKeyOverrideLifecycle(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	o := testOverrides(t, f, c, nil)
	if o.HasKeyOverrides("api") {
		t.Fatal("HasKeyOverrides before any was set")
	}
	hash := strings.ToUpper(testKey.String())
	_, after, err := o.SetKey(bg, KeyOverride{Zone: "api", KeyHash: hash, Multiplier: f64(2.5)})
	if err != nil {
		t.Fatal(err)
	}
	if after.KeyHash != testKey.String() {
		t.Fatalf("KeyHash = %q, want lower case", after.KeyHash)
	}
	if got := o.Key("api", testKey); got == nil || *got.Multiplier != 2.5 {
		t.Fatalf("Key = %+v", got)
	}
	if o.Key("api", store.Key{}) != nil || o.Key("web", testKey) != nil {
		t.Fatal("Key matched another key or zone")
	}
	if !o.HasKeyOverrides("api") || o.HasKeyOverrides("web") {
		t.Fatal("HasKeyOverrides is wrong")
	}
	before, _, err := o.SetKey(bg, KeyOverride{Zone: "api", KeyHash: testKey.String(), Limit: i64(5), Burst: i64(1)})
	if err != nil || before == nil || *before.Multiplier != 2.5 {
		t.Fatalf("replacing SetKey: %+v, %v", before, err)
	}
	if _, err := o.RemoveKey(bg, "api", "nothex"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RemoveKey of a malformed hash: %v", err)
	}
	removed, err := o.RemoveKey(bg, "api", hash)
	if err != nil || *removed.Limit != 5 {
		t.Fatalf("RemoveKey: %+v, %v", removed, err)
	}
	if o.Key("api", testKey) != nil || o.HasKeyOverrides("api") {
		t.Fatal("the key override is still there")
	}
	if _, err := o.RemoveKey(bg, "api", hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second RemoveKey: %v", err)
	}
}

func TestExpiredOverridesAreIgnoredThenDeleted(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	o := testOverrides(t, f, c, nil)
	soon, later := c.Now().Add(time.Minute), c.Now().Add(time.Hour)
	other := store.Key{1}
	for _, ov := range []ZoneOverride{{Zone: "a", Limit: i64(1), ExpiresAt: &soon}, {Zone: "b", Limit: i64(1), ExpiresAt: &later}} {
		if _, _, err := o.SetZone(bg, ov); err != nil {
			t.Fatal(err)
		}
	}
	for _, ov := range []KeyOverride{
		{Zone: "a", KeyHash: testKey.String(), Limit: i64(1), ExpiresAt: &soon},
		{Zone: "b", KeyHash: testKey.String(), Limit: i64(1), ExpiresAt: &soon},
		{Zone: "b", KeyHash: other.String(), Limit: i64(1)},
	} {
		if _, _, err := o.SetKey(bg, ov); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.Active(); n != 5 {
		t.Fatalf("Active = %d, want 5", n)
	}
	c.Advance(time.Minute)
	if o.Zone("a") != nil || o.Key("a", testKey) != nil || o.Key("b", testKey) != nil {
		t.Fatal("an expired override is still returned")
	}
	if o.Zone("b") == nil || o.Key("b", other) == nil {
		t.Fatal("an unexpired override is gone")
	}
	if o.HasKeyOverrides("a") || !o.HasKeyOverrides("b") {
		t.Fatal("HasKeyOverrides counts expired overrides")
	}
	zones, keys := o.List()
	if o.Active() != 2 || len(zones) != 1 || len(keys) != 1 {
		t.Fatalf("Active %d, List %v %v", o.Active(), zones, keys)
	}
	if _, err := o.RemoveZone(bg, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RemoveZone of an expired override: %v", err)
	}
	eventually(t, "the expired overrides to be deleted", func() bool {
		return f.count(KindZoneOverrides) == 1 && f.count(KindKeyOverrides) == 1
	})
}

func TestLazyDeleteSparesAReplacedOverride(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	o := NewOverrides(OverridesOptions{Records: f, Now: c.Now})
	soon := c.Now().Add(time.Minute)
	if _, _, err := o.SetZone(bg, ZoneOverride{Zone: "z", Limit: i64(1), ExpiresAt: &soon}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	// Another instance replaced it; this one has not heard yet.
	raw, _ := json.Marshal(ZoneOverride{Zone: "z", Limit: i64(2), UpdatedAt: c.Now()})
	f.putQuiet(KindZoneOverrides, zoneID("z"), raw)
	o.deleteExpired(bg)
	if _, ok := f.get(KindZoneOverrides, zoneID("z")); !ok {
		t.Fatal("lazy deletion removed the replacing override")
	}
}

func TestOverrideValidationNamesTheField(t *testing.T) {
	t.Parallel()
	c := newClock()
	o := NewOverrides(OverridesOptions{Records: newFakeRecords(), Now: c.Now})
	past := at(c.Now().Add(-time.Second))
	hash := testKey.String()
	zoneCases := []struct {
		name  string
		ov    ZoneOverride
		field string
	}{
		{"zone is required", ZoneOverride{Limit: i64(1)}, "/zone"},
		{"zone is bounded", ZoneOverride{Zone: strings.Repeat("z", 121), Limit: i64(1)}, "/zone"},
		{"limit is positive", ZoneOverride{Zone: "z", Limit: i64(0)}, "/limit"},
		{"burst is not negative", ZoneOverride{Zone: "z", Burst: i64(-1)}, "/burst"},
		{"mode is enforce or shadow", ZoneOverride{Zone: "z", Mode: "off"}, "/mode"},
		{"an override changes something", ZoneOverride{Zone: "z"}, ""},
		{"expires_at is in the future", ZoneOverride{Zone: "z", Limit: i64(1), ExpiresAt: past}, "/expires_at"},
	}
	for _, tc := range zoneCases {
		_, _, err := o.SetZone(bg, tc.ov)
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError on %q", tc.name, err, tc.field)
		}
	}
	keyCases := []struct {
		name  string
		ov    KeyOverride
		field string
	}{
		{"zone is required", KeyOverride{KeyHash: hash, Limit: i64(1)}, "/zone"},
		{"key_hash is 32 hex characters", KeyOverride{Zone: "z", KeyHash: hash[:30], Limit: i64(1)}, "/key_hash"},
		{"key_hash is hex", KeyOverride{Zone: "z", KeyHash: strings.Repeat("g", 32), Limit: i64(1)}, "/key_hash"},
		{"limit or multiplier is required", KeyOverride{Zone: "z", KeyHash: hash}, "/limit"},
		{"not both limit and multiplier", KeyOverride{Zone: "z", KeyHash: hash, Limit: i64(1), Multiplier: f64(2)}, "/multiplier"},
		{"multiplier is positive", KeyOverride{Zone: "z", KeyHash: hash, Multiplier: f64(0)}, "/multiplier"},
		{"multiplier is at most 1e6", KeyOverride{Zone: "z", KeyHash: hash, Multiplier: f64(1e6 + 1)}, "/multiplier"},
		{"multiplier is a number", KeyOverride{Zone: "z", KeyHash: hash, Multiplier: f64(math.NaN())}, "/multiplier"},
		{"limit is positive", KeyOverride{Zone: "z", KeyHash: hash, Limit: i64(-3)}, "/limit"},
		{"burst is not negative", KeyOverride{Zone: "z", KeyHash: hash, Limit: i64(1), Burst: i64(-1)}, "/burst"},
		{"expires_at is in the future", KeyOverride{Zone: "z", KeyHash: hash, Limit: i64(1), ExpiresAt: past}, "/expires_at"},
	}
	for _, tc := range keyCases {
		_, _, err := o.SetKey(bg, tc.ov)
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError on %q", tc.name, err, tc.field)
		}
	}
	if _, _, err := o.SetKey(bg, KeyOverride{Zone: "z", KeyHash: hash, Multiplier: f64(1e6)}); err != nil {
		t.Errorf("multiplier 1e6: %v", err)
	}
}

func TestZoneNamesOfAnyCharacterMakeValidRecordIDs(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	o := testOverrides(t, f, c, nil)
	validID := regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,200}$`)
	for _, zone := range []string{"api", "api/v1 users", "a:b", "zone.ü", "x+y=z?", strings.Repeat("ä", 60)} {
		if _, _, err := o.SetZone(bg, ZoneOverride{Zone: zone, Limit: i64(3)}); err != nil {
			t.Fatalf("SetZone(%q): %v", zone, err)
		}
		if _, _, err := o.SetKey(bg, KeyOverride{Zone: zone, KeyHash: testKey.String(), Limit: i64(3)}); err != nil {
			t.Fatalf("SetKey(%q): %v", zone, err)
		}
		for _, r := range []ref{zoneRef(zone), keyRef(zone, testKey.String())} {
			if !validID.MatchString(r.id) {
				t.Errorf("zone %q: record id %q is not a valid store id", zone, r.id)
			}
		}
		if o.Zone(zone) == nil || o.Key(zone, testKey) == nil {
			t.Errorf("zone %q: override not found", zone)
		}
	}
}

func TestOverridesReachOtherRegistry(t *testing.T) {
	t.Parallel()
	f, c := newFakeRecords(), newClock()
	a := testOverrides(t, f, c, nil)
	b := testOverrides(t, f, c, nil)
	if _, _, err := a.SetZone(bg, ZoneOverride{Zone: "api", Limit: i64(7)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.SetKey(bg, KeyOverride{Zone: "api", KeyHash: testKey.String(), Limit: i64(9)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to see A's overrides", func() bool { return b.Zone("api") != nil && b.Key("api", testKey) != nil })
	if _, err := b.RemoveZone(bg, "api"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A to see B's removal", func() bool { return a.Zone("api") == nil })

	// A change whose notification was lost, then a full reload.
	raw, _ := json.Marshal(ZoneOverride{Zone: "web", Mode: ModeShadow, UpdatedAt: c.Now()})
	f.putQuiet(KindZoneOverrides, zoneID("web"), raw)
	f.putQuiet(KindZoneOverrides, "bogus", []byte(`{"zone":"elsewhere","limit":1}`))
	f.notify("", "")
	eventually(t, "B to reload everything", func() bool { return b.Zone("web") != nil })
	if b.Zone("elsewhere") != nil {
		t.Fatal("a record whose id does not match its zone was loaded")
	}
}

func TestOverrideImportIsIdempotent(t *testing.T) {
	t.Parallel()
	c := newClock()
	src := testOverrides(t, newFakeRecords(), c, nil)
	expired := at(c.Now().Add(-time.Minute))
	doc := Document{
		ZoneOverrides: []ZoneOverride{
			{Zone: "api", Limit: i64(5), UpdatedAt: c.Now()},
			{Zone: "web", Enabled: boolp(false)}, // no updated_at
			{Zone: "old", Limit: i64(1), ExpiresAt: expired},
		},
		KeyOverrides: []KeyOverride{
			{Zone: "api", KeyHash: strings.ToUpper(testKey.String()), Multiplier: f64(3)},
		},
	}
	raw, _ := json.Marshal(doc)
	var in Document
	_ = json.Unmarshal(raw, &in)

	res, err := src.Import(bg, in.ZoneOverrides, in.KeyOverrides)
	if err != nil || res != (ImportResult{Created: 3, Unchanged: 1}) {
		t.Fatalf("first import: %+v, %v", res, err)
	}
	if src.Zone("old") != nil || src.Zone("web") == nil || src.Key("api", testKey) == nil {
		t.Fatal("imported overrides are not what the document says")
	}
	c.Advance(time.Second)
	res, err = src.Import(bg, in.ZoneOverrides, in.KeyOverrides)
	if err != nil || res != (ImportResult{Unchanged: 4}) {
		t.Fatalf("second import: %+v, %v", res, err)
	}

	// Export (List) and import elsewhere: nothing lost, then idempotent.
	zones, keys := src.List()
	f := newFakeRecords()
	dst := testOverrides(t, f, c, nil)
	if res, err := dst.Import(bg, zones, keys); err != nil || res != (ImportResult{Created: 3}) {
		t.Fatalf("import of the listed overrides: %+v, %v", res, err)
	}
	if res, err := dst.Import(bg, zones, keys); err != nil || res != (ImportResult{Unchanged: 3}) {
		t.Fatalf("second import of the listed overrides: %+v, %v", res, err)
	}
	zones[0].Limit = i64(6)
	if res, err := dst.Import(bg, zones, keys); err != nil || res != (ImportResult{Updated: 1, Unchanged: 2}) {
		t.Fatalf("import with one change: %+v, %v", res, err)
	}
}

func TestOverrideImportValidatesEverythingFirst(t *testing.T) {
	t.Parallel()
	good := ZoneOverride{Zone: "ok", Limit: i64(1)}
	goodKey := KeyOverride{Zone: "ok", KeyHash: testKey.String(), Limit: i64(1)}
	cases := []struct {
		name  string
		zones []ZoneOverride
		keys  []KeyOverride
		field string
	}{
		{"a bad zone override", []ZoneOverride{good, {Zone: "x", Limit: i64(0)}}, nil, "/zone_overrides/1/limit"},
		{"a duplicate zone", []ZoneOverride{good, good}, nil, "/zone_overrides/1/zone"},
		{"a bad key override", []ZoneOverride{good}, []KeyOverride{goodKey, {Zone: "ok", KeyHash: "x", Limit: i64(1)}}, "/key_overrides/1/key_hash"},
		{"a duplicate key, in other case", nil, []KeyOverride{goodKey, {Zone: "ok", KeyHash: strings.ToUpper(testKey.String()), Limit: i64(2)}}, "/key_overrides/1/key_hash"},
	}
	for _, tc := range cases {
		f := newFakeRecords()
		o := testOverrides(t, f, newClock(), nil)
		_, err := o.Import(bg, tc.zones, tc.keys)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError on %s", tc.name, err, tc.field)
		}
		if f.count(KindZoneOverrides)+f.count(KindKeyOverrides) != 0 {
			t.Errorf("%s: records were written before the invalid one was found", tc.name)
		}
	}
}

func TestZoneAndKeyDoNotAllocate(t *testing.T) {
	// Not started: no background loop allocates while AllocsPerRun counts,
	// and the expired overrides stay in the mirror.
	c := newClock()
	o := NewOverrides(OverridesOptions{Records: newFakeRecords(), Now: c.Now})
	soon := c.Now().Add(time.Minute)
	mustSetOverrides(t, o, 100, &soon)
	c.Advance(time.Hour) // half of them expired: the expiry path is measured too
	mustSetOverrides(t, o, 50, nil)
	for name, fn := range map[string]func(){
		"Zone hit":        func() { o.Zone("zone-7") },
		"Zone miss":       func() { o.Zone("nope") },
		"Zone expired":    func() { o.Zone("zone-70") },
		"Key hit":         func() { o.Key("zone-7", testKey) },
		"Key miss":        func() { o.Key("zone-7", store.Key{9}) },
		"Key expired":     func() { o.Key("zone-70", testKey) },
		"HasKeyOverrides": func() { o.HasKeyOverrides("zone-7") },
	} {
		if allocs := testing.AllocsPerRun(500, fn); allocs != 0 {
			t.Errorf("%s allocates %v times, want 0", name, allocs)
		}
	}
	if o.Zone("zone-7") == nil || o.Zone("zone-70") != nil || o.Key("zone-7", testKey) == nil {
		t.Fatal("the measured lookups do not find what they should")
	}
}

// mustSetOverrides sets a zone and a key override on zone-0..zone-(n-1).
func mustSetOverrides(t testing.TB, o *Overrides, n int, exp *time.Time) {
	t.Helper()
	var zones []ZoneOverride
	var keys []KeyOverride
	for i := range n {
		zone := fmt.Sprintf("zone-%d", i)
		zones = append(zones, ZoneOverride{Zone: zone, Limit: i64(100), ExpiresAt: exp})
		keys = append(keys, KeyOverride{Zone: zone, KeyHash: testKey.String(), Multiplier: f64(2), ExpiresAt: exp})
	}
	if _, err := o.Import(bg, zones, keys); err != nil {
		t.Fatal(err)
	}
}

func benchOverrides(b *testing.B) *Overrides {
	o := NewOverrides(OverridesOptions{Records: newFakeRecords()})
	ctx, cancel := context.WithCancel(bg)
	b.Cleanup(cancel)
	if err := o.Start(ctx); err != nil {
		b.Fatal(err)
	}
	mustSetOverrides(b, o, 1000, nil)
	waitIdle(o.m)
	return o
}

func BenchmarkZone(b *testing.B) {
	o := benchOverrides(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if o.Zone("zone-500") == nil {
			b.Fatal("no override")
		}
	}
}

func BenchmarkKey(b *testing.B) {
	o := benchOverrides(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if o.Key("zone-500", testKey) == nil {
			b.Fatal("no override")
		}
	}
}

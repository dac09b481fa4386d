package ratewarden

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/control"
)

func ptr[T any](v T) *T { return &v }

func TestZoneOverrides(t *testing.T) {
	t.Parallel()
	zone := uniq("overridden")
	h, app := appHandler(t, fmt.Sprintf(`{"headers":["legacy"],"rate_limits":{%q:{"key":"{http.request.header.X-Who}","max_events":2,"window":"1m","algorithm":"fixed_window"}}}`, zone))
	ov := app.control.overrides
	ctx := context.Background()
	who := func(s string) call { return call{header: map[string]string{"X-Who": s}} }

	if got := who("a").admitted(t, h, 5); got != 2 {
		t.Fatalf("configured limit: admitted %d, want 2", got)
	}
	if _, _, err := ov.SetZone(ctx, control.ZoneOverride{Zone: zone, Limit: ptr(int64(4))}); err != nil {
		t.Fatal(err)
	}
	res := who("b").do(t, h)
	if res.header.Get("X-Ratelimit-Limit") != "4" {
		t.Errorf("X-RateLimit-Limit %q under a limit override of 4", res.header.Get("X-Ratelimit-Limit"))
	}
	if got := who("b").admitted(t, h, 5); got != 3 {
		t.Errorf("limit override 4: admitted %d more after 1, want 3", got)
	}
	if _, _, err := ov.SetZone(ctx, control.ZoneOverride{Zone: zone, Mode: "shadow"}); err != nil {
		t.Fatal(err)
	}
	if got := who("a").admitted(t, h, 3); got != 3 {
		t.Errorf("shadow override: admitted %d of 3", got)
	}
	if _, _, err := ov.SetZone(ctx, control.ZoneOverride{Zone: zone, Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	res = who("a").do(t, h)
	if !res.next || res.header.Get("X-Ratelimit-Limit") != "" {
		t.Errorf("disabled zone still decided: passed %v, limit header %q", res.next, res.header.Get("X-Ratelimit-Limit"))
	}
	if _, err := ov.RemoveZone(ctx, zone); err != nil {
		t.Fatal(err)
	}
	if res := who("a").do(t, h); res.next {
		t.Error("after removing the override the exhausted key was allowed")
	}
}

func TestKeyOverrides(t *testing.T) {
	t.Parallel()
	zone := uniq("per_customer")
	h, app := appHandler(t, fmt.Sprintf(`{"rate_limits":{%q:{"key":"{http.request.header.X-Who}","max_events":2,"window":"1m","algorithm":"sliding_log"}}}`, zone))
	ctx := context.Background()
	vip := hashKey(zone, "vip").String()
	exp := time.Now().Add(time.Hour)
	if _, _, err := app.control.overrides.SetKey(ctx, control.KeyOverride{Zone: zone, KeyHash: vip, Multiplier: ptr(10.0), ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	if got := (call{header: map[string]string{"X-Who": "vip"}}).admitted(t, h, 25); got != 20 {
		t.Errorf("10x key: admitted %d, want 20", got)
	}
	if got := (call{header: map[string]string{"X-Who": "regular"}}).admitted(t, h, 5); got != 2 {
		t.Errorf("other key: admitted %d, want 2", got)
	}
	if _, err := app.control.overrides.RemoveKey(ctx, zone, vip); err != nil {
		t.Fatal(err)
	}
	if res := (call{header: map[string]string{"X-Who": "vip"}}).do(t, h); res.next {
		t.Error("after removing the key override the key kept its 10x limit")
	}
}

func TestApplyKeyOverride(t *testing.T) {
	base := zonePolicy(100, 10)
	for _, tc := range []struct {
		name         string
		ov           control.KeyOverride
		limit, burst int64
	}{
		{"absolute limit", control.KeyOverride{Limit: ptr(int64(7))}, 7, 10},
		{"multiplier scales limit and burst", control.KeyOverride{Multiplier: ptr(2.5)}, 250, 25},
		{"tiny multiplier keeps at least 1", control.KeyOverride{Multiplier: ptr(0.0001)}, 1, 1},
		{"explicit burst wins", control.KeyOverride{Multiplier: ptr(2.0), Burst: ptr(int64(3))}, 200, 3},
	} {
		p := applyKeyOverride(base, &tc.ov)
		if p.Limit != tc.limit || p.Burst != tc.burst {
			t.Errorf("%s: limit %d burst %d, want %d %d", tc.name, p.Limit, p.Burst, tc.limit, tc.burst)
		}
	}
}

func zonePolicy(limit, burst int64) algorithms.Policy {
	return algorithms.Policy{Limit: limit, Window: time.Minute, Burst: burst}
}

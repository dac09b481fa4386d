package redis

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/store"
)

// checkHealthy checks the report of a store on a live deployment of
// topology.
func checkHealthy(t *testing.T, s *Store, topology string) {
	t.Helper()
	h := s.CheckHealth(t.Context())
	if !h.OK || h.Error != "" {
		t.Fatalf("health of a live %s: OK %v, error %q", topology, h.OK, h.Error)
	}
	if h.Backend != "redis" || h.Topology != topology || h.Breaker != "closed" || h.OnFailure != OnFailureAllow {
		t.Errorf("health = %+v; want backend redis, topology %s, breaker closed, on_failure allow", h, topology)
	}
	if h.Scripts != scriptsLoaded && h.Scripts != scriptsMissing {
		t.Errorf("scripts %q on a live %s, want loaded or missing", h.Scripts, topology)
	}
	if h.Pool == nil || h.Pool.TotalConns == 0 {
		t.Errorf("pool stats %+v after a ping, want at least one connection", h.Pool)
	}
	if h.Latency <= 0 || h.Latency > 10*time.Second {
		t.Errorf("latency %v", h.Latency)
	}
}

func TestHealthReportsTheScriptsState(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := srv.client(t)
	s := testStore(t, c)
	if h := s.CheckHealth(t.Context()); h.Scripts != scriptsMissing {
		t.Fatalf("scripts on a new server: %q, want missing", h.Scripts)
	}
	if _, err := takeOne(t.Context(), s, req(lookup(t, "gcra"), "z", key("k"), 5, time.Minute, 1)); err != nil {
		t.Fatal(err)
	}
	if h := s.CheckHealth(t.Context()); h.Scripts != scriptsLoaded {
		t.Fatalf("scripts after a decision: %q, want loaded", h.Scripts)
	}
	if err := c.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if h := s.CheckHealth(t.Context()); h.Scripts != scriptsMissing {
		t.Fatalf("scripts after SCRIPT FLUSH: %q, want missing", h.Scripts)
	}
}

func TestHealthOfAStoppedServerHidesThePassword(t *testing.T) {
	t.Parallel()
	const password = "hunter2-health-secret"
	srv := startServer(t, "--requirepass", password)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"password option", Options{Addresses: []string{srv.Addr}, Password: password}},
		{"url", Options{URL: fmt.Sprintf("redis://:%s@%s/0", password, srv.Addr)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			opts := tc.opts
			opts.Timeout = caddy.Duration(2 * time.Second)
			checkHealthy(t, New(c, opts), "standalone")
		})
	}

	// A wrong password: the server answers, and refuses.
	wrong := Options{Addresses: []string{srv.Addr}, Password: "not-" + password}
	c, err := NewClient(wrong)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	wrong.Timeout = caddy.Duration(2 * time.Second)
	h := New(c, wrong).CheckHealth(t.Context())
	if h.OK || !strings.Contains(h.Error, "authentication failed") {
		t.Errorf("health with a wrong password: OK %v, error %q; want not OK, authentication failed", h.OK, h.Error)
	}
	noSecret(t, h, password)

	srv.stop()
	for _, opts := range []Options{
		{Addresses: []string{srv.Addr}, Password: password},
		{URL: fmt.Sprintf("redis://:%s@%s/0", password, srv.Addr)},
	} {
		c, err := NewClient(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		opts.Timeout = caddy.Duration(500 * time.Millisecond)
		h := New(c, opts).CheckHealth(t.Context())
		if h.OK || h.Error == "" || !strings.Contains(h.Error, srv.Addr) {
			t.Errorf("health of a stopped server: OK %v, error %q; want not OK, an error naming %s", h.OK, h.Error, srv.Addr)
		}
		if h.Topology != "standalone" || h.Scripts != scriptsUnknown {
			t.Errorf("health of a stopped server: topology %q, scripts %q; want standalone, unknown", h.Topology, h.Scripts)
		}
		noSecret(t, h, password)
	}
}

// noSecret fails the test if the report, in any field, holds secret.
func noSecret(t *testing.T, h store.Health, secret string) {
	t.Helper()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the health report shows the password: %s", b)
	}
}

func TestHealthReportsAnOpenBreakerAndThePolicy(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s, _ := guardedStore(t, srv.client(t), Options{
		Timeout: caddy.Duration(500 * time.Millisecond), BreakerFailures: 1,
		BreakerCooldown: caddy.Duration(time.Hour), OnFailure: OnFailureDeny,
	})
	if h := s.CheckHealth(t.Context()); !h.OK || h.Breaker != "closed" || h.OnFailure != OnFailureDeny {
		t.Fatalf("health before the outage: %+v", h)
	}
	srv.stop()
	if _, err := takeOne(t.Context(), s, req(lookup(t, "gcra"), "z", key("k"), 5, time.Minute, 1)); err == nil {
		t.Fatal("Take with the server down: no error")
	}
	h := s.CheckHealth(t.Context())
	if h.OK || h.Breaker != "open" || h.OnFailure != OnFailureDeny {
		t.Fatalf("health during the outage: %+v; want not OK, breaker open, on_failure deny", h)
	}

	// The probe goes around the breaker: Redis back, the report says so,
	// and the breaker is left to the decisions.
	srv.restart(t)
	h = s.CheckHealth(t.Context())
	if !h.OK || h.Breaker != "open" {
		t.Fatalf("health with the server back: OK %v, breaker %s; want OK, breaker still open", h.OK, h.Breaker)
	}
}

func TestHealthOfARingWithAShardDown(t *testing.T) {
	t.Parallel()
	_, b, c := startRing(t)
	s := testStore(t, c)
	checkHealthy(t, s, "ring")

	b.stop()
	// Until the ring notices (three missed heartbeats of 500ms), the ping
	// of the dead shard fails; then the ring skips the shard, and the
	// report counts it as down. Either way the ring is not healthy.
	deadline := time.Now().Add(5 * time.Second)
	for {
		h := s.CheckHealth(t.Context())
		if h.OK {
			t.Fatalf("health of a ring with a shard down: %+v", h)
		}
		if strings.Contains(h.Error, "1 of 2 ring shards are down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the report still does not count the shard down: %q", h.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

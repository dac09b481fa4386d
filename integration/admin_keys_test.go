package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/control"
)

// apiKeySite requires an API key in X-API-Key (or, with query, in the
// api_key query parameter) and limits each key to limit a minute.
func apiKeySite(limit int, query bool) string {
	q := ""
	if query {
		q = "\n\t\tquery api_key"
	}
	return fmt.Sprintf(`rate_limit {
	api_key {
		header X-API-Key%s
		require
		failure_limit 1000 1m
	}
	zone per_key {
		key {http.rate_limit.api_key.id}
		limit %d 1m
	}
}
respond "ok {http.rate_limit.api_key.id} {http.rate_limit.api_key.name}"`, q, limit)
}

// issuedKey is the answer to POST /keys and POST /keys/{id}/rotate.
type issuedKey struct {
	Secret string          `json:"secret"`
	Key    control.KeyInfo `json:"key"`
}

// createKey makes an API key named name and returns it with its secret.
func (a *adminAPI) createKey(t testing.TB, name string) issuedKey {
	t.Helper()
	var k issuedKey
	a.call(t, http.StatusCreated, "POST", "/keys", map[string]string{"name": name}).decode(t, &k)
	if k.Secret == "" || k.Key.ID == "" {
		t.Fatalf("created key: %+v", k)
	}
	return k
}

// unauthorizedReason is the reason member of a 401 problem.
func unauthorizedReason(t testing.TB, r Response) string {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("401 body is not a problem: %v: %q", err, r.Body)
	}
	if want := "https://github.com/ratewarden/ratewarden/blob/main/docs/problems.md#api-key-" + p.Reason; p.Type != want {
		t.Errorf("401 type %q, want %q", p.Type, want)
	}
	return p.Reason
}

// After a rotation with a grace period, the new secret works at once, the
// old one keeps working until the grace period ends, and then is refused
// as expired; the new one goes on working.
func TestAdminKeyRotationGracePeriod(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	c := Start(t, Config{Site: apiKeySite(1000, false)})
	a := newAdminAPI(t, c)
	k := a.createKey(t, "rotating")
	want := "ok " + k.Key.ID + " rotating"
	if r := c.Get(t, "/", "X-API-Key", k.Secret); r.Status != http.StatusOK || r.Body != want {
		t.Fatalf("before rotation: %d %q", r.Status, r.Body)
	}

	sent := time.Now()
	var rotated issuedKey
	a.call(t, http.StatusOK, "POST", "/keys/"+k.Key.ID+"/rotate", map[string]string{"grace": grace.String()}).decode(t, &rotated)
	if rotated.Secret == k.Secret || rotated.Key.ID != k.Key.ID {
		t.Fatalf("rotation: %+v", rotated)
	}
	if g := rotated.Key.GraceUntil; g == nil || g.Before(sent.Add(grace)) || g.After(time.Now().Add(grace)) {
		t.Errorf("grace_until %v, want %s after the rotation", g, grace)
	}
	if r := c.Get(t, "/", "X-API-Key", rotated.Secret); r.Status != http.StatusOK || r.Body != want {
		t.Fatalf("new secret right after rotation: %d %q", r.Status, r.Body)
	}

	// Poll the old secret until it is refused: never before the grace
	// period ends, and soon after.
	var last Response
	for {
		last = c.Get(t, "/", "X-API-Key", k.Secret)
		elapsed := time.Since(sent)
		if last.Status != http.StatusOK {
			if elapsed < grace {
				t.Fatalf("old secret refused %s after the rotation, inside the %s grace period: %d %q", elapsed, grace, last.Status, last.Body)
			}
			t.Logf("old secret refused %s after the rotation request was sent", elapsed.Round(time.Millisecond))
			break
		}
		if last.Body != want {
			t.Fatalf("old secret in grace: body %q, want %q", last.Body, want)
		}
		if elapsed > grace+time.Second {
			t.Fatalf("old secret still accepted %s after a rotation with %s grace", elapsed, grace)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last.Status != http.StatusUnauthorized {
		t.Fatalf("old secret after grace: %d %q, want 401", last.Status, last.Body)
	}
	if reason := unauthorizedReason(t, last); reason != "expired" {
		t.Errorf("old secret after grace: reason %q, want expired", reason)
	}
	if r := c.Get(t, "/", "X-API-Key", rotated.Secret); r.Status != http.StatusOK || r.Body != want {
		t.Errorf("new secret after grace: %d %q", r.Status, r.Body)
	}
	var info control.KeyInfo
	a.call(t, http.StatusOK, "GET", "/keys/"+k.Key.ID, nil).decode(t, &info)
	if info.Status != "active" || info.GraceUntil != nil {
		t.Errorf("key after grace: %+v", info)
	}
}

// redisControl is the global option that makes srv the default store and
// the control store, with keys under prefix.
func redisControl(srv *redisServer, prefix string) string {
	return fmt.Sprintf(`rate_limit {
	store redis {
		address %s
		key_prefix %s
		timeout 2s
	}
	control_store default
}`, srv.Addr, prefix)
}

// pollUntil calls probe every 10ms until it reports true, and returns how
// long that took; it fails the test after timeout.
func pollUntil(t testing.TB, timeout time.Duration, what string, probe func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if probe() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two instances share one Redis for counters, keys and overrides: a key
// created on A is accepted by B, and once revoked on A, B refuses it as
// revoked within a second; deleted on B, A no longer knows it.
func TestAdminRevocationAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := startRedis(t, 0)
	cfg := Config{Global: redisControl(srv, "revoke:"), Site: apiKeySite(1000, false)}
	insts := startInstances(t, 2, cfg)
	a, b := newAdminAPI(t, insts[0]), newAdminAPI(t, insts[1])

	k := a.createKey(t, "shared")
	took := pollUntil(t, 5*time.Second, "B accepting a key created on A", func() bool {
		return insts[1].Get(t, "/", "X-API-Key", k.Secret).Status == http.StatusOK
	})
	t.Logf("B accepted the new key %s after its creation on A", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("B accepted the key %s after its creation on A, want within 1s", took)
	}
	var seen control.KeyInfo
	b.call(t, http.StatusOK, "GET", "/keys/"+k.Key.ID, nil).decode(t, &seen)
	if seen.Name != "shared" || seen.Status != "active" {
		t.Errorf("B's view of the key: %+v", seen)
	}

	// A key that still works cannot be deleted.
	a.call(t, http.StatusConflict, "DELETE", "/keys/"+k.Key.ID, nil)

	start := time.Now()
	a.call(t, http.StatusOK, "POST", "/keys/"+k.Key.ID+"/revoke", nil)
	var last Response
	pollUntil(t, 5*time.Second, "B refusing a key revoked on A", func() bool {
		last = insts[1].Get(t, "/", "X-API-Key", k.Secret)
		return last.Status != http.StatusOK
	})
	took = time.Since(start) // from before the revoke request
	t.Logf("B refused the key %s after the revoke request on A was sent", took.Round(time.Millisecond))
	if last.Status != http.StatusUnauthorized || unauthorizedReason(t, last) != "revoked" {
		t.Fatalf("B after revocation: %d %q, want 401 revoked", last.Status, last.Body)
	}
	if took >= time.Second {
		t.Errorf("B refused the revoked key after %s, want under 1s", took)
	}
	b.call(t, http.StatusOK, "GET", "/keys/"+k.Key.ID, nil).decode(t, &seen)
	if seen.Status != "revoked" || seen.RevokedAt == nil {
		t.Errorf("B's view after revocation: %+v", seen)
	}
	// Revoking it again on B is a conflict: B sees the same record.
	b.call(t, http.StatusConflict, "POST", "/keys/"+k.Key.ID+"/revoke", nil)

	// Deleted on B, the key is gone on A too: its token is unknown there.
	b.call(t, http.StatusNoContent, "DELETE", "/keys/"+k.Key.ID, nil)
	pollUntil(t, 5*time.Second, "A forgetting a key deleted on B", func() bool {
		last = insts[0].Get(t, "/", "X-API-Key", k.Secret)
		return last.Status == http.StatusUnauthorized && unauthorizedReason(t, last) == "unknown"
	})
	a.call(t, http.StatusNotFound, "GET", "/keys/"+k.Key.ID, nil)
}

// Concurrent rotations of one key on two instances sharing Redis: a
// rotation made from a copy of the key that another rotation has changed
// meanwhile is refused (409) instead of being written, so every secret a
// rotation returned works afterwards, on both instances. (Written last
// writer wins, a rotation dropped the secrets of those just before it.)
func TestAdminConcurrentRotationsLoseNoSecret(t *testing.T) {
	t.Parallel()
	srv := startRedis(t, 0)
	cfg := Config{Global: redisControl(srv, "rotate:"), Site: apiKeySite(100000, false)}
	insts := startInstances(t, 2, cfg)
	apis := []*adminAPI{newAdminAPI(t, insts[0]), newAdminAPI(t, insts[1])}
	k := apis[0].createKey(t, "rotated")
	pollUntil(t, 5*time.Second, "B knowing the key", func() bool {
		return apis[1].send(t, "GET", "/keys/"+k.Key.ID, "", nil).Status == http.StatusOK
	})

	// 8 a side: the admin client limit lets one client make 10 at once.
	var mu sync.Mutex
	secrets := []string{k.Secret}
	conflicts := 0
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			r := apis[i%2].send(t, "POST", "/keys/"+k.Key.ID+"/rotate", "application/json", []byte(`{"grace":"1h"}`))
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case http.StatusOK:
				var got issuedKey
				if err := json.Unmarshal(r.Body, &got); err != nil || got.Secret == "" {
					t.Errorf("rotation: %v %s", err, r.Body)
				}
				secrets = append(secrets, got.Secret)
			case http.StatusConflict:
				conflicts++
			default:
				t.Errorf("rotation: %d %s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	t.Logf("%d rotations stored, %d refused as conflicts", len(secrets)-1, conflicts)
	if len(secrets) < 2 {
		t.Fatal("no rotation was stored")
	}
	for i, inst := range insts {
		for j, secret := range secrets {
			var last Response
			deadline := time.Now().Add(5 * time.Second)
			for {
				last = inst.Get(t, "/", "X-API-Key", secret)
				if last.Status == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					exp := apis[0].send(t, "GET", "/export", "", nil)
					t.Fatalf("instance %d refuses secret %d of %d: %d %s; export %s", i, j, len(secrets), last.Status, last.Body, exp.Body)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

package integration

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// A handler's own `store redis { ... }` block keeps its counters in that
// Redis, with no global option, and the admin API lists it.
func TestRedisStoreInlineInAHandler(t *testing.T) {
	srv := startRedis(t, 0)
	c := Start(t, Config{Site: fmt.Sprintf(`rate_limit {
	store redis {
		address %s
		key_prefix inline:
	}
	zone per_client {
		key {remote_host}
		limit 2 1h
	}
}
respond "ok"`, srv.Addr)})
	var got []int
	for range 3 {
		got = append(got, c.Get(t, "/").Status)
	}
	if fmt.Sprint(got) != "[200 200 429]" {
		t.Fatalf("statuses %v, want [200 200 429]", got)
	}
	out, err := exec.Command("redis-cli", "-p", fmt.Sprint(srv.Port), "--scan", "--pattern", "inline:*").Output()
	if err != nil {
		t.Fatal(err)
	}
	if keys := strings.Fields(string(out)); len(keys) != 1 || !strings.Contains(keys[0], "per_client") {
		t.Errorf("keys in Redis: %q, want one counter of zone per_client", keys)
	}
	health := adminGet(t, c, "/rate_limit/v1/health")
	if !strings.Contains(health, `"inline-`) || !strings.Contains(health, `"redis"`) {
		t.Errorf("health does not list the inline redis store: %s", health)
	}
}

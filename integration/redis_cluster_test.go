package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// redisCluster is a Redis Cluster of three primaries with one replica each,
// redis-server processes on loopback ports, stopped by PID when the test
// ends.
type redisCluster struct {
	nodes []*redisServer
}

// startRedisCluster starts the six nodes, joins them with redis-cli
// --cluster create and waits until every node reports the cluster ok.
func startRedisCluster(t *testing.T) *redisCluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli not found: run make test, which installs it (apt-get install redis-tools)")
	}
	start := time.Now()
	cl := &redisCluster{nodes: make([]*redisServer, 6)}
	var wg sync.WaitGroup
	for i := range cl.nodes {
		wg.Go(func() {
			cl.nodes[i] = startRedis(t, 0, "--cluster-enabled", "yes", "--cluster-node-timeout", "1000")
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, cl.addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range cl.nodes {
		for {
			out, err := exec.CommandContext(ctx, "redis-cli", "-p", fmt.Sprint(n.Port), "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %s: cluster not ok after %v: %v %s", n.Addr, time.Since(start), err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("cluster of 6 nodes ok in %v", time.Since(start).Round(time.Millisecond))
	return cl
}

func (cl *redisCluster) addrs() []string {
	out := make([]string, len(cl.nodes))
	for i, n := range cl.nodes {
		out[i] = n.Addr
	}
	return out
}

// store is the global rate_limit option that makes the cluster the default
// store: several addresses are Cluster seeds.
func (cl *redisCluster) store(prefix string, timeout time.Duration, extra ...string) string {
	return redisStoreAt(strings.Join(cl.addrs()[:3], " "), prefix, timeout, extra...)
}

// skews are the instances' clock offsets in the exactness runs: seconds
// apart, more than the window, so a decision that read an instance's clock
// would put its charges in other windows than the other instances'.
var skews = []string{"-1500ms", "0s", "1700ms"}

// startSkewedInstances starts one Caddy per entry of skews, each with its
// clock shifted by it (the store's test-only clock offset).
func startSkewedInstances(t *testing.T, cfg Config) []*Caddy {
	t.Helper()
	insts := make([]*Caddy, len(skews))
	for i, skew := range skews {
		c := cfg
		c.Env = append(append([]string(nil), cfg.Env...), "RATEWARDEN_TEST_CLOCK_OFFSET="+skew)
		insts[i] = Start(t, c)
	}
	if log := insts[0].Log(); !strings.Contains(log, "test-only clock offset in effect") {
		t.Fatalf("the clock offset was not applied; log:\n%s", log)
	}
	return insts
}

// Three Caddy instances with skewed clocks, sharing one Redis Cluster, hold
// one exact limit on one key, as on a standalone server.
func TestRedisExactAcrossThreeInstancesOnACluster(t *testing.T) {
	cl := startRedisCluster(t)
	for _, alg := range []string{"fixed_window", "sliding_log", "gcra"} {
		t.Run(alg, func(t *testing.T) {
			zone := "cluster_" + alg
			insts := startSkewedInstances(t, Config{
				Global: cl.store("cexact-"+alg+":", 5*time.Second, "deny_cache"),
				Site:   exactSite(alg, zone, exactLimit, exactWindow),
			})
			checkExact(t, insts, alg, zone)
		})
	}
}

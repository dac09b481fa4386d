package redis

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The Cluster harness: three primaries and three replicas, each a
// redis-server process of this test binary on a loopback port, joined with
// redis-cli --cluster create. Every test that needs a Cluster starts its
// own (about two seconds) and stops it by PID when it ends, even on failure:
// the package's TestMain is server_test.go's, so there is no end of the
// binary to hang a shared Cluster's cleanup on, and the failure tests kill
// and move nodes anyway. Tests that only read and write keys share one
// Cluster as parallel subtests of one test (TestCluster).

// missingCLI is the one line a run without redis-cli fails with.
const missingCLI = "redis-cli not found: run make test, which installs it, or apt-get install redis-server (it ships redis-cli)"

// clusterNodeTimeout is the nodes' cluster-node-timeout: how long a node
// may be unreachable before the others fail it over.
const clusterNodeTimeout = time.Second

// clusterStartLimit bounds the whole start-up, processes to a healthy
// Cluster.
const clusterStartLimit = 15 * time.Second

// cluster is a six-node Redis Cluster started by this test binary.
type cluster struct {
	nodes []*server
}

// startCluster starts a Cluster of three primaries with one replica each,
// and waits until every node reports it healthy. Every process is stopped
// by its PID when the test ends.
func startCluster(tb testing.TB) *cluster {
	tb.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		tb.Fatal(missingCLI)
	}
	start := time.Now()
	cl := &cluster{nodes: make([]*server, 6)}
	errs := make([]error, len(cl.nodes))
	var wg sync.WaitGroup
	for i := range cl.nodes {
		wg.Go(func() { cl.nodes[i], errs[i] = launchClusterNode() })
	}
	wg.Wait()
	for _, srv := range cl.nodes {
		if srv != nil {
			tb.Cleanup(srv.stop)
		}
	}
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("starting the cluster's redis-servers: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterStartLimit)
	defer cancel()
	args := append([]string{"--cluster", "create"}, cl.addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := waitHealthy(ctx, cl.nodes); err != nil {
		tb.Fatalf("cluster not healthy %v after start: %v", time.Since(start).Round(time.Millisecond), err)
	}
	tb.Logf("cluster of 6 nodes healthy in %v", time.Since(start).Round(time.Millisecond))
	return cl
}

// launchClusterNode starts one cluster-enabled redis-server on a free
// port, retrying a port taken between the probe and the start.
func launchClusterNode() (*server, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		// The config file is relative to the server's own temporary --dir.
		srv, err := launchOn(port, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes-" + strconv.Itoa(port) + ".conf",
			"--cluster-node-timeout", strconv.FormatInt(clusterNodeTimeout.Milliseconds(), 10),
			// A replica's first sync starts at once, not after the
			// default 5s wait for more replicas.
			"--repl-diskless-sync-delay", "0",
		})
		if err == nil {
			return srv, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (cl *cluster) addrs() []string {
	out := make([]string, len(cl.nodes))
	for i, srv := range cl.nodes {
		out[i] = srv.Addr
	}
	return out
}

// client returns a Cluster client seeded with every node, set up like the
// store's own (ContextTimeoutEnabled), and closed when the test ends.
func (cl *cluster) client(tb testing.TB) *goredis.ClusterClient {
	tb.Helper()
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.addrs(), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// node returns the server listening on addr.
func (cl *cluster) node(addr string) *server {
	for _, srv := range cl.nodes {
		if srv.Addr == addr {
			return srv
		}
	}
	return nil
}

// nodeClient runs fn with a plain client of one node.
func nodeClient(addr string, fn func(*goredis.Client) error) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer c.Close()
	return fn(c)
}

// waitHealthy polls the given nodes until each says cluster_state:ok with
// all 16384 slots assigned and served, and every primary among them has a
// replica in sync, or ctx ends.
func waitHealthy(ctx context.Context, nodes []*server) error {
	var last error
	for {
		last = healthy(ctx, nodes, true)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// healthy reports whether every node says cluster_state:ok with all slots
// served, and, with replicas, whether every primary has a replica in sync.
func healthy(ctx context.Context, nodes []*server, replicas bool) error {
	for _, srv := range nodes {
		err := nodeClient(srv.Addr, func(c *goredis.Client) error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_slots_ok:16384"} {
				if !strings.Contains(info, want+"\r\n") {
					return fmt.Errorf("CLUSTER INFO lacks %s", want)
				}
			}
			if !replicas {
				return nil
			}
			repl, err := c.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if strings.Contains(repl, "role:master") && !strings.Contains(repl, ",state=online,") {
				return errors.New("a primary has no replica in sync")
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", srv.Addr, err)
		}
	}
	return nil
}

// owner returns the address of the primary that serves key, as the given
// node sees the slot map.
func owner(ctx context.Context, via, key string) (string, error) {
	var addr string
	err := nodeClient(via, func(c *goredis.Client) error {
		slot, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			return err
		}
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		for _, r := range slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
				addr = r.Nodes[0].Addr
				return nil
			}
		}
		return fmt.Errorf("slot %d is not served", slot)
	})
	if err != nil {
		return "", fmt.Errorf("finding the owner of %q: %w", key, err)
	}
	return addr, nil
}

// primaries returns the addresses of the nodes that serve slots, as the
// given node sees the slot map.
func primaries(ctx context.Context, via string) ([]string, error) {
	var out []string
	err := nodeClient(via, func(c *goredis.Client) error {
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, r := range slots {
			if a := r.Nodes[0].Addr; !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
}

// waitFailedOver polls the survivors until each is healthy and none names
// the killed node as a slot's primary.
func waitFailedOver(ctx context.Context, survivors []*server, dead string) error {
	var last error
	for {
		last = healthy(ctx, survivors, false)
		if last == nil {
			for _, srv := range survivors {
				ps, err := primaries(ctx, srv.Addr)
				if err == nil && slices.Contains(ps, dead) {
					err = fmt.Errorf("%s still names %s a primary", srv.Addr, dead)
				}
				if err != nil {
					last = err
					break
				}
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// moveSlot moves slot from the primary source to the primary target, key
// by key with pauses, so that traffic sees every stage of the move, and
// tells every primary in ps the new owner.
func moveSlot(ctx context.Context, slot int64, source, target string, ps []string) error {
	id := func(addr string) (string, error) {
		var out string
		err := nodeClient(addr, func(n *goredis.Client) (err error) {
			out, err = n.Do(ctx, "CLUSTER", "MYID").Text()
			return err
		})
		return out, err
	}
	sourceID, err := id(source)
	if err != nil {
		return err
	}
	targetID, err := id(target)
	if err != nil {
		return err
	}
	do := func(addr string, args ...any) error {
		return nodeClient(addr, func(n *goredis.Client) error {
			if err := n.Do(ctx, args...).Err(); err != nil {
				return fmt.Errorf("%v on %s: %w", args, addr, err)
			}
			return nil
		})
	}
	if err := do(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", sourceID); err != nil {
		return err
	}
	if err := do(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", targetID); err != nil {
		return err
	}
	host, port, _ := strings.Cut(target, ":")
	for {
		time.Sleep(50 * time.Millisecond)
		var keys []string
		err := nodeClient(source, func(n *goredis.Client) (err error) {
			keys, err = n.ClusterGetKeysInSlot(ctx, int(slot), 1).Result()
			return err
		})
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		if err := do(source, "MIGRATE", host, port, "", 0, 5000, "KEYS", keys[0]); err != nil {
			return err
		}
	}
	time.Sleep(50 * time.Millisecond)
	if err := do(target, "CLUSTER", "SETSLOT", slot, "NODE", targetID); err != nil {
		return err
	}
	for _, p := range ps {
		if p != target {
			if err := do(p, "CLUSTER", "SETSLOT", slot, "NODE", targetID); err != nil {
				return err
			}
		}
	}
	return nil
}

package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// sentinelMaster is the name the test sentinels monitor.
const sentinelMaster = "m"

// sentinelSet is a Sentinel deployment on loopback: a primary, two
// replicas and three sentinels, all started by the test and stopped by PID
// when it ends.
type sentinelSet struct {
	Primary   *server
	Replicas  []*server
	Sentinels []*server
}

// SentinelAddrs are the sentinels' addresses.
func (set *sentinelSet) SentinelAddrs() []string {
	addrs := make([]string, len(set.Sentinels))
	for i, s := range set.Sentinels {
		addrs[i] = s.Addr
	}
	return addrs
}

// startSentinelSet starts a primary, two replicas of it and three
// sentinels with a quorum of two, down-after 1s and failover-timeout 3s,
// and waits until the replicas are in sync and every sentinel knows the
// others and both replicas, so that a failover can start at once.
func startSentinelSet(tb testing.TB) *sentinelSet {
	tb.Helper()
	set := &sentinelSet{Primary: startServer(tb)}
	_, primaryPort, _ := net.SplitHostPort(set.Primary.Addr)
	for range 2 {
		set.Replicas = append(set.Replicas, startServer(tb, "--replicaof", "127.0.0.1", primaryPort))
	}
	for range 3 {
		set.Sentinels = append(set.Sentinels, startSentinel(tb, primaryPort))
	}
	ctx := context.Background()
	replicas := make([]*goredis.Client, len(set.Replicas))
	for i, r := range set.Replicas {
		replicas[i] = r.client(tb)
	}
	err := waitFor(15*time.Second, func() error {
		for i, r := range set.Replicas {
			info, err := replicas[i].Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "master_link_status:up") {
				return fmt.Errorf("replica %s not in sync", r.Addr)
			}
		}
		for _, s := range set.Sentinels {
			sc := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr})
			others, err := sc.Sentinels(ctx, sentinelMaster).Result()
			if err == nil && len(others) < len(set.Sentinels)-1 {
				err = fmt.Errorf("sentinel %s knows %d other sentinels", s.Addr, len(others))
			}
			if err == nil {
				var replicas []map[string]string
				replicas, err = sc.Replicas(ctx, sentinelMaster).Result()
				if err == nil && len(replicas) < len(set.Replicas) {
					err = fmt.Errorf("sentinel %s knows %d replicas", s.Addr, len(replicas))
				}
			}
			_ = sc.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("waiting for the sentinel set: %v", err)
	}
	return set
}

// startSentinel starts a sentinel that monitors the primary on
// primaryPort, with a config file of its own (sentinels rewrite it), and
// stops it when the test ends.
func startSentinel(tb testing.TB, primaryPort string) *server {
	tb.Helper()
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		dir := tb.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %s 2
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 3000
`, port, dir, sentinelMaster, primaryPort)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		srv, err := startRedisProcess(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil, conf, "--sentinel")
		if err == nil {
			tb.Cleanup(srv.stop)
			return srv
		}
		lastErr = err
	}
	tb.Fatalf("starting redis-server --sentinel: %v", lastErr)
	return nil
}

// startRedisProcess runs redis-server with args, for a server that
// launchOn cannot start (a sentinel with its config file, a TLS-only
// server), and waits until ready, or srv.ping when ready is nil, answers.
// The caller stops it.
func startRedisProcess(addr string, ready func() error, args ...string) (*server, error) {
	dir, err := os.MkdirTemp("", "ratewarden-redis-")
	if err != nil {
		return nil, err
	}
	srv := &server{
		Addr: addr,
		cmd:  exec.Command("redis-server", args...),
		dir:  dir,
		log:  new(bytes.Buffer),
		done: make(chan struct{}),
	}
	srv.cmd.Dir = dir
	srv.cmd.Stdout, srv.cmd.Stderr = srv.log, srv.log
	srv.cmd.SysProcAttr = childAttr()
	if err := srv.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { _ = srv.cmd.Wait(); close(srv.done) }()
	if ready == nil {
		ready = srv.ping
	}
	err = waitFor(5*time.Second, func() error {
		select {
		case <-srv.done:
			return errors.New("exited before it was ready")
		default:
		}
		return ready()
	})
	if err != nil {
		srv.stop()
		return nil, fmt.Errorf("redis-server on %s: %w\n%s", addr, err, srv.log.String())
	}
	return srv, nil
}

// waitFor calls check every 50ms until it returns nil, and returns its last
// error if that takes longer than limit.
func waitFor(limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

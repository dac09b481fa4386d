package integration

import (
	"bufio"
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
)

// missingRedis is the one line a run without redis-server fails with: the
// Redis tests never skip.
const missingRedis = "redis-server not found: run make test, which installs it (or apt-get install redis-server)"

// redisServer is a redis-server process on a loopback port, with no
// persistence, stopped by its PID.
type redisServer struct {
	Addr    string
	Port    int
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startRedis starts redis-server on port, or on a free port when port is 0,
// and waits until it answers PING. It is killed when the test ends.
func startRedis(t testing.TB, port int, extra ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal(missingRedis)
	}
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			ports, err := freePorts(1)
			if err != nil {
				t.Fatal(err)
			}
			p = ports[0]
		}
		srv, err := tryStartRedis(t, p, extra...)
		if err == nil {
			return srv
		}
		if port != 0 || attempt == 3 {
			t.Fatalf("starting redis-server on port %d: %v", p, err)
		}
	}
}

func tryStartRedis(t testing.TB, port int, extra ...string) (*redisServer, error) {
	dir := t.TempDir()
	srv := &redisServer{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port:    port,
		logPath: filepath.Join(dir, "redis.log"),
		exited:  make(chan struct{}),
	}
	logf, err := os.Create(srv.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir}
	srv.cmd = exec.Command("redis-server", append(args, extra...)...)
	srv.cmd.Stdout, srv.cmd.Stderr = logf, logf
	if err := srv.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = srv.cmd.Wait(); close(srv.exited) }()
	t.Cleanup(srv.Kill)

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-srv.exited:
			b, _ := os.ReadFile(srv.logPath)
			return nil, fmt.Errorf("exited before answering PING:\n%s", b)
		default:
		}
		if srv.ping() == nil {
			return srv, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Kill()
	return nil, errors.New("no PONG within 5s")
}

// ping sends one PING over a fresh connection.
func (srv *redisServer) ping() error {
	conn, err := net.DialTimeout("tcp", srv.Addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Kill ends the server with SIGKILL, by its PID, and waits for it. It may
// be called more than once.
func (srv *redisServer) Kill() {
	select {
	case <-srv.exited:
		return
	default:
	}
	_ = srv.cmd.Process.Kill()
	<-srv.exited
}

// redisStore is the global rate_limit option that makes srv the default
// store, with keys under prefix and the given per-decision timeout, plus
// any extra store lines.
func redisStore(srv *redisServer, prefix string, timeout time.Duration, extra ...string) string {
	return redisStoreAt(srv.Addr, prefix, timeout, extra...)
}

// redisStoreAt is redisStore for the server or Cluster seeds at addrs
// (space-separated).
func redisStoreAt(addrs, prefix string, timeout time.Duration, extra ...string) string {
	lines := ""
	for _, l := range extra {
		lines += "\t\t" + l + "\n"
	}
	return fmt.Sprintf(`rate_limit {
	store redis {
		address %s
		key_prefix %s
		timeout %s
%s	}
}`, addrs, prefix, timeout, lines)
}

// startInstances starts n Caddy instances with the same config.
func startInstances(t testing.TB, n int, cfg Config) []*Caddy {
	t.Helper()
	insts := make([]*Caddy, n)
	for i := range insts {
		insts[i] = Start(t, cfg)
	}
	return insts
}

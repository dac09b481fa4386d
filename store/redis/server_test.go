package redis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
)

// missingServer is the one line a run without redis-server fails with.
const missingServer = "redis-server not found: run make test, which installs it, or apt-get install redis-server"

// TestMain fails the package at once when redis-server is missing (the
// store's tests never skip), and stops the shared server at the end.
func TestMain(m *testing.M) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(os.Stderr, missingServer)
		os.Exit(1)
	}
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// server is a redis-server process started by this test binary on a
// loopback port. It is stopped by its PID.
type server struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
	log  *bytes.Buffer
	done chan struct{} // closed when the process has exited
	once sync.Once
}

// shared is the server most tests use, each with its own key prefix.
var shared struct {
	mu  sync.Mutex
	srv *server
	err error
}

// sharedServer returns the package's shared server, starting it on first
// use; TestMain stops it.
func sharedServer(tb testing.TB) *server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = launch()
	}
	if shared.err != nil {
		tb.Fatalf("starting redis-server: %v", shared.err)
	}
	return shared.srv
}

// startServer starts a server of the test's own, stopped when the test
// ends, for tests that stop, pause or flush it.
func startServer(tb testing.TB, extra ...string) *server {
	tb.Helper()
	srv, err := launch(extra...)
	if err != nil {
		tb.Fatalf("starting redis-server: %v", err)
	}
	tb.Cleanup(srv.stop)
	return srv
}

// launch starts redis-server on a free loopback port and waits until it
// answers PING. A port taken between the probe and the start is retried.
func launch(extra ...string) (*server, error) {
	var lastErr error
	for range 5 {
		srv, err := launchOnce(extra)
		if err == nil {
			return srv, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func launchOnce(extra []string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return launchOn(port, extra)
}

// launchOn starts redis-server on port and waits until it answers PING.
func launchOn(port int, extra []string) (*server, error) {
	dir, err := os.MkdirTemp("", "ratewarden-redis-")
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", dir, "--logfile", "",
	}, extra...)
	srv := &server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		cmd:  exec.Command("redis-server", args...),
		dir:  dir,
		log:  new(bytes.Buffer),
		done: make(chan struct{}),
	}
	srv.cmd.Stdout, srv.cmd.Stderr = srv.log, srv.log
	srv.cmd.SysProcAttr = childAttr()
	if err := srv.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, exec.ErrNotFound) {
			return nil, errors.New(missingServer)
		}
		return nil, err
	}
	go func() { _ = srv.cmd.Wait(); close(srv.done) }()
	if err := srv.waitReady(5 * time.Second); err != nil {
		srv.stop()
		return nil, fmt.Errorf("redis-server on %s: %w\n%s", srv.Addr, err, srv.log.String())
	}
	return srv, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the server with PING until it answers.
func (srv *server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-srv.done:
			return errors.New("exited before answering PING")
		default:
		}
		if srv.ping() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no PONG within " + limit.String())
}

func (srv *server) ping() error {
	conn, err := net.DialTimeout("tcp", srv.Addr, time.Second)
	if err != nil {
		return err
	}
	return pingOver(conn)
}

// pingOver sends PING on conn, closes it, and reports whether the server
// answered as a live Redis does.
func pingOver(conn net.Conn) error {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// A server with requirepass answers NOAUTH: it is up all the same.
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// stop kills the server by its PID and waits for it to exit.
func (srv *server) stop() {
	srv.once.Do(func() {
		if srv.cmd.Process != nil {
			_ = srv.cmd.Process.Kill()
			<-srv.done
		}
		os.RemoveAll(srv.dir)
	})
}

// restart kills srv and starts a new, empty server on the same port (there
// is no persistence), stopped when the test ends. The port may take a
// moment to be free again.
func (srv *server) restart(tb testing.TB, extra ...string) *server {
	tb.Helper()
	srv.stop()
	_, portStr, _ := net.SplitHostPort(srv.Addr)
	port, _ := strconv.Atoi(portStr)
	var lastErr error
	for range 20 {
		next, err := launchOn(port, extra)
		if err == nil {
			tb.Cleanup(next.stop)
			return next
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("restarting redis-server on %s: %v", srv.Addr, lastErr)
	return nil
}

// pause stops srv with SIGSTOP, so that it accepts connections but never
// answers, until the returned resume is called (SIGCONT). The test's end
// resumes it if the test did not.
func (srv *server) pause(tb testing.TB) (resume func()) {
	tb.Helper()
	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		tb.Fatalf("pausing redis-server: %v", err)
	}
	var once sync.Once
	resume = func() { once.Do(func() { _ = srv.cmd.Process.Signal(syscall.SIGCONT) }) }
	tb.Cleanup(resume)
	return resume
}

// client returns a client of srv, closed when the test ends.
func (srv *server) client(tb testing.TB) *goredis.Client {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// storeSeq makes every test store's prefix unique, even when -count runs a
// test again against the same shared server.
var storeSeq atomic.Int64

// testStore returns a store on c whose keys start with a prefix of its own.
func testStore(tb testing.TB, c Client) *Store {
	tb.Helper()
	prefix := fmt.Sprintf("t%d:%s:", storeSeq.Add(1), tb.Name())
	// A generous budget: under -race on a small machine a call can take
	// longer than the default 50ms. The timeout tests set their own.
	return New(c, Options{KeyPrefix: prefix, Timeout: caddy.Duration(10 * time.Second)})
}

// simulated sets s to decide at the time clock returns, instead of the
// server's TIME, with TTLs of at least an hour so that no key expires in
// real time while the simulated clock says it is live.
func simulated(s *Store, clock func() time.Time) *Store {
	s.now = func() int64 { return clock().UnixMicro() }
	s.minTTL = int64(time.Hour / time.Millisecond)
	return s
}

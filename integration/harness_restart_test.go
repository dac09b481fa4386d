package integration

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A restartable instance keeps its home, config and data directories
// (XDG_DATA_HOME holds Caddy's storage, where the memory store keeps API
// keys and overrides) in a directory the test owns, so that a new process
// started there finds what the previous one wrote.

// StartIn is Start with the instance's files under dir: its Caddyfile,
// $HOME, $XDG_CONFIG_HOME=dir/config and $XDG_DATA_HOME=dir/data. The
// process is stopped when the test ends.
func StartIn(t testing.TB, dir string, cfg Config) *Caddy {
	t.Helper()
	requireCaddy(t)
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		c, err := launchIn(t, dir, ports[0], ports[1], cfg)
		if err == nil {
			return c
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("starting caddy in %s: %v", dir, err)
		}
	}
}

// Restart stops c (SIGTERM, then SIGKILL after stopTimeout) and starts a
// new process with cfg in the same directory and on the same ports. The
// returned instance replaces c; c's output stays readable with c.Log().
func (c *Caddy) Restart(t testing.TB, cfg Config) *Caddy {
	t.Helper()
	c.Client.CloseIdleConnections()
	if crashed := c.stop(); crashed != nil {
		t.Fatalf("caddy exited on its own before the restart: %v\n%s", crashed, truncate(c.Log(), maxLogOnFailure))
	}
	dir := filepath.Dir(c.logPath)
	// The ports were ours a moment ago; another process taking one in
	// between is possible but unlikely, so retry briefly.
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, err := launchIn(t, dir, c.httpPort, c.adminPort, cfg)
		if err == nil {
			return n
		}
		if !errors.Is(err, errPortTaken) || time.Now().After(deadline) {
			t.Fatalf("restarting caddy in %s: %v", dir, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// launchIn runs one Caddy process in dir on the given ports and waits until
// it serves. Each process writes its own log file, caddy-<n>.log.
func launchIn(t testing.TB, dir string, httpPort, adminPort int, cfg Config) (*Caddy, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logPath, err := nextLogPath(dir)
	if err != nil {
		return nil, err
	}
	c := &Caddy{
		httpPort:  httpPort,
		adminPort: adminPort,
		URL:       fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		Admin:     fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		logPath:   logPath,
		exited:    make(chan struct{}),
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(c.Caddyfile(cfg)), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	c.cmd = exec.Command(caddyBin, "run", "--config", path, "--adapter", "caddyfile")
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
	)
	c.cmd.Env = append(c.cmd.Env, cfg.Env...)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", caddyBin, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	c.Client = &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	if err := c.waitReady(); err != nil {
		c.dumpGoroutines()
		c.stop()
		log := c.Log()
		if strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("%w\n--- caddy output ---\n%s", err, truncate(log, maxLogOnFailure))
	}
	t.Cleanup(func() {
		c.Client.CloseIdleConnections()
		if crashed := c.stop(); crashed != nil {
			t.Errorf("caddy exited on its own during the test: %v", crashed)
		}
		if t.Failed() {
			t.Logf("--- caddy output (%s) ---\n%s", filepath.Base(c.logPath), truncate(c.Log(), maxLogOnFailure))
		}
	})
	return c, nil
}

// nextLogPath returns dir/caddy-<n>.log for the first n not taken.
func nextLogPath(dir string) (string, error) {
	for n := 1; n < 1000; n++ {
		p := filepath.Join(dir, fmt.Sprintf("caddy-%d.log", n))
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return p, nil
		}
	}
	return "", fmt.Errorf("too many logs in %s", dir)
}

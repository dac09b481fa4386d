package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dashboardProc is one `caddy rate-limit dashboard` process.
type dashboardProc struct {
	// URL is the proxy's origin, http://127.0.0.1:<port>.
	URL string

	cmd     *exec.Cmd
	out     *procOutput
	exited  chan struct{}
	waitErr error
}

// procOutput collects what a process writes, for the test to read while it
// runs.
type procOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *procOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *procOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// startDashboardProxy runs the built caddy's `rate-limit dashboard` for c's
// admin endpoint on a free loopback port, and waits until it prints its
// address. The process is stopped by PID when the test ends.
func startDashboardProxy(t *testing.T, c *Caddy) *dashboardProc {
	t.Helper()
	var lastErr error
	for range 3 {
		d, err := tryStartDashboardProxy(t, c)
		if err == nil {
			return d
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("starting caddy rate-limit dashboard: %v", lastErr)
	return nil
}

func tryStartDashboardProxy(t *testing.T, c *Caddy) (*dashboardProc, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	dir := t.TempDir()
	d := &dashboardProc{out: &procOutput{}, exited: make(chan struct{})}
	d.cmd = exec.Command(caddyBin, "rate-limit", "dashboard",
		"--listen", listen, "--address", strings.TrimPrefix(c.Admin, "http://"))
	d.cmd.Dir = dir
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"))
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", caddyBin, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	want := "Dashboard: http://" + listen + "/rate_limit/v1/ui/\n"
	deadline := time.After(startTimeout)
	for !strings.Contains(d.out.String(), want) {
		select {
		case <-d.exited:
			return nil, fmt.Errorf("exited before serving (%v): %s", d.waitErr, d.out.String())
		case <-deadline:
			d.stop()
			return nil, fmt.Errorf("no %q after %s; output: %s", want, startTimeout, d.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.URL = "http://" + listen
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("--- caddy rate-limit dashboard output ---\n%s", truncate(d.out.String(), maxLogOnFailure))
		}
	})
	return d, nil
}

// stop interrupts the process by PID, as Ctrl+C would, and returns its exit
// error; after stopTimeout it is killed.
func (d *dashboardProc) stop() error {
	select {
	case <-d.exited:
		return d.waitErr
	default:
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
		return d.waitErr
	case <-time.After(stopTimeout):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("still running %s after SIGINT; killed", stopTimeout)
	}
}

// A typed navigation to the dashboard, which Caddy's admin endpoint
// refuses (caddyserver/caddy#7633), works through `caddy rate-limit
// dashboard`: the page loads, shows live numbers from a real Caddy and
// resets a key. The proxy still refuses other origins, and stops cleanly on
// SIGINT.
func TestDashboardProxyWithRealCaddy(t *testing.T) {
	c := Start(t, Config{Site: `
rate_limit {
	zone per_user {
		key {header.X-User}
		events 3
		window 1h
	}
}
respond "ok"`})
	d := startDashboardProxy(t, c)
	page := d.URL + "/rate_limit/v1/ui/"
	// A spent key, to be reset from the page.
	c.expectStatuses(t, "/", repeat(http.StatusOK, 3, http.StatusTooManyRequests), "X-User", "spent")

	// Traffic whose pace changes every half second: fresh users (allowed)
	// and spent ones (denied).
	stopTraffic := varyingTraffic(t, c, 4, 2)

	b := StartBrowser(t)
	b.SetWindowSize(1440, 1000)
	b.Navigate(c.Admin + "/rate_limit/v1/ui/")
	direct, _ := b.Query("body", "")
	t.Logf("typed navigation to the admin endpoint itself: %q", strings.TrimSpace(direct))

	b.Navigate(page) // typed: no referrer
	if _, ok := b.Query("table#zones", ""); !ok {
		body, _ := b.Query("body", "")
		t.Fatalf("%s is not the dashboard: %q", page, strings.TrimSpace(body))
	}
	row := `#zones tr[data-zone="per_user"]`
	first := number(b, row+" td.rate", "data-value")
	changes(b, row+" td.rate", "data-value", first)
	b.Eventually(15*time.Second, "per_user to deny some requests", func() (bool, string) {
		v, _ := b.Query(row+" td.denial", "data-value")
		ratio, err := strconv.ParseFloat(v, 64)
		return err == nil && ratio > 0 && ratio < 1, strconv.Quote(v)
	})
	if status, _ := b.Query("#status", "data-kind"); status == "error" {
		text, _ := b.Query("#status", "")
		t.Errorf("the page reports an error: %s", text)
	}

	// A write from the page: its DELETE carries the proxy's Origin.
	b.FindElement(`#reset-zone option[value="per_user"]`).Click()
	b.FindElement("#reset-key").SendKeys("spent")
	b.FindElement("#reset-submit").Click()
	b.AcceptAlert()
	statusSays(b, "ok", `Reset key "spent" in zone per_user (it had 0 of 3 left)`)
	if st := inspect(t, c, "per_user", "spent"); st.Remaining != 3 {
		t.Errorf("spent after the reset from the page: remaining %d, want 3", st.Remaining)
	}
	saveScreenshot(b, "dashboard-proxy.png")

	// Not for other origins or sites, as Caddy's own check would have it.
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"another origin", map[string]string{"Origin": "http://evil.example"}},
		{"a cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}},
	} {
		req, err := http.NewRequest(http.MethodGet, d.URL+"/rate_limit/v1/zones", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403; body %q", tc.name, resp.StatusCode, body)
		}
	}

	// Ctrl+C: exit status 0, and the port is closed.
	stopTraffic()
	if err := d.stop(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Errorf("exit status %d after SIGINT, want 0", exit.ExitCode())
		} else {
			t.Error(err)
		}
	}
	if st, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		t.Errorf("the process died of %v instead of shutting down", st.Signal())
	}
	if conn, err := net.Dial("tcp", strings.TrimPrefix(d.URL, "http://")); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after the proxy stopped", d.URL)
	}
}

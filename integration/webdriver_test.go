package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A minimal W3C WebDriver client over plain HTTP, driving Debian's
// chromedriver and headless Chromium for the dashboard tests.

const (
	chromedriverPath = "/usr/bin/chromedriver"
	chromiumPath     = "/usr/bin/chromium"

	// elementKey is the W3C name of an element reference in JSON.
	elementKey = "element-6066-11e4-a52e-4f735466cecf"
	// driverTimeout bounds chromedriver's start and any one command.
	driverTimeout = 30 * time.Second
)

// Browser is one headless Chromium session. Its methods fail the test on
// error, so they must be called from the test's goroutine.
type Browser struct {
	t       testing.TB
	base    string // http://127.0.0.1:<port>/session/<id>
	client  *http.Client
	logPath string
}

// Element is a reference to an element of the current page. It remembers
// its selector, so a reference that went stale (the page replaced the
// element) is found again once.
type Element struct {
	b   *Browser
	css string
	id  string
}

// driverError is a WebDriver error response, e.g. "no such element".
type driverError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *driverError) Error() string {
	msg, _, _ := strings.Cut(e.Message, "\n")
	if strings.HasPrefix(msg, e.Code) {
		return msg
	}
	return e.Code + ": " + msg
}

func isDriverError(err error, code string) bool {
	var de *driverError
	return errors.As(err, &de) && de.Code == code
}

// StartBrowser starts chromedriver on a free loopback port and opens a
// headless Chromium session. Both are stopped when the test ends.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	for _, p := range []string{chromedriverPath, chromiumPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: `make test` installs it (Debian packages chromium and chromium-driver)", p)
		}
	}
	dir := t.TempDir()
	var lastErr error
	for range 3 {
		b, err := startBrowser(t, dir)
		if err == nil {
			return b
		}
		lastErr = err
	}
	t.Fatalf("starting chromedriver: %v", lastErr)
	return nil
}

func startBrowser(t testing.TB, dir string) (*Browser, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("chromedriver-%d.log", ports[0]))
	cmd := exec.Command(chromedriverPath, fmt.Sprintf("--port=%d", ports[0]), "--log-path="+logPath)
	// Its own process group, so that Chromium's processes can be stopped
	// with it should the session not end cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", chromedriverPath, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	root := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	client := &http.Client{Timeout: driverTimeout}
	if err := waitDriverReady(client, root, exited); err != nil {
		stop()
		return nil, fmt.Errorf("%w\n%s", err, readLog(logPath))
	}
	b := &Browser{t: t, client: client, logPath: logPath}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.do(http.MethodPost, root+"/session", newSessionRequest(t.TempDir()), &created); err != nil {
		stop()
		return nil, fmt.Errorf("creating a session: %w\n%s", err, readLog(logPath))
	}
	b.base = root + "/session/" + created.SessionID
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- chromedriver log (tail) ---\n%s", tail(readLog(logPath), maxLogOnFailure))
		}
		_ = b.do(http.MethodDelete, b.base, nil, nil)
		client.CloseIdleConnections()
		stop()
	})
	return b, nil
}

// newSessionRequest asks for headless Chromium with a fresh profile in
// profile, and prompts (confirm) left for the test to answer.
func newSessionRequest(profile string) map[string]any {
	return map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":             "chrome",
		"unhandledPromptBehavior": "ignore",
		"goog:chromeOptions": map[string]any{
			"binary": chromiumPath,
			"args": []string{
				"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
				"--no-first-run", "--disable-background-networking",
				"--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--user-data-dir=" + profile,
			},
		},
	}}}
}

// waitDriverReady polls GET /status until chromedriver says it is ready.
func waitDriverReady(client *http.Client, root string, exited <-chan struct{}) error {
	deadline := time.Now().Add(driverTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("chromedriver exited before it was ready")
		default:
		}
		resp, err := client.Get(root + "/status")
		if err == nil {
			var st struct {
				Value struct {
					Ready bool `json:"ready"`
				} `json:"value"`
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && st.Value.Ready {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("chromedriver not ready after %s", driverTimeout)
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no chromedriver log: " + err.Error() + ")"
	}
	return string(b)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// do sends one WebDriver command and decodes the response's value into out
// (when out is not nil).
func (b *Browser) do(method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the response to %s %s: %w", method, url, err)
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: status %d, not WebDriver JSON: %.200s", method, url, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		de := &driverError{}
		if err := json.Unmarshal(env.Value, de); err != nil || de.Code == "" {
			return fmt.Errorf("%s %s: status %d: %.200s", method, url, resp.StatusCode, raw)
		}
		return de
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Value, out)
}

// cmd sends a command of this session, failing the test on error.
func (b *Browser) cmd(method, path string, in, out any) {
	b.t.Helper()
	if err := b.do(method, b.base+path, in, out); err != nil {
		b.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
}

// Navigate loads url and waits for the page to load.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.cmd(http.MethodPost, "/url", map[string]string{"url": url}, nil)
}

// SetWindowSize resizes the browser window (and so the screenshot).
func (b *Browser) SetWindowSize(width, height int) {
	b.t.Helper()
	b.cmd(http.MethodPost, "/window/rect", map[string]int{"width": width, "height": height}, nil)
}

// findElement returns the element css selects, or a "no such element"
// error.
func (b *Browser) findElement(css string) (*Element, error) {
	var ref map[string]string
	if err := b.do(http.MethodPost, b.base+"/element", map[string]string{"using": "css selector", "value": css}, &ref); err != nil {
		return nil, err
	}
	return &Element{b: b, css: css, id: ref[elementKey]}, nil
}

// FindElement returns the first element css selects, failing the test when
// there is none.
func (b *Browser) FindElement(css string) *Element {
	b.t.Helper()
	e, err := b.findElement(css)
	if err != nil {
		b.t.Fatalf("finding %q: %v", css, err)
	}
	return e
}

// elementCmd sends a command about e, finding e again once if it went
// stale.
func (e *Element) elementCmd(method, what string, in, out any) {
	e.b.t.Helper()
	err := e.b.do(method, e.b.base+"/element/"+e.id+what, in, out)
	if isDriverError(err, "stale element reference") {
		var again *Element
		if again, err = e.b.findElement(e.css); err == nil {
			e.id = again.id
			err = e.b.do(method, e.b.base+"/element/"+e.id+what, in, out)
		}
	}
	if err != nil {
		e.b.t.Fatalf("element %q: %s %s: %v", e.css, method, what, err)
	}
}

// Text returns the element's rendered text.
func (e *Element) Text() string {
	e.b.t.Helper()
	var s string
	e.elementCmd(http.MethodGet, "/text", nil, &s)
	return s
}

// Attribute returns the element's attribute name, "" when it has none.
func (e *Element) Attribute(name string) string {
	e.b.t.Helper()
	var s *string
	e.elementCmd(http.MethodGet, "/attribute/"+name, nil, &s)
	if s == nil {
		return ""
	}
	return *s
}

// Click clicks the element.
func (e *Element) Click() {
	e.b.t.Helper()
	e.elementCmd(http.MethodPost, "/click", map[string]any{}, nil)
}

// SendKeys types text into the element.
func (e *Element) SendKeys(text string) {
	e.b.t.Helper()
	e.elementCmd(http.MethodPost, "/value", map[string]string{"text": text}, nil)
}

// ExecuteScript runs script (a function body; its arguments are in
// arguments[]) in the page and decodes what it returns into out, when out
// is not nil.
func (b *Browser) ExecuteScript(out any, script string, args ...any) {
	b.t.Helper()
	if args == nil {
		args = []any{}
	}
	b.cmd(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": args}, out)
}

// AcceptAlert waits for a prompt (alert, confirm) to open, accepts it and
// returns its text.
func (b *Browser) AcceptAlert() string {
	b.t.Helper()
	return b.answerAlert("/alert/accept")
}

// DismissAlert waits for a prompt to open, dismisses it (Cancel) and
// returns its text.
func (b *Browser) DismissAlert() string {
	b.t.Helper()
	return b.answerAlert("/alert/dismiss")
}

func (b *Browser) answerAlert(answer string) string {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var text string
		err := b.do(http.MethodGet, b.base+"/alert/text", nil, &text)
		if err == nil {
			b.cmd(http.MethodPost, answer, map[string]any{}, nil)
			return text
		}
		if !isDriverError(err, "no such alert") || time.Now().After(deadline) {
			b.t.Fatalf("waiting for a prompt: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Screenshot returns a PNG of the window's viewport.
func (b *Browser) Screenshot() []byte {
	b.t.Helper()
	var encoded string
	b.cmd(http.MethodGet, "/screenshot", nil, &encoded)
	png, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		b.t.Fatalf("decoding the screenshot: %v", err)
	}
	return png
}

// NavigateWithReferrer loads url as if from a link on referrer, through
// the DevTools protocol (chromedriver's goog/cdp/execute), and waits until
// the page has loaded.
func (b *Browser) NavigateWithReferrer(url, referrer string) {
	b.t.Helper()
	b.cmd(http.MethodPost, "/goog/cdp/execute", map[string]any{
		"cmd":    "Page.navigate",
		"params": map[string]string{"url": url, "referrer": referrer},
	}, nil)
	b.Eventually(driverTimeout, "the page at "+url+" to load", func() (bool, string) {
		var st struct{ URL, State string }
		b.ExecuteScript(&st, "return {URL: location.href, State: document.readyState}")
		return st.URL == url && st.State == "complete", fmt.Sprintf("at %s, %s", st.URL, st.State)
	})
}

// Eventually calls cond every 100ms until it returns true, and fails the
// test after timeout with what cond last said.
func (b *Browser) Eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited %s for %s; last: %s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Query returns the attribute attr of the first element css selects, or its
// text content when attr is "", and whether there is such an element. It
// reads the page afresh each call, so it suits polling.
func (b *Browser) Query(css, attr string) (string, bool) {
	b.t.Helper()
	var v *string
	b.ExecuteScript(&v, `const e = document.querySelector(arguments[0]);
		if (!e) return null;
		return arguments[1] ? (e.getAttribute(arguments[1]) ?? "") : e.textContent;`, css, attr)
	if v == nil {
		return "", false
	}
	return *v, true
}

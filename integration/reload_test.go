package integration

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// The harness itself: start, serve, reload to a new body.
func TestHarnessStartsAndReloads(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: `respond "v1"`})
	if resp := c.Get(t, "/"); resp.Status != http.StatusOK || resp.Body != "v1" {
		t.Fatalf("before reload: status %d body %q", resp.Status, resp.Body)
	}
	c.Reload(t, Config{Site: `respond "v2"`})
	if resp := c.Get(t, "/"); resp.Status != http.StatusOK || resp.Body != "v2" {
		t.Fatalf("after reload: status %d body %q", resp.Status, resp.Body)
	}
}

func reloadSite(events int, body string) Config {
	return Config{Site: fmt.Sprintf(`
rate_limit {
	zone z {
		key {header.X-Key}
		events %d
		window 30s
	}
}
respond %q`, events, body)}
}

// traffic sends requests continuously from one goroutine until stopped,
// bounded in time and count, and tallies what came back.
type traffic struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	sent     int
	statuses map[int]int
	errs     []error
}

func startTraffic(c *Caddy, key string) *traffic {
	tr := &traffic{stop: make(chan struct{}), statuses: map[int]int{}}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		defer client.CloseIdleConnections()
		deadline := time.Now().Add(20 * time.Second)
		for tr.sent < 20000 && time.Now().Before(deadline) {
			select {
			case <-tr.stop:
				return
			default:
			}
			tr.sent++
			// Reading each body lets the client reuse its connection,
			// as browsers do. (Plain Caddy v2.11.9 now and then drops a
			// connection accepted at the very moment of a reload, so a
			// client opening one connection per request would see
			// errors that are not the handler's.)
			resp, err := get(client, c.URL+"/", key)
			if err != nil {
				tr.errs = append(tr.errs, err)
				continue
			}
			tr.statuses[resp.StatusCode]++
		}
	}()
	return tr
}

// get sends GET url with X-Key and returns the response, body read and closed.
func get(client *http.Client, url, key string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		// A reload closes the old server's keep-alive connections; a GET
		// sent on one at that instant fails with EOF before any answer.
		// Plain Caddy does the same, and HTTP lets a client retry an
		// idempotent request once on a new connection (RFC 9110, 9.2.2),
		// as browsers do. A second failure is a real one.
		resp, err = client.Do(req)
		if err != nil {
			return nil, err
		}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, err
}

func (tr *traffic) finish() {
	close(tr.stop)
	tr.wg.Wait()
}

// Reloads under traffic drop no request, and the counters of a zone that
// survives the reload survive with it.
func TestReloadUnderTrafficKeepsCounters(t *testing.T) {
	t.Parallel()
	c := Start(t, reloadSite(5, "v0"))
	tr := startTraffic(c, "background")

	c.expectStatuses(t, "/", repeat(http.StatusOK, 3), "X-Key", "t")
	for i := 1; i <= 3; i++ {
		time.Sleep(100 * time.Millisecond)
		c.Reload(t, reloadSite(5, fmt.Sprintf("v%d", i)))
	}
	time.Sleep(100 * time.Millisecond)
	tr.finish()

	if len(tr.errs) > 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", len(tr.errs), tr.sent, tr.errs[0])
	}
	for status, n := range tr.statuses {
		if status != http.StatusOK && status != http.StatusTooManyRequests {
			t.Errorf("%d requests answered %d during reloads", n, status)
		}
	}
	if tr.statuses[http.StatusOK] != 5 {
		t.Errorf("background key got %d × 200 across reloads, want exactly its 5 (statuses %v)", tr.statuses[http.StatusOK], tr.statuses)
	}
	t.Logf("background traffic: %d requests, statuses %v", tr.sent, tr.statuses)

	if resp := c.Get(t, "/", "X-Key", "t"); resp.Status != http.StatusOK || resp.Body != "v3" {
		t.Fatalf("after reloads: status %d body %q, want 200 v3", resp.Status, resp.Body)
	}
	c.expectStatuses(t, "/", []int{http.StatusOK, http.StatusTooManyRequests}, "X-Key", "t")
}

// A limit changed by a reload applies to the counters already there.
func TestReloadedLimitAppliesToExistingCounters(t *testing.T) {
	t.Parallel()
	c := Start(t, reloadSite(5, "before"))
	c.expectStatuses(t, "/", repeat(http.StatusOK, 3), "X-Key", "u")
	c.Reload(t, reloadSite(4, "after"))
	c.expectStatuses(t, "/", []int{http.StatusOK, http.StatusTooManyRequests}, "X-Key", "u")
	c.expectStatuses(t, "/", repeat(http.StatusOK, 4, http.StatusTooManyRequests), "X-Key", "fresh")
}

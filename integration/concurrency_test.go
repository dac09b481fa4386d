package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// slowBackend answers /fast at once and holds each other request until it is
// given a token, the client goes away or the test ends.
type slowBackend struct {
	*httptest.Server
	arrived chan struct{}
	aborted chan struct{}
	tokens  chan struct{}
	done    chan struct{}
}

func newSlowBackend(t *testing.T) *slowBackend {
	b := &slowBackend{
		arrived: make(chan struct{}, 64),
		aborted: make(chan struct{}, 64),
		tokens:  make(chan struct{}, 64),
		done:    make(chan struct{}),
	}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			w.Write([]byte("fast"))
			return
		}
		b.arrived <- struct{}{}
		select {
		case <-b.tokens:
			w.Write([]byte("slow"))
		case <-r.Context().Done():
			b.aborted <- struct{}{}
		case <-b.done:
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *slowBackend) addr() string { return strings.TrimPrefix(b.URL, "http://") }

// waitN receives n signals from ch, failing after a timeout.
func waitN(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for i := range n {
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("only %d of %d %s within 5s", i, n, what)
		}
	}
}

type result struct {
	resp Response
	err  error
}

// inFlight sends GET /slow in the background under ctx.
func inFlight(ctx context.Context, c *Caddy) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := c.Do(ctx, "/slow")
		ch <- result{resp, err}
	}()
	return ch
}

func expectServed(t *testing.T, ch <-chan result) {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil || r.resp.Status != http.StatusOK || r.resp.Body != "slow" {
			t.Fatalf("in-flight request: status %d body %q err %v, want 200 slow", r.resp.Status, r.resp.Body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request not answered within 5s of its release")
	}
}

// The concurrency algorithm limits requests in flight: with two held by the
// backend the third is refused, and a slot frees when a request completes or
// when its client goes away, exactly once.
func TestConcurrencyLimitsRequestsInFlight(t *testing.T) {
	t.Parallel()
	backend := newSlowBackend(t)
	c := Start(t, Config{Site: `
rate_limit {
	zone c {
		key static
		algorithm concurrency
		limit 2
	}
}
reverse_proxy ` + backend.addr()})
	t.Cleanup(func() { close(backend.done) })

	// Two in flight: the third is refused at once.
	a, b := inFlight(context.Background(), c), inFlight(context.Background(), c)
	waitN(t, backend.arrived, 2, "requests at the backend")
	c.expectStatuses(t, "/fast", []int{http.StatusTooManyRequests})

	// Completing them frees both slots.
	backend.tokens <- struct{}{}
	backend.tokens <- struct{}{}
	expectServed(t, a)
	expectServed(t, b)
	c.expectStatuses(t, "/fast", repeat(http.StatusOK, 3))

	// A client that goes away frees its slot too.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	aborting, held := inFlight(ctx, c), inFlight(context.Background(), c)
	waitN(t, backend.arrived, 2, "requests at the backend")
	c.expectStatuses(t, "/fast", []int{http.StatusTooManyRequests})
	cancel()
	if r := <-aborting; r.err == nil {
		t.Fatalf("cancelled request completed: status %d", r.resp.Status)
	}
	waitN(t, backend.aborted, 1, "aborts seen by the backend")
	c.pollStatus(t, "/fast", http.StatusOK, 5*time.Second)

	// ...exactly once: with the held request and one new one in flight,
	// the limit of 2 is reached again.
	third := inFlight(context.Background(), c)
	waitN(t, backend.arrived, 1, "requests at the backend")
	c.expectStatuses(t, "/fast", []int{http.StatusTooManyRequests})
	backend.tokens <- struct{}{}
	backend.tokens <- struct{}{}
	expectServed(t, held)
	expectServed(t, third)
	c.expectStatuses(t, "/fast", repeat(http.StatusOK, 2))
}

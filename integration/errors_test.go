package integration

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"testing"
)

const oneEventSite = `
rate_limit {
	zone z {
		key static
		events 1
		window 10s
	}
}
respond "ok"`

// exhaust sends the one allowed request and returns the refused one.
func exhaust(t *testing.T, c *Caddy) Response {
	t.Helper()
	c.expectStatuses(t, "/", []int{http.StatusOK})
	resp := c.Get(t, "/")
	if resp.Status != http.StatusTooManyRequests {
		t.Fatalf("second request: status %d, want 429 (body %q)", resp.Status, resp.Body)
	}
	return resp
}

// Without error routes, a refusal is an RFC 9457 problem document.
func TestDeniedBodyIsProblemJSON(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: oneEventSite})
	resp := exhaust(t, c)
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", resp.Header.Get("Content-Type"))
	}
	var problem map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &problem); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, resp.Body)
	}
	if status, _ := problem["status"].(float64); status != 429 {
		t.Errorf(`problem "status" = %v, want 429; body %s`, problem["status"], resp.Body)
	}
	if !strings.Contains(resp.Body, `"status":429`) {
		t.Errorf(`body lacks "status":429: %s`, resp.Body)
	}
	checkRetryAfter(t, resp.Header, 1, 10)
}

// A refusal is a caddyhttp error, so handle_errors restyles it, and the
// error's status code is the one the error route sees.
func TestHandleErrorsRestylesRefusal(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: oneEventSite + `
handle_errors {
	respond "custom {err.status_code}"
}`})
	resp := exhaust(t, c)
	if resp.Body != "custom 429" {
		t.Errorf("body = %q, want %q", resp.Body, "custom 429")
	}
}

// Error routes keep the rate-limit response headers and see the
// http.rate_limit.* placeholders of the refused request.
func TestHandleErrorsKeepsHeadersAndPlaceholders(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: oneEventSite + `
handle_errors 429 {
	respond "zone={http.rate_limit.zone} exceeded={http.rate_limit.exceeded} retry={http.rate_limit.retry_after}" 429
}`})
	resp := exhaust(t, c)
	if !strings.HasPrefix(resp.Body, "zone=z exceeded=true retry=") || strings.HasSuffix(resp.Body, "retry=") {
		t.Errorf("body = %q, want zone=z exceeded=true retry=<value>", resp.Body)
	}
	checkRetryAfter(t, resp.Header, 1, 10)
	if rl := sfMember(t, resp.Header, "RateLimit", "z"); rl.param(t, "r") != 0 {
		t.Errorf("RateLimit %q on the restyled refusal: want r=0", resp.Header.Values("RateLimit"))
	}
}

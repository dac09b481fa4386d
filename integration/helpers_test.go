package integration

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sfItem is one member of a structured-field list such as
// `"api";r=2;t=5`: a name and its parameters.
type sfItem struct {
	Name   string
	Params map[string]string
}

// parseSFList parses a structured-field list loosely: members separated by
// commas, each a (possibly quoted) name followed by ;key=value parameters.
// Repeated header lines are joined first.
func parseSFList(values []string) []sfItem {
	var items []sfItem
	for _, v := range values {
		for _, member := range strings.Split(v, ",") {
			parts := strings.Split(strings.TrimSpace(member), ";")
			if parts[0] == "" {
				continue
			}
			it := sfItem{Name: strings.Trim(strings.TrimSpace(parts[0]), `"`), Params: map[string]string{}}
			for _, p := range parts[1:] {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				it.Params[k] = strings.Trim(v, `"`)
			}
			items = append(items, it)
		}
	}
	return items
}

// sfMember returns the member named zone of header field name, failing the
// test when there is none.
func sfMember(t testing.TB, h http.Header, field, zone string) sfItem {
	t.Helper()
	for _, it := range parseSFList(h.Values(field)) {
		if it.Name == zone {
			return it
		}
	}
	t.Fatalf("%s: no member for zone %q in %q", field, zone, h.Values(field))
	return sfItem{}
}

// param returns the integer parameter key of it.
func (it sfItem) param(t testing.TB, key string) int {
	t.Helper()
	v, ok := it.Params[key]
	if !ok {
		t.Fatalf("member %q has no parameter %q: %v", it.Name, key, it.Params)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("member %q parameter %s=%q is not an integer", it.Name, key, v)
	}
	return n
}

// statuses sends n GETs and returns their status codes in order.
func (c *Caddy) statuses(t testing.TB, n int, path string, headers ...string) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		out[i] = c.Get(t, path, headers...).Status
	}
	return out
}

// expectStatuses fails unless the responses to len(want) GETs have exactly
// the wanted status codes.
func (c *Caddy) expectStatuses(t testing.TB, path string, want []int, headers ...string) {
	t.Helper()
	got := c.statuses(t, len(want), path, headers...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GET %s %v: statuses %v, want %v", path, headers, got, want)
	}
}

// repeat returns n copies of code followed by the codes in then.
func repeat(code, n int, then ...int) []int {
	out := make([]int, 0, n+len(then))
	for range n {
		out = append(out, code)
	}
	return append(out, then...)
}

// pollStatus sends GET path every interval until it answers want, and
// returns how long that took. It fails the test after timeout.
func (c *Caddy) pollStatus(t testing.TB, path string, want int, timeout time.Duration, headers ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var last Response
	for time.Since(start) < timeout {
		last = c.Get(t, path, headers...)
		if last.Status == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: no %d within %s; last status %d body %q", path, want, timeout, last.Status, last.Body)
	return 0
}

// rateLimitHeaders lists every rate-limit response header a mode may set.
var rateLimitHeaders = []string{
	"RateLimit", "RateLimit-Policy",
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
}

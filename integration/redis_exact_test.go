package integration

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The exactness run: demand far above the limit, from many clients on
// three instances that share one Redis.
const (
	exactLimit   = 50
	exactWindow  = time.Second
	exactClients = 210 // 70 per instance
	exactRun     = 3500 * time.Millisecond
	exactMaxReqs = 5000 // per client
)

// exactMin is the fewest admissions a full window may hold: 0.99·L.
var exactMin = int(math.Ceil(0.99 * exactLimit))

// exactSite limits every request but /warm with one zone on one key.
func exactSite(alg, zone string, limit int, window time.Duration) string {
	return fmt.Sprintf(`handle /warm {
	respond "warm"
}
handle {
	rate_limit {
		zone %s {
			key static
			algorithm %s
			limit %d %s
		}
		headers ietf
	}
	respond "ok"
}`, zone, alg, limit, window)
}

// Three Caddy instances sharing one Redis never admit more than the limit
// on one key, however many clients hammer it, and admit (almost) all of it
// when demand exceeds it, though their clocks disagree by seconds.
func TestRedisExactAcrossThreeInstances(t *testing.T) {
	srv := startRedis(t, 0)
	for _, alg := range []string{"fixed_window", "sliding_log", "gcra", "token_bucket"} {
		t.Run(alg, func(t *testing.T) {
			zone := "shared_" + alg
			// A generous timeout: a store error fails open, which would
			// admit beyond the limit and is not what this test measures.
			insts := startSkewedInstances(t, Config{
				Global: redisStore(srv, "exact-"+alg+":", 5*time.Second),
				Site:   exactSite(alg, zone, exactLimit, exactWindow),
			})
			checkExact(t, insts, alg, zone)
		})
	}
}

// checkExact runs the exactness load on insts, one key in zone, and checks
// that alg admitted exactly its limit.
func checkExact(t *testing.T, insts []*Caddy, alg, zone string) {
	t.Helper()
	res := runLoad(insts, load{clients: exactClients, duration: exactRun,
		maxPerClient: exactMaxReqs, path: "/", zone: zone, align: exactWindow}, nil)
	checkClean(t, res)
	switch alg {
	case "fixed_window":
		checkFixedWindow(t, res)
	case "sliding_log":
		checkSlidingLog(t, res)
	default:
		checkRate(t, res, exactLimit)
	}
}

// checkClean fails on transport errors and on any answer but 200 or 429,
// and logs what the run did.
func checkClean(t *testing.T, res loadResult) {
	t.Helper()
	counts := statusCounts(res.samples)
	lat := make([]time.Duration, len(res.samples))
	perInst := map[int]int{}
	for i, s := range res.samples {
		lat[i] = s.recv.Sub(s.sent)
		if s.status == http.StatusOK {
			perInst[s.inst]++
		}
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		t.Fatalf("no request completed (%d errors; first: %v)", res.errs, res.firstErr)
	}
	t.Logf("%d requests in %s (%.0f/s), statuses %v, admitted per instance %v, latency p50 %s p99 %s max %s",
		len(res.samples), res.stop.Sub(res.start).Round(time.Millisecond),
		float64(len(res.samples))/res.stop.Sub(res.start).Seconds(), counts, perInst,
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	if res.errs > 0 {
		t.Errorf("%d transport errors; first: %v", res.errs, res.firstErr)
	}
	for status, n := range counts {
		if status != http.StatusOK && status != http.StatusTooManyRequests {
			t.Errorf("%d requests answered %d, want only 200 and 429", n, status)
		}
	}
	if counts[http.StatusTooManyRequests] < 10*counts[http.StatusOK] {
		t.Errorf("demand was not far above the limit: %v", counts)
	}
}

// windowOf returns the index of the aligned window holding tm. Fixed windows
// are aligned to the Unix epoch in Redis TIME, the machine's clock.
func windowOf(tm time.Time, w time.Duration) int64 {
	return tm.UnixMicro() / w.Microseconds()
}

// checkFixedWindow: every aligned window admits at most L, and a window the
// run covers entirely admits at least 0.99·L.
//
// A decision lies between a request's send and receive times. A request
// whose whole round trip is inside window k was certainly decided in k, so
// that count must be at most L whatever the latency. For the rest, the
// receive time names the window: the run starts just after a window starts
// and demand is this high, so each window's limit is gone within a round
// trip or two of its start, and no admission happens late in a window to be
// received in the next. The admitted requests of one window must also
// report distinct remaining counts (L-1 down to 0), or two of them took the
// same slot.
func checkFixedWindow(t *testing.T, res loadResult) {
	t.Helper()
	w := exactWindow
	byRecv, certain := map[int64]int{}, map[int64]int{}
	remaining := map[int64]map[int]int{}
	adm := admitted(res.samples)
	for _, s := range adm {
		k := windowOf(s.recv, w)
		byRecv[k]++
		if windowOf(s.sent, w) == k {
			certain[k]++
		}
		if remaining[k] == nil {
			remaining[k] = map[int]int{}
		}
		remaining[k][s.remaining]++
	}
	first, last := windowOf(res.start, w), windowOf(adm[len(adm)-1].recv, w)
	var report []string
	for k := first; k <= last; k++ {
		start := time.UnixMicro(k * w.Microseconds())
		full := !start.Before(res.start) && !start.Add(w).After(res.stop)
		report = append(report, fmt.Sprintf("%d (%d certain)%s", byRecv[k], certain[k], map[bool]string{true: " full"}[full]))
		if certain[k] > exactLimit {
			t.Errorf("window at %s: %d admissions certainly decided in it, limit %d", start.Format("15:04:05.000"), certain[k], exactLimit)
		}
		if byRecv[k] > exactLimit {
			t.Errorf("window at %s: %d admissions received in it, limit %d", start.Format("15:04:05.000"), byRecv[k], exactLimit)
		}
		if full && byRecv[k] < exactMin {
			t.Errorf("full window at %s: only %d admissions, want at least %d", start.Format("15:04:05.000"), byRecv[k], exactMin)
		}
		for r, n := range remaining[k] {
			if n > 1 {
				t.Errorf("window at %s: %d admissions reported remaining=%d", start.Format("15:04:05.000"), n, r)
			}
		}
	}
	t.Logf("fixed_window: admitted per aligned %s window: %s", w, strings.Join(report, ", "))
	if spanned := int(last - first + 1); len(adm) > exactLimit*spanned {
		t.Errorf("%d admitted over %d windows, limit %d each", len(adm), spanned, exactLimit)
	}
}

// checkSlidingLog: no span of width W holds more than L decisions, and each
// window of width W the run covers holds at least 0.99·L.
//
// A decision lies between its request's send and receive times, so the
// requests sent at or after x and received before x + W were all decided
// within one span of width W: at most L of them may be admitted, whatever
// the latency. That is checked for x at every admitted request's send time.
// The per-window counts are taken on windows centred on the waves of
// admissions (the first one at the start of the run, then one every W as
// its entries expire), so that a window boundary never cuts a wave.
func checkSlidingLog(t *testing.T, res loadResult) {
	t.Helper()
	w := exactWindow
	adm := admitted(res.samples)
	most, span := 0, w-time.Millisecond
	for _, a := range adm {
		n := 0
		for _, b := range adm {
			if !b.sent.Before(a.sent) && b.recv.Before(a.sent.Add(span)) {
				n++
			}
		}
		most = max(most, n)
	}
	t.Logf("sliding_log: at most %d admissions certainly decided within %s of each other", most, span)
	if most > exactLimit {
		t.Errorf("%d admissions decided within %s, limit %d per %s", most, span, exactLimit, w)
	}

	a0 := adm[0].recv.Add(-w / 2)
	var report []string
	for k := 0; ; k++ {
		from, to := a0.Add(time.Duration(k)*w), a0.Add(time.Duration(k+1)*w)
		if !from.Before(adm[len(adm)-1].recv) {
			break
		}
		n := 0
		for _, s := range adm {
			if !s.recv.Before(from) && s.recv.Before(to) {
				n++
			}
		}
		full := !to.After(res.stop)
		report = append(report, fmt.Sprintf("%d%s", n, map[bool]string{true: " full"}[full]))
		if full && n < exactMin {
			t.Errorf("window %d (%s from the start): only %d admissions, want at least %d", k, from.Sub(res.start).Round(time.Millisecond), n, exactMin)
		}
	}
	t.Logf("sliding_log: admitted per %s window centred on the waves: %s", w, strings.Join(report, ", "))
	run := adm[len(adm)-1].recv.Sub(res.start) + time.Microsecond
	if bound := exactLimit * int(math.Ceil(float64(run)/float64(w))); len(adm) > bound {
		t.Errorf("%d admitted within %s, at most %d allowed", len(adm), run, bound)
	}
}

// checkRate covers gcra and token_bucket with the default burst (= L): from
// an idle key, no span of length D admits more than burst + D·L/W, and with
// demand always present the key admits its burst and then L per W.
func checkRate(t *testing.T, res loadResult, burst int) {
	t.Helper()
	w := exactWindow
	adm := admitted(res.samples)
	perWindow := map[int64]int{}
	for _, s := range adm {
		perWindow[windowOf(s.recv, w)]++
	}
	var report []string
	for k := windowOf(res.start, w); k <= windowOf(adm[len(adm)-1].recv, w); k++ {
		report = append(report, fmt.Sprint(perWindow[k]))
	}
	t.Logf("admitted per aligned %s window: %s", w, strings.Join(report, ", "))

	span := adm[len(adm)-1].recv.Sub(res.start)
	most := burst + int(math.Ceil(float64(exactLimit)*span.Seconds()/w.Seconds()))
	least := int(0.99 * (float64(burst) + float64(exactLimit)*res.stop.Sub(adm[0].recv).Seconds()/w.Seconds()))
	t.Logf("admitted %d in %s: want between %d and %d", len(adm), span.Round(time.Millisecond), least, most)
	if len(adm) > most {
		t.Errorf("admitted %d within %s, at most burst %d + %d per %s = %d allowed", len(adm), span, burst, exactLimit, w, most)
	}
	if len(adm) < least {
		t.Errorf("admitted only %d with demand always above the limit, want at least %d", len(adm), least)
	}
}

// Every instance decides the same way as a single one: the decisions come
// from Redis, with Redis's clock. A request sequence spread over three
// instances gets the same statuses and remaining counts as the same
// sequence sent to one instance.
func TestRedisInstancesDecideAsOne(t *testing.T) {
	srv := startRedis(t, 0)
	const limit = 10
	for _, alg := range []string{"fixed_window", "sliding_log", "gcra", "token_bucket"} {
		t.Run(alg, func(t *testing.T) {
			zone := "one_" + alg
			site := exactSite(alg, zone, limit, time.Hour)
			one := startInstances(t, 1, Config{Global: redisStore(srv, "one-"+alg+":", 5*time.Second), Site: site})
			three := startInstances(t, 3, Config{Global: redisStore(srv, "three-"+alg+":", 5*time.Second), Site: site})
			alone, shared := decisions(t, one, limit+3), decisions(t, three, limit+3)
			if !slices.Equal(alone, shared) {
				t.Fatalf("three instances decided %v, one instance %v", shared, alone)
			}
			want := make([]string, 0, limit+3)
			for i := range limit {
				want = append(want, fmt.Sprintf("200 r=%d", limit-1-i))
			}
			for range 3 {
				want = append(want, "429 r=0")
			}
			if !slices.Equal(alone, want) {
				t.Fatalf("decided %v, want %v", alone, want)
			}
		})
	}
}

// decisions sends n requests round-robin over insts and returns each
// status with its remaining count.
func decisions(t *testing.T, insts []*Caddy, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		resp := insts[i%len(insts)].Get(t, "/")
		out[i] = fmt.Sprintf("%d r=%d", resp.Status, remainingOf(resp.Header, zoneOf(resp.Header)))
	}
	return out
}

// zoneOf returns the name of the first RateLimit member.
func zoneOf(h http.Header) string {
	if items := parseSFList(h.Values("RateLimit")); len(items) > 0 {
		return items[0].Name
	}
	return ""
}

package integration

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// sample is one request of a load run. Its times are the client's wall
// clock, which is also the clock Redis TIME reads: every process of these
// tests runs on one machine. A decision made by Redis for the request lies
// between sent and recv.
type sample struct {
	sent, recv time.Time
	status     int
	remaining  int // r= of the zone's RateLimit member; -1 when absent
	inst       int // index of the instance that answered
}

// load describes a bounded run of concurrent keep-alive clients.
type load struct {
	clients      int           // goroutines, spread round-robin over the instances
	duration     time.Duration // how long they send
	maxPerClient int           // a bound on each client's requests
	path         string        // the path every request asks for
	headers      []string      // name/value pairs sent with every request
	zone         string        // the zone whose RateLimit member is parsed
	// align, when set, delays the start to a tenth of align past the next
	// multiple of align since the Unix epoch: the start of an aligned
	// window.
	align time.Duration
}

// loadResult is everything a load run saw.
type loadResult struct {
	samples     []sample
	errs        int
	firstErr    error
	start, stop time.Time // when sending began and when it stopped
}

// runLoad opens one keep-alive connection per client (with a request to
// /warm, which the site must answer without rate limiting), then lets every
// client send at once until l.duration has passed, maxPerClient requests
// were sent, or stop is closed.
func runLoad(insts []*Caddy, l load, stop <-chan struct{}) loadResult {
	var (
		mu      sync.Mutex
		res     loadResult
		ready   sync.WaitGroup
		done    sync.WaitGroup
		startCh = make(chan struct{})
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		res.errs++
		if res.firstErr == nil {
			res.firstErr = err
		}
	}
	var deadline time.Time
	for i := range l.clients {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			inst := i % len(insts)
			base := insts[inst].URL
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
			defer tr.CloseIdleConnections()
			if _, _, err := send(client, base+"/warm", nil, ""); err != nil {
				fail(fmt.Errorf("warming up: %w", err))
			}
			ready.Done()
			<-startCh
			own := make([]sample, 0, 256)
			for n := 0; n < l.maxPerClient && time.Now().Before(deadline); n++ {
				select {
				case <-stop:
					n = l.maxPerClient
					continue
				default:
				}
				s := sample{sent: time.Now(), inst: inst}
				status, hdr, err := send(client, base+l.path, l.headers, l.zone)
				s.recv = time.Now()
				if err != nil {
					fail(err)
					continue
				}
				s.status, s.remaining = status, remainingOf(hdr, l.zone)
				own = append(own, s)
			}
			mu.Lock()
			res.samples = append(res.samples, own...)
			mu.Unlock()
		}()
	}
	ready.Wait()
	if l.align > 0 {
		a := l.align.Microseconds()
		next := (time.Now().UnixMicro()/a + 1) * a
		time.Sleep(time.Until(time.UnixMicro(next).Add(l.align / 10)))
	}
	res.start = time.Now()
	deadline = res.start.Add(l.duration)
	close(startCh)
	done.Wait()
	res.stop = time.Now()
	if res.stop.After(deadline) {
		res.stop = deadline
	}
	sort.Slice(res.samples, func(i, j int) bool { return res.samples[i].recv.Before(res.samples[j].recv) })
	return res
}

// send GETs url with headers and reads the whole body, so that the
// connection is reused.
func send(client *http.Client, url string, headers []string, zone string) (int, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header, err
}

// remainingOf returns the r= parameter of zone's RateLimit member, or -1.
func remainingOf(h http.Header, zone string) int {
	for _, it := range parseSFList(h.Values("RateLimit")) {
		if it.Name == zone {
			if n, err := strconv.Atoi(it.Params["r"]); err == nil {
				return n
			}
		}
	}
	return -1
}

// statusCounts tallies the samples by status.
func statusCounts(samples []sample) map[int]int {
	out := map[int]int{}
	for _, s := range samples {
		out[s.status]++
	}
	return out
}

// admitted returns the samples answered 200, in the order they arrived.
func admitted(samples []sample) []sample {
	var out []sample
	for _, s := range samples {
		if s.status == http.StatusOK {
			out = append(out, s)
		}
	}
	return out
}

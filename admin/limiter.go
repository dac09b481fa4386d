package admin

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limitOptions configures the admin client rate limit, which guards the
// endpoints that issue secrets or list keys (POST /keys, POST
// /keys/{id}/rotate, GET /keys).
type limitOptions struct {
	// Limit is the sustained rate per client. Default: 30 per minute.
	Limit rate.Limit
	// Burst is how many requests a client may make at once. Default: 10.
	Burst int
	// MaxClients bounds how many clients are tracked; past it the client
	// seen longest ago is forgotten. Default: 1024.
	MaxClients int
}

func (o limitOptions) withDefaults() limitOptions {
	if o.Limit <= 0 {
		o.Limit = rate.Every(2 * time.Second)
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 1024
	}
	return o
}

// clientLimiter is a token bucket per admin client in a bounded map.
type clientLimiter struct {
	opts    limitOptions
	mu      sync.Mutex
	clients map[string]*clientBucket
}

type clientBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newClientLimiter(opts limitOptions) *clientLimiter {
	opts = opts.withDefaults()
	return &clientLimiter{opts: opts, clients: make(map[string]*clientBucket)}
}

// allow takes one token from client's bucket at now. When the bucket is
// empty it takes nothing and says how long until a token is there.
func (l *clientLimiter) allow(client string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[client]
	if b == nil {
		if len(l.clients) >= l.opts.MaxClients {
			l.evict(now)
		}
		b = &clientBucket{lim: rate.NewLimiter(l.opts.Limit, l.opts.Burst)}
		l.clients[client] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Duration(math.MaxInt64)
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict forgets every client whose bucket has refilled (forgetting it
// changes nothing), and if none has, the client seen longest ago.
func (l *clientLimiter) evict(now time.Time) {
	refill := time.Duration(float64(l.opts.Burst) / float64(l.opts.Limit) * float64(time.Second))
	var oldest string
	var oldestSeen time.Time
	for id, b := range l.clients {
		if now.Sub(b.seen) >= refill {
			delete(l.clients, id)
			continue
		}
		if oldest == "" || b.seen.Before(oldestSeen) {
			oldest, oldestSeen = id, b.seen
		}
	}
	if len(l.clients) >= l.opts.MaxClients && oldest != "" {
		delete(l.clients, oldest)
	}
}

// clientID identifies an admin client: its TLS client certificate's
// identity when it presented one, else its IP address.
func clientID(r *http.Request) string {
	if id := tlsIdentity(r); id != "" {
		return "tls:" + id
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// retrySeconds rounds d up to whole seconds, between 1 and a day.
func retrySeconds(d time.Duration) int {
	if d >= 24*time.Hour {
		return 86400
	}
	return max(1, int(math.Ceil(d.Seconds())))
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"
)

// The dashboard proxy's defaults and limits.
const (
	// defaultDashboardListen is where the proxy listens without --listen.
	defaultDashboardListen = "127.0.0.1:2020"
	// dashboardPage is the dashboard's path, below the proxy's origin.
	dashboardPage = apiBase + "/ui/"
	// dashboardShutdown is how long requests in flight get to finish once
	// the proxy is told to stop.
	dashboardShutdown = 5 * time.Second
)

// dashboardCommand is `rate-limit dashboard`: the dashboard page, served
// through a loopback proxy to the admin endpoint so that a browser can open
// it by its address (see dashboardProxy).
func dashboardCommand(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "dashboard [--listen <loopback addr>]",
		Short: "Serves the live dashboard on a loopback address, through a proxy to the admin endpoint",
		Long: `
Serves the live dashboard on a loopback address until interrupted, through a
small proxy to the admin endpoint.

Caddy's admin endpoint refuses a browser request that names no origin, which
is what typing the dashboard's address into a browser sends. The proxy
accepts such a request, and the dashboard's own same-origin requests, and
forwards them as same-origin requests of the admin endpoint. It refuses
requests from any other origin or site, and forwards nothing outside
/rate_limit/v1/.
`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&listen, "listen", defaultDashboardListen, "Loopback address to serve the dashboard on (host:port)")
	cmd.RunE = g.action(func(e *env, _ []string) error { return dashboard(e, listen) })
	return cmd
}

// dashboard serves the proxy on listen until the command's context ends or
// the process gets SIGINT or SIGTERM.
func dashboard(e *env, listen string) error {
	target, err := parseAdminTarget(e.client.addr)
	if err != nil {
		return err
	}
	host, err := loopbackHost(listen)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	bound, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !bound.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("--listen %s: %s is not a loopback address", listen, ln.Addr())
	}
	port := strconv.Itoa(bound.Port)
	self := net.JoinHostPort(host, port)

	ctx := e.cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	stderr := &lockedWriter{w: e.cmd.ErrOrStderr()}
	p := newDashboardProxy(target, stderr)
	defer p.transport.CloseIdleConnections()
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fmt.Fprintf(e.out(), "Dashboard: http://%s%s\n", self, dashboardPage)
	fmt.Fprintf(stderr, "Proxying to the admin endpoint at %s; press Ctrl+C to stop.\n", e.client.addr)
	select {
	case err := <-served:
		return fmt.Errorf("serving the dashboard on %s: %w", self, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), dashboardShutdown)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	return nil
}

// loopbackHost returns the host of listen, a host:port, if it names the
// loopback interface only: localhost or a loopback IP.
func loopbackHost(listen string) (string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %s: want a loopback host:port such as %s: %w", listen, defaultDashboardListen, err)
	}
	if !isLoopback(host) {
		return "", fmt.Errorf("--listen %s: the dashboard proxy serves loopback addresses only "+
			"(localhost, 127.0.0.1 or ::1): it lets whoever reaches it use the admin API", listen)
	}
	return host, nil
}

// isLoopback reports whether host is localhost or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// adminTarget is where the proxy sends requests: the admin endpoint.
type adminTarget struct {
	// network and address are what to dial.
	network, address string
	// host is the Host header to send: the admin address for TCP, a
	// placeholder for a unix socket (Caddy checks none there).
	host string
	// unix is set for a unix socket, where Caddy allows no browser origin
	// at all (see dashboardProxy).
	unix bool
}

// origin is the admin endpoint's own origin.
func (t adminTarget) origin() string { return "http://" + t.host }

// parseAdminTarget reads an admin address in the forms caddycmd takes:
// host:port (TCP) or unix//path, with a socket's permission bits if any.
func parseAdminTarget(addr string) (adminTarget, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return adminTarget{}, fmt.Errorf("parsing the admin address %s: %w", addr, err)
	}
	switch na.Network {
	case "tcp", "tcp4", "tcp6":
		if na.PortRangeSize() != 1 {
			return adminTarget{}, fmt.Errorf("admin address %s: want one port", addr)
		}
		hostport := na.JoinHostPort(0)
		return adminTarget{network: na.Network, address: hostport, host: hostport}, nil
	case "unix":
		socket, _, _ := strings.Cut(na.Host, "|") // the permission bits
		return adminTarget{network: "unix", address: socket, host: "127.0.0.1", unix: true}, nil
	}
	return adminTarget{}, fmt.Errorf("admin address %s: the dashboard proxy reaches the admin endpoint over TCP "+
		"or a unix socket only, not %s", addr, na.Network)
}

// dashboardProxy forwards the dashboard's requests to the admin endpoint.
//
// Caddy's admin endpoint checks the Origin (else the Referer) of every
// request that carries an Origin or a Sec-Fetch-Mode header, which browsers
// always send, and a typed address carries neither Origin nor Referer. The
// proxy therefore makes the browser's checks itself, for its own origin,
// and sends what it accepts as a same-origin request of the admin endpoint.
// It serves only paths under /rate_limit/v1/ (404 otherwise), and refuses
// (403):
//   - a Host that is not a loopback name (localhost, 127.0.0.1, [::1]),
//     which is how a DNS rebinding attack would arrive; any port, so that
//     the proxy also works through a forwarded port (ssh -L);
//   - an Origin, or else a Referer, that is not the proxy's own origin;
//   - a Sec-Fetch-Site other than same-origin or none (a typed address).
//
// It leaves Caddy's other browser checks to Caddy: a no-cors request or a
// WebSocket upgrade is forwarded as is, and Caddy refuses it. A unix socket
// admin endpoint allows no browser origin at all, so there the proxy sends
// what the caddy command itself sends (no Origin, no Sec-Fetch-Mode) and
// refuses no-cors requests itself, as Caddy would.
type dashboardProxy struct {
	target    adminTarget
	proxy     *httputil.ReverseProxy
	transport *http.Transport
	// errOut is where failures to reach the admin endpoint are reported.
	errOut io.Writer
}

// proxyOriginKey is the context key of the proxy origin a request came to.
type proxyOriginKey struct{}

func newDashboardProxy(target adminTarget, errOut io.Writer) *dashboardProxy {
	p := &dashboardProxy{target: target, errOut: errOut}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	p.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, target.network, target.address)
		},
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       time.Minute,
		MaxIdleConnsPerHost:   8,
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.proxyError,
	}
	return p
}

func (p *dashboardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !underAPI(r.URL.Path) {
		writeProxyError(w, http.StatusNotFound, "not found: the dashboard proxy serves "+apiBase+"/ only")
		return
	}
	if err := p.checkBrowser(r); err != nil {
		writeProxyError(w, http.StatusForbidden, err.Error())
		return
	}
	if p.target.unix && strings.Contains(r.Header.Get("Sec-Fetch-Mode"), "no-cors") {
		// The check Caddy makes, which the header's removal would skip.
		writeProxyError(w, http.StatusBadRequest, "Disabling same-origin restrictions is not allowed.")
		return
	}
	ctx := context.WithValue(r.Context(), proxyOriginKey{}, "http://"+r.Host)
	p.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// underAPI reports whether p is a clean path below apiBase: no dot
// segments, no empty segments.
func underAPI(p string) bool {
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p && strings.HasPrefix(p, apiBase+"/")
}

// checkBrowser makes the browser checks of the proxy's own origin, or says
// why r is refused.
func (p *dashboardProxy) checkBrowser(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host // a browser leaves the default port out
	}
	if !isLoopback(strings.Trim(host, "[]")) {
		return fmt.Errorf("host not allowed: %s", r.Host)
	}
	self := "http://" + r.Host
	if origin, ok := r.Header["Origin"]; ok {
		if len(origin) != 1 || !strings.EqualFold(origin[0], self) {
			return fmt.Errorf("client is not allowed to access from origin '%s'", strings.Join(origin, ", "))
		}
	} else if ref := r.Header.Get("Referer"); ref != "" && !sameOrigin(ref, self) {
		return fmt.Errorf("client is not allowed to access from referer '%s'", ref)
	}
	if site, ok := r.Header["Sec-Fetch-Site"]; ok {
		if len(site) != 1 || site[0] != "same-origin" && site[0] != "none" {
			return fmt.Errorf("client is not allowed to access from a %s request", strings.Join(site, ", "))
		}
	}
	return nil
}

// sameOrigin reports whether the URL ref has the origin self.
func sameOrigin(ref, self string) bool {
	u, err := url.Parse(ref)
	return err == nil && strings.EqualFold(u.Scheme+"://"+u.Host, self)
}

// rewrite sends an accepted request to the admin endpoint as a same-origin
// request there: Host, Origin and Referer name the admin endpoint. Nothing
// else changes, apart from the hop-by-hop and forwarding headers
// ReverseProxy always drops.
func (p *dashboardProxy) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = p.target.host
	pr.Out.Host = p.target.host
	if p.target.unix {
		pr.Out.Header.Del("Origin")
		pr.Out.Header.Del("Sec-Fetch-Mode")
		return
	}
	origin := p.target.origin()
	pr.Out.Header.Set("Origin", origin)
	referer := origin + pr.In.URL.Path
	if u, err := url.Parse(pr.In.Header.Get("Referer")); err == nil && u.Path != "" {
		// checkBrowser let only a same-origin Referer through.
		referer = origin + u.RequestURI()
	}
	pr.Out.Header.Set("Referer", referer)
}

// modifyResponse points a redirect to the admin endpoint's origin back at
// the proxy. A relative Location already resolves against the proxy.
func (p *dashboardProxy) modifyResponse(resp *http.Response) error {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, p.target.host) {
		return nil
	}
	self, _ := resp.Request.Context().Value(proxyOriginKey{}).(string)
	if self == "" {
		return nil
	}
	resp.Header.Set("Location", self+u.RequestURI())
	return nil
}

// proxyError answers 502 when the admin endpoint cannot be reached, and
// says so on the error output.
func (p *dashboardProxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		// The browser went away; there is no one to answer.
		return
	}
	msg := fmt.Sprintf("reaching the admin endpoint at %s (is Caddy running there?): %v", p.target.address, err)
	fmt.Fprintf(p.errOut, "error: %s %s: %s\n", r.Method, r.URL.Path, msg)
	writeProxyError(w, http.StatusBadGateway, msg)
}

// writeProxyError answers with an error in the form Caddy's admin endpoint
// uses for its own: {"error": "..."}.
func writeProxyError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// lockedWriter serializes writes from concurrent requests.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

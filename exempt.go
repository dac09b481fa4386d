package ratewarden

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Exemption lists requests that skip every zone of a handler.
type Exemption struct {
	// Ranges are client IP addresses or CIDR ranges that are never limited.
	// The client IP is Caddy's {http.vars.client_ip}, which honours the
	// server's trusted_proxies. Example: ["10.0.0.0/8", "127.0.0.1"].
	Ranges []string `json:"ranges,omitempty"`

	// Match exempts requests that match any of these matcher sets. A
	// matcher that fails at run time does not exempt.
	MatcherSetsRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	prefixes []netip.Prefix
	matchers caddyhttp.MatcherSets
}

func (e *Exemption) provision(ctx caddy.Context) error {
	for _, s := range e.Ranges {
		p, err := parsePrefix(s)
		if err != nil {
			return fmt.Errorf("exempt range %q: %w", s, err)
		}
		e.prefixes = append(e.prefixes, p)
	}
	if e.MatcherSetsRaw != nil {
		mods, err := ctx.LoadModule(e, "MatcherSetsRaw")
		if err != nil {
			return fmt.Errorf("loading exempt matchers: %w", err)
		}
		if err := e.matchers.FromInterface(mods); err != nil {
			return fmt.Errorf("loading exempt matchers: %w", err)
		}
	}
	return nil
}

// parsePrefix accepts a CIDR range or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// exempts reports whether r skips rate limiting.
func (e *Exemption) exempts(r *http.Request) bool {
	if e == nil {
		return false
	}
	if len(e.prefixes) > 0 {
		if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
			if addr, err := netip.ParseAddr(ip); err == nil {
				addr = addr.Unmap()
				for _, p := range e.prefixes {
					if p.Contains(addr) {
						return true
					}
				}
			}
		}
	}
	if len(e.matchers) > 0 {
		ok, err := e.matchers.AnyMatchWithError(r)
		return ok && err == nil
	}
	return false
}

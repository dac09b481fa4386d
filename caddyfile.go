package ratewarden

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("rate_limit", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("rate_limit", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterGlobalOption("rate_limit", parseGlobalOption)
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	rl := new(Handler)
	err := rl.UnmarshalCaddyfile(h.Dispenser)
	return rl, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	rate_limit [<matcher>] {
//		zone <name> {
//			match {
//				<matchers...>
//			}
//			match <cel-expression>
//			key         <placeholders>
//			key_expr    <cel-expression>
//			ipv4_prefix <bits>
//			ipv6_prefix <bits>
//			algorithm   sliding_log|gcra|token_bucket|fixed_window|sliding_window|concurrency
//			limit       <events> [<window>]
//			events      <events>
//			window      <duration>
//			burst       <events>
//			cost        <int>|<cel-expression>
//			shadow
//			count_if {
//				status <codes...>
//				header <field> [<value>]
//			}
//			log_key
//		}
//		api_key {
//			header <field>
//			bearer
//			query <param>
//			require
//			failure_limit <n> <window>
//		}
//		exempt <ip-or-cidr...>
//		exempt {
//			<matchers...>
//		}
//		headers ietf|legacy|none...
//		shadow
//		jitter <fraction>
//		store <name>
//		log_level debug|info|warn|error
//		log_key
//		disable_metrics
//		ipv4_prefix <bits>
//		ipv6_prefix <bits>
//		sweep_interval <duration>
//		distributed { ... }   # caddy-ratelimit; ignored with a warning
//		storage <module...>   # caddy-ratelimit; ignored with a warning
//	}
//
// `events` may be written `max_events`. A zone written with `limit` uses the
// gcra algorithm unless it names another; one written with events/window
// uses sliding_log, as caddy-ratelimit does.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	line := d.Line()
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt != "zone" && opt != "exempt" {
			if seen[opt] {
				return d.Errf("%s specified more than once", opt)
			}
			seen[opt] = true
		}
		var err error
		switch opt {
		case "zone":
			err = h.unmarshalZone(d)
		case "exempt":
			err = h.unmarshalExempt(d)
		case "api_key":
			err = h.unmarshalAPIKey(d)
		case "headers":
			h.Headers = d.RemainingArgs()
			if len(h.Headers) == 0 {
				return d.ArgErr()
			}
			if _, err := parseHeaderModes(h.Headers); err != nil {
				return d.Err(err.Error())
			}
		case "shadow":
			h.Shadow, err = flagArg(d)
		case "log_key":
			h.LogKey, err = flagArg(d)
		case "disable_metrics":
			h.DisableMetrics, err = flagArg(d)
		case "jitter":
			var v string
			if v, err = oneArg(d); err == nil {
				h.Jitter, err = strconv.ParseFloat(v, 64)
				if err != nil || h.Jitter < 0 || h.Jitter > 1 {
					return d.Errf("jitter must be a fraction between 0 and 1 (0.2 = 20%%), got %q", v)
				}
			}
		case "store":
			err = h.unmarshalStore(d)
		case "log_level":
			if h.LogLevel, err = oneArg(d); err == nil {
				switch h.LogLevel {
				case "debug", "info", "warn", "error":
				default:
					return d.Errf("log_level must be debug, info, warn or error, got %q", h.LogLevel)
				}
			}
		case "ipv4_prefix":
			h.IPv4Prefix, err = prefixArg(d, 32)
		case "ipv6_prefix":
			h.IPv6Prefix, err = prefixArg(d, 128)
		case "sweep_interval":
			var dur time.Duration
			dur, err = durationArg(d)
			h.SweepInterval = caddy.Duration(dur)
		case "distributed":
			h.Distributed = json.RawMessage(`{}`)
			for n := d.Nesting(); d.NextBlock(n); {
				d.RemainingArgs() // read_interval, write_interval, purge_age: ignored
			}
		case "storage":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.StorageRaw = json.RawMessage(`{"module":` + strconv.Quote(d.Val()) + `}`)
			d.RemainingArgs()
			for n := d.Nesting(); d.NextBlock(n); {
				d.RemainingArgs()
			}
		default:
			return d.Errf("unrecognized rate_limit subdirective %q", opt)
		}
		if err != nil {
			return err
		}
	}
	if len(h.RateLimits) == 0 {
		return caddyfileErrAt(d, line, "rate_limit needs at least one zone")
	}
	return nil
}

// unmarshalExempt parses `exempt <ranges...>` or an `exempt { matchers }`
// block. Both may repeat.
func (h *Handler) unmarshalExempt(d *caddyfile.Dispenser) error {
	if h.Exempt == nil {
		h.Exempt = new(Exemption)
	}
	if d.CountRemainingArgs() > 0 {
		args := d.RemainingArgs()
		for _, a := range args {
			if _, err := parsePrefix(a); err != nil {
				return d.Errf("exempt: %q is not an IP address or CIDR range", a)
			}
		}
		h.Exempt.Ranges = append(h.Exempt.Ranges, args...)
		return nil
	}
	set, err := caddyhttp.ParseCaddyfileNestedMatcherSet(d)
	if err != nil {
		return err
	}
	if len(set) == 0 {
		return d.Err("exempt needs IP ranges or a block of matchers")
	}
	h.Exempt.MatcherSetsRaw = append(h.Exempt.MatcherSetsRaw, set)
	return nil
}

// oneArg reads exactly one argument.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// flagArg reads a subdirective that takes no arguments.
func flagArg(d *caddyfile.Dispenser) (bool, error) {
	if d.NextArg() {
		return false, d.ArgErr()
	}
	return true, nil
}

// positiveIntArg reads one integer greater than zero for option name.
func positiveIntArg(d *caddyfile.Dispenser, name string) (int64, error) {
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	return positiveInt(d, name, v)
}

func positiveInt(d *caddyfile.Dispenser, name, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, d.Errf("%s must be a whole number greater than zero, got %q", name, v)
	}
	return n, nil
}

// durationArg reads one duration greater than zero.
func durationArg(d *caddyfile.Dispenser) (time.Duration, error) {
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	return positiveDuration(d, v)
}

func positiveDuration(d *caddyfile.Dispenser, v string) (time.Duration, error) {
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("invalid duration %q: want a positive duration such as 500ms, 10s or 1m", v)
	}
	return dur, nil
}

// prefixArg reads a prefix length between 1 and maxBits.
func prefixArg(d *caddyfile.Dispenser, maxBits int) (int, error) {
	name := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxBits {
		return 0, d.Errf("%s must be between 1 and %d, got %q", name, maxBits, v)
	}
	return n, nil
}

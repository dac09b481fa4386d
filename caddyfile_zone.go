package ratewarden

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// unmarshalZone parses one `zone <name> { ... }` block; see
// Handler.UnmarshalCaddyfile for the syntax.
func (h *Handler) unmarshalZone(d *caddyfile.Dispenser) error {
	name, err := oneArg(d)
	if err != nil {
		return err
	}
	if _, dup := h.RateLimits[name]; dup {
		return d.Errf("zone %q is defined more than once", name)
	}
	zoneLine := d.Line()
	z := new(Zone)
	var exprs []string
	var usedLimit, usedEvents bool
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt == "max_events" {
			opt = "events"
		}
		if opt != "match" {
			if seen[opt] {
				return d.Errf("zone %q: %s specified more than once", name, opt)
			}
			seen[opt] = true
		}
		switch opt {
		case "match":
			if d.NextArg() {
				expr := d.Val()
				if d.NextArg() {
					return d.ArgErr()
				}
				if err := checkMatchExpression(expr); err != nil {
					return d.Errf("zone %q: match expression %q: %v", name, expr, err)
				}
				exprs = append(exprs, expr)
				continue
			}
			set, err := caddyhttp.ParseCaddyfileNestedMatcherSet(d)
			if err != nil {
				return err
			}
			if len(set) == 0 {
				return d.Errf("zone %q: match needs a CEL expression or a block of matchers", name)
			}
			z.MatcherSetsRaw = append(z.MatcherSetsRaw, set)
		case "key":
			z.Key, err = oneArg(d)
		case "key_expr":
			if z.KeyExpression, err = oneArg(d); err == nil {
				if _, cerr := compileCEL(z.KeyExpression, cel.StringType); cerr != nil {
					return d.Errf("zone %q: key_expr: %v", name, cerr)
				}
			}
		case "ipv4_prefix":
			z.IPv4Prefix, err = prefixArg(d, 32)
		case "ipv6_prefix":
			z.IPv6Prefix, err = prefixArg(d, 128)
		case "algorithm":
			if z.Algorithm, err = oneArg(d); err == nil {
				if _, lerr := caddy.GetModule("rate_limit.algorithms." + z.Algorithm); lerr != nil {
					return d.Errf("zone %q: unknown algorithm %q (want sliding_log, gcra, token_bucket, fixed_window, sliding_window or concurrency)", name, z.Algorithm)
				}
			}
		case "limit":
			usedLimit = true
			err = z.unmarshalLimit(d)
		case "events":
			usedEvents = true
			z.MaxEvents, err = positiveIntArg(d, "events")
		case "window":
			usedEvents = true
			var dur caddy.Duration
			dur, err = durationArgCaddy(d)
			z.Window = dur
		case "burst":
			z.Burst, err = positiveIntArg(d, "burst")
		case "cost":
			err = z.unmarshalCost(d, name)
		case "shadow":
			z.Shadow, err = flagArg(d)
		case "log_key":
			z.LogKey, err = flagArg(d)
		case "count_if":
			matchers := map[string]caddyhttp.ResponseMatcher{}
			if err := caddyhttp.ParseNamedResponseMatcher(d.NewFromNextSegment(), matchers); err != nil {
				return err
			}
			rm := matchers["count_if"]
			z.CountIf = &rm
		default:
			return d.Errf("zone %q: unrecognized subdirective %q", name, opt)
		}
		if err != nil {
			return err
		}
	}
	if usedLimit && usedEvents {
		return caddyfileErrAt(d, zoneLine, "zone %q: use either limit or events/window, not both", name)
	}
	if usedLimit && z.Algorithm == "" {
		z.Algorithm = "gcra"
	}
	if z.MaxEvents == 0 || (z.Window == 0 && z.Algorithm != "concurrency") {
		return caddyfileErrAt(d, zoneLine, "zone %q needs a limit: `limit <events> <window>` or both `events` and `window`", name)
	}
	if z.Key != "" && z.KeyExpression != "" {
		return caddyfileErrAt(d, zoneLine, "zone %q: key and key_expr are mutually exclusive", name)
	}
	switch len(exprs) {
	case 0:
	case 1:
		z.addExpression(exprs[0])
	default:
		z.addExpression("(" + strings.Join(exprs, ") && (") + ")")
	}
	if h.RateLimits == nil {
		h.RateLimits = make(map[string]*Zone)
	}
	h.RateLimits[name] = z
	return nil
}

// unmarshalLimit parses `limit <events> [<window>]`.
func (z *Zone) unmarshalLimit(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.ArgErr()
	}
	n, err := positiveInt(d, "limit", args[0])
	if err != nil {
		return err
	}
	z.MaxEvents = n
	if len(args) == 2 {
		dur, err := positiveDuration(d, args[1])
		if err != nil {
			return err
		}
		z.Window = caddy.Duration(dur)
	}
	return nil
}

// unmarshalCost parses `cost <int>` or `cost <cel-expression>`.
func (z *Zone) unmarshalCost(d *caddyfile.Dispenser, zone string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	if n, perr := strconv.ParseInt(v, 10, 64); perr == nil {
		if n <= 0 {
			return d.Errf("zone %q: cost must be greater than zero, got %d", zone, n)
		}
		z.Cost = n
		return nil
	}
	if _, cerr := compileCEL(v, cel.IntType); cerr != nil {
		return d.Errf("zone %q: cost is neither an integer nor a valid CEL expression: %v", zone, cerr)
	}
	z.CostExpression = v
	return nil
}

// addExpression ANDs a CEL match expression into every matcher set, or
// makes it the only set.
func (z *Zone) addExpression(expr string) {
	raw, _ := json.Marshal(expr)
	if len(z.MatcherSetsRaw) == 0 {
		z.MatcherSetsRaw = caddyhttp.RawMatcherSets{{}}
	}
	for _, set := range z.MatcherSetsRaw {
		v := raw
		if prev, ok := set["expression"]; ok {
			var p string
			_ = json.Unmarshal(prev, &p)
			v, _ = json.Marshal("(" + p + ") && (" + expr + ")")
		}
		set["expression"] = v
	}
}

// checkMatchExpression compiles a boolean CEL match expression with Caddy's
// own expression matcher, so errors point at the Caddyfile line.
func checkMatchExpression(expr string) error {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	m := caddyhttp.MatchExpression{Expr: expr}
	return m.Provision(ctx)
}

func durationArgCaddy(d *caddyfile.Dispenser) (caddy.Duration, error) {
	dur, err := durationArg(d)
	return caddy.Duration(dur), err
}

// caddyfileErrAt reports an error at a given line of d's file.
func caddyfileErrAt(d *caddyfile.Dispenser, line int, format string, args ...any) error {
	return fmt.Errorf("%w, at %s:%d", fmt.Errorf(format, args...), d.File(), line)
}

package ratewarden

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshalAPIKey parses the handler's api_key subdirective. Syntax:
//
//	api_key {
//		header <field>
//		bearer
//		query <param>
//		require
//		failure_limit <n> <window>
//	}
//
// With no source configured, keys are read from the X-API-Key header and
// from Authorization: Bearer.
func (h *Handler) unmarshalAPIKey(d *caddyfile.Dispenser) error {
	a := new(APIKeyAuth)
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("api_key: %s specified more than once", opt)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "header":
			a.Header, err = oneArg(d)
		case "query":
			a.Query, err = oneArg(d)
		case "bearer":
			a.Bearer, err = flagArg(d)
		case "require":
			a.Require, err = flagArg(d)
		case "failure_limit":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("api_key: failure_limit takes a count and a window, for example: failure_limit 10 1m")
			}
			if a.FailureLimit, err = positiveInt(d, "failure_limit", args[0]); err != nil {
				return err
			}
			var dur time.Duration
			dur, err = positiveDuration(d, args[1])
			a.FailureWindow = caddy.Duration(dur)
		default:
			return d.Errf("api_key: unrecognized option %q (want header, bearer, query, require or failure_limit)", opt)
		}
		if err != nil {
			return err
		}
	}
	h.APIKey = a
	return nil
}

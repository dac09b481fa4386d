package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratewarden/ratewarden/control"
)

// overrideCommand is `rate-limit override`: live zone and key overrides.
func overrideCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "override",
		Short: "Sets and removes live overrides of a zone, or of one key in a zone",
	}
	cmd.AddCommand(overrideSetCommand(g), overrideRmCommand(g))
	return cmd
}

// zoneOverrideRequest is the body of PUT /zones/{zone}/override. TTL is a
// Go duration the server counts from its own clock.
type zoneOverrideRequest struct {
	Limit   *int64 `json:"limit,omitempty"`
	Burst   *int64 `json:"burst,omitempty"`
	Mode    string `json:"mode,omitempty"`
	Enabled *bool  `json:"enabled,omitempty"`
	TTL     string `json:"ttl,omitempty"`
}

// keyOverrideRequest is the body of PUT /zones/{zone}/keys/override?key=K.
// The raw key goes in the query, as for inspect and reset.
type keyOverrideRequest struct {
	Limit      *int64   `json:"limit,omitempty"`
	Multiplier *float64 `json:"multiplier,omitempty"`
	Burst      *int64   `json:"burst,omitempty"`
	TTL        string   `json:"ttl,omitempty"`
}

// overrideFlags are the flags of override set.
type overrideFlags struct {
	key, mode, ttl string
	limit, burst   int64
	multiplier     float64
	enabled        bool
}

func overrideSetCommand(g *globals) *cobra.Command {
	var fl overrideFlags
	cmd := &cobra.Command{
		Use:   "set <zone> [flags]",
		Short: "Overrides a zone's policy, or one key's limit in a zone",
		Long: `Overrides a zone's policy, live, on every instance sharing the store:

  set <zone> [--limit <n>] [--burst <n>] [--mode enforce|shadow] [--enabled=true|false] [--ttl <duration>]

or one key's limit within a zone:

  set <zone> --key <raw key> (--limit <n>|--multiplier <x>) [--burst <n>] [--ttl <duration>]

Without --ttl the override stays until removed with 'override rm'.`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = g.action(func(e *env, args []string) error {
		// --ttl goes as the server parses it: "30d" is "720h0m0s".
		var ttl string
		if fl.ttl != "" {
			d, err := duration("ttl", fl.ttl)
			if err != nil {
				return err
			}
			ttl = d.String()
		}
		if e.cmd.Flags().Changed("key") {
			return setKeyOverride(e, args[0], ttl, &fl)
		}
		return setZoneOverride(e, args[0], ttl, &fl)
	})
	f := cmd.Flags()
	f.StringVar(&fl.key, "key", "", "Raw key to override within the zone (as the zone's key expression computes it)")
	f.Int64Var(&fl.limit, "limit", 0, "Limit replacing the zone's (or, with --key, the key's)")
	f.Int64Var(&fl.burst, "burst", 0, "Burst replacing the zone's")
	f.Float64Var(&fl.multiplier, "multiplier", 0, "With --key: multiply the zone's limit by this instead of giving --limit")
	f.StringVar(&fl.mode, "mode", "", "enforce, or shadow to report denials without blocking")
	f.BoolVar(&fl.enabled, "enabled", false, "Switch the zone on, or off with --enabled=false: it then matches nothing")
	f.StringVar(&fl.ttl, "ttl", "", "Remove the override after this long, such as 1h (default: never)")
	cmd.MarkFlagsMutuallyExclusive("limit", "multiplier")
	return cmd
}

func setZoneOverride(e *env, zone, ttl string, fl *overrideFlags) error {
	set := e.cmd.Flags().Changed
	if set("multiplier") {
		return errors.New("--multiplier applies to one key: add --key")
	}
	if !set("limit") && !set("burst") && !set("mode") && !set("enabled") {
		return errors.New("nothing to override: give --limit, --burst, --mode or --enabled")
	}
	if set("mode") && fl.mode != "enforce" && fl.mode != "shadow" {
		return fmt.Errorf("--mode %q: want enforce or shadow", fl.mode)
	}
	req := zoneOverrideRequest{
		Limit:   ifSet(e, "limit", &fl.limit),
		Burst:   ifSet(e, "burst", &fl.burst),
		Mode:    fl.mode,
		Enabled: ifSet(e, "enabled", &fl.enabled),
		TTL:     ttl,
	}
	body, err := e.client.call(http.MethodPut, "/zones/"+url.PathEscape(zone)+"/override", nil, req)
	if err != nil {
		return fmt.Errorf("overriding zone %s: %w", zone, err)
	}
	return respond(e, body, func(w io.Writer, o control.ZoneOverride) {
		fmt.Fprintf(w, "Override set on zone %s: %s.\n", zone, e.fmtZoneOverride(o))
	})
}

func setKeyOverride(e *env, zone, ttl string, fl *overrideFlags) error {
	set := e.cmd.Flags().Changed
	if set("mode") || set("enabled") {
		return errors.New("--mode and --enabled apply to a zone, not to one key")
	}
	if !set("limit") && !set("multiplier") {
		return errors.New("a key override needs --limit or --multiplier")
	}
	req := keyOverrideRequest{
		Limit:      ifSet(e, "limit", &fl.limit),
		Multiplier: ifSet(e, "multiplier", &fl.multiplier),
		Burst:      ifSet(e, "burst", &fl.burst),
		TTL:        ttl,
	}
	path := "/zones/" + url.PathEscape(zone) + "/keys/override"
	body, err := e.client.call(http.MethodPut, path, keyQuery(fl.key), req)
	if err != nil {
		return fmt.Errorf("overriding a key in zone %s: %w", zone, err)
	}
	return respond(e, body, func(w io.Writer, o control.KeyOverride) {
		fmt.Fprintf(w, "Key override set in zone %s for key hash %s: %s.\n", zone, o.KeyHash, e.fmtKeyOverride(o))
	})
}

// ifSet is p when the flag was given, else nil: a flag left out is left
// out of the request, and a flag given as zero is sent.
func ifSet[T any](e *env, flag string, p *T) *T {
	if e.cmd.Flags().Changed(flag) {
		return p
	}
	return nil
}

func overrideRmCommand(g *globals) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "rm <zone> [--key <raw key>]",
		Short: "Removes a zone's override, or one key's",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = g.action(func(e *env, args []string) error {
		zone := args[0]
		path, query, what := "/zones/"+url.PathEscape(zone)+"/override", url.Values(nil), "override of zone "+zone
		if e.cmd.Flags().Changed("key") {
			path, query, what = "/zones/"+url.PathEscape(zone)+"/keys/override", keyQuery(key), "key override in zone "+zone
		}
		body, err := e.client.call(http.MethodDelete, path, query, nil)
		if err != nil {
			return fmt.Errorf("removing the %s: %w", what, err)
		}
		if e.json {
			return e.printJSON(body)
		}
		_, err = fmt.Fprintf(e.out(), "Removed the %s.\n", what)
		return err
	})
	cmd.Flags().StringVar(&key, "key", "", "Raw key whose override to remove")
	return cmd
}

// fmtZoneOverride is "limit 200, burst 20, mode shadow, until ...".
func (e *env) fmtZoneOverride(o control.ZoneOverride) string {
	var parts []string
	if o.Limit != nil {
		parts = append(parts, "limit "+strconv.FormatInt(*o.Limit, 10))
	}
	if o.Burst != nil {
		parts = append(parts, "burst "+strconv.FormatInt(*o.Burst, 10))
	}
	if o.Mode != "" {
		parts = append(parts, "mode "+o.Mode)
	}
	if o.Enabled != nil && *o.Enabled {
		parts = append(parts, "enabled")
	} else if o.Enabled != nil {
		parts = append(parts, "disabled")
	}
	return strings.Join(append(parts, e.fmtUntil(o.ExpiresAt)), ", ")
}

// fmtKeyOverride is "limit 50, burst 10, until ..." or "3× the zone's
// limit, no expiry".
func (e *env) fmtKeyOverride(o control.KeyOverride) string {
	var parts []string
	if o.Limit != nil {
		parts = append(parts, "limit "+strconv.FormatInt(*o.Limit, 10))
	}
	if o.Multiplier != nil {
		parts = append(parts, strconv.FormatFloat(*o.Multiplier, 'g', -1, 64)+"× the zone's limit")
	}
	if o.Burst != nil {
		parts = append(parts, "burst "+strconv.FormatInt(*o.Burst, 10))
	}
	return strings.Join(append(parts, e.fmtUntil(o.ExpiresAt)), ", ")
}

// fmtUntil says when an override ends.
func (e *env) fmtUntil(t *time.Time) string {
	if t == nil {
		return "no expiry"
	}
	return "until " + e.time(*t)
}

package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratewarden/ratewarden/control"
)

// zonesCommand is `rate-limit zones`: every configured zone.
func zonesCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "zones",
		Short: "Lists every zone with its policy, overrides and decision counts",
		Args:  cobra.NoArgs,
		RunE:  g.action(zonesList),
	}
}

func zonesList(e *env, _ []string) error {
	body, err := e.client.call(http.MethodGet, "/zones", nil, nil)
	if err != nil {
		return fmt.Errorf("listing zones: %w", err)
	}
	return respond(e, body, func(w io.Writer, zones []control.ZoneInfo) {
		if len(zones) == 0 {
			fmt.Fprintln(w, "No zones.")
			return
		}
		fmt.Fprintln(w, "NAME\tALGORITHM\tLIMIT\tEFFECTIVE\tMODE\tOVERRIDES\tALLOWED\tDENIED\tSHADOW DENIED")
		for _, z := range zones {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", z.Name, z.Algorithm,
				fmtPolicy(z.Limit, z.Window, z.Burst), fmtEffective(z), z.Effective.Mode,
				fmtOverrides(z), z.Counts.Allowed, z.Counts.Denied, z.Counts.ShadowDenied)
		}
	})
}

// fmtPolicy is "100/1m", with " burst 20" when there is a burst.
func fmtPolicy(limit int64, window string, burst int64) string {
	s := strconv.FormatInt(limit, 10)
	if window != "" {
		s += "/" + fmtWindow(window)
	}
	if burst != 0 {
		s += " burst " + strconv.FormatInt(burst, 10)
	}
	return s
}

// fmtEffective is the zone's limit after overrides, or "disabled".
func fmtEffective(z control.ZoneInfo) string {
	if !z.Effective.Enabled {
		return "disabled"
	}
	return fmtPolicy(z.Effective.Limit, z.Window, z.Effective.Burst)
}

// fmtOverrides says which overrides a zone has: "zone, 2 keys", or "-".
func fmtOverrides(z control.ZoneInfo) string {
	switch {
	case z.Override != nil && z.KeyOverrides > 0:
		return "zone, " + plural(z.KeyOverrides, "key", "keys")
	case z.Override != nil:
		return "zone"
	case z.KeyOverrides > 0:
		return plural(z.KeyOverrides, "key", "keys")
	}
	return "-"
}

// inspectCommand is `rate-limit inspect ZONE KEY`.
func inspectCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect <zone> <key>",
		Short: "Shows a key's state in a zone, without charging it",
		Args:  cobra.ExactArgs(2),
		RunE:  g.action(inspect),
	}
}

func inspect(e *env, args []string) error {
	zone, key := args[0], args[1]
	body, err := e.client.call(http.MethodGet, "/zones/"+url.PathEscape(zone)+"/keys", keyQuery(key), nil)
	if err != nil {
		return fmt.Errorf("inspecting a key in zone %s: %w", zone, err)
	}
	return respond(e, body, func(w io.Writer, s control.KeyState) {
		fmt.Fprintf(w, "Zone:\t%s\n", s.Zone)
		if s.Key != "" {
			fmt.Fprintf(w, "Key:\t%s\n", s.Key)
		}
		fmt.Fprintf(w, "Key hash:\t%s\n", s.KeyHash)
		fmt.Fprintf(w, "Limit:\t%d\n", s.Limit)
		fmt.Fprintf(w, "Remaining:\t%d\n", s.Remaining)
		fmt.Fprintf(w, "Allowed now:\t%s\n", yesNo(s.Allowed))
		fmt.Fprintf(w, "Retry after:\t%s\n", fmtDuration(time.Duration(s.RetryAfter)))
		fmt.Fprintf(w, "Reset after:\t%s\n", fmtDuration(time.Duration(s.ResetAfter)))
		if s.Override != nil {
			fmt.Fprintf(w, "Override:\t%s\n", e.fmtKeyOverride(*s.Override))
		}
	})
}

// resetCommand is `rate-limit reset ZONE KEY`.
func resetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reset <zone> <key>",
		Short: "Forgets a key's counters in a zone",
		Args:  cobra.ExactArgs(2),
		RunE:  g.action(reset),
	}
}

func reset(e *env, args []string) error {
	zone, key := args[0], args[1]
	body, err := e.client.call(http.MethodDelete, "/zones/"+url.PathEscape(zone)+"/keys", keyQuery(key), nil)
	if err != nil {
		return fmt.Errorf("resetting a key in zone %s: %w", zone, err)
	}
	// The response is the key's state before the reset.
	return respond(e, body, func(w io.Writer, before control.KeyState) {
		fmt.Fprintf(w, "Reset key hash %s in zone %s; it had %d of %d remaining.\n",
			before.KeyHash, zone, before.Remaining, before.Limit)
	})
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratewarden/ratewarden/control"
)

// healthCommand is `rate-limit health`: every named store's health. It
// exits with status 1 when the admin API answers 503.
func healthCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Shows every store's health; exits with status 1 when one the config needs has failed",
		Args:  cobra.NoArgs,
		RunE:  g.action(health),
	}
}

func health(e *env, _ []string) error {
	body, err := e.client.call(http.MethodGet, "/health", nil, nil)
	// 503 comes with the same Health body, naming the stores that failed.
	if apiErr, ok := errors.AsType[*apiError](err); ok && apiErr.Status == http.StatusServiceUnavailable {
		if h, decErr := decode[control.Health](apiErr.Body); decErr == nil && h.Status != "" {
			body, err = apiErr.Body, nil
		}
	}
	if err != nil {
		return fmt.Errorf("checking health: %w", err)
	}
	h, err := decode[control.Health](body)
	if err != nil {
		return err
	}
	if e.json {
		err = e.printJSON(body)
	} else {
		tw := tabwriter.NewWriter(e.out(), 0, 0, 2, ' ', 0)
		writeHealth(tw, h)
		err = tw.Flush()
	}
	if err != nil {
		return err
	}
	if h.Status != "ok" {
		return unhealthy(h)
	}
	return nil
}

// sortedStores is h's stores in name order.
func sortedStores(h control.Health) []control.StoreHealth {
	stores := make([]control.StoreHealth, 0, len(h.Stores))
	for _, name := range slices.Sorted(maps.Keys(h.Stores)) {
		s := h.Stores[name]
		if s.Name == "" {
			s.Name = name
		}
		stores = append(stores, s)
	}
	return stores
}

func writeHealth(w io.Writer, h control.Health) {
	fmt.Fprintf(w, "Status: %s\n", h.Status)
	if len(h.Stores) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSTORE\tBACKEND\tOK\tNEEDED\tBREAKER\tLATENCY\tZONES\tERROR")
	for _, s := range sortedStores(h) {
		backend := s.Backend
		if s.Topology != "" {
			backend += " (" + s.Topology + ")"
		}
		zones := "-"
		if len(s.Zones) > 0 {
			zones = strings.Join(s.Zones, ", ")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, backend, yesNo(s.OK), yesNo(s.Needed),
			orDash(s.Breaker), fmtLatency(s.Latency), zones, orDash(oneLine(s.Error, 200)))
	}
}

// fmtLatency is "1.23ms", "850µs", "850ns", or "-" for none.
func fmtLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d >= time.Minute:
		return fmtDuration(d)
	case d >= time.Millisecond:
		d = d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		d = d.Round(time.Microsecond)
	}
	return d.String()
}

// unhealthy is the error for an unavailable status, naming each store
// that failed.
func unhealthy(h control.Health) error {
	var failed []string
	for _, s := range sortedStores(h) {
		if s.OK {
			continue
		}
		msg := fmt.Sprintf("store %q (%s) failed", s.Name, s.Backend)
		if s.Error != "" {
			msg += ": " + oneLine(s.Error, 200)
		}
		failed = append(failed, msg)
	}
	if len(failed) == 0 {
		return fmt.Errorf("rate limiting is %s", h.Status)
	}
	return fmt.Errorf("rate limiting is %s: %s", h.Status, strings.Join(failed, "; "))
}

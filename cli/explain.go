package cli

import (
	"time"

	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ratewarden/ratewarden/control"
)

// explainCommand is `rate-limit explain`: what every zone would do with a
// synthetic request, without charging anything.
func explainCommand(g *globals) *cobra.Command {
	var (
		req     control.ExplainRequest
		headers []string
	)
	cmd := &cobra.Command{
		Use:   "explain --url <url> [--method <method>] [--header 'K: V'...] [--remote-addr <ip:port>] [--server <name>]",
		Short: "Explains what every zone would do with a request, without charging it",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = g.action(func(e *env, _ []string) error {
		var err error
		if req.Headers, err = parseHeaders(headers); err != nil {
			return err
		}
		body, err := e.client.call(http.MethodPost, "/explain", nil, req)
		if err != nil {
			return fmt.Errorf("explaining %s %s: %w", req.Method, req.URL, err)
		}
		return respond(e, body, writeExplanation)
	})
	f := cmd.Flags()
	f.StringVar(&req.Method, "method", http.MethodGet, "Request method")
	f.StringVar(&req.URL, "url", "", "Request URL, such as https://api.example.com/v1/items (required)")
	f.StringArrayVar(&headers, "header", nil, "Request header as 'Name: value'; repeat for more")
	f.StringVar(&req.RemoteAddr, "remote-addr", "", "Client address as ip:port (default: the server's)")
	f.StringVar(&req.Server, "server", "", "HTTP server whose handlers explain the request (default: every server)")
	_ = cmd.MarkFlagRequired("url")
	return cmd
}

// parseHeaders turns 'Name: value' flags into a header map with canonical
// names; a name given twice has two values.
func parseHeaders(flags []string) (map[string][]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	h := make(http.Header, len(flags))
	for _, f := range flags {
		name, value, ok := strings.Cut(f, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("--header %q: want 'Name: value'", f)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}

// writeExplanation writes the request's decision, its API key, then one
// row per zone, then any zone's errors.
func writeExplanation(w io.Writer, x control.Explanation) {
	fmt.Fprintf(w, "Decision:\t%s\n", x.Decision)
	fmt.Fprintf(w, "Exempt:\t%s\n", yesNo(x.Exempt))
	if k := x.APIKey; k != nil {
		s := k.Result
		if k.ID != "" {
			s += ": " + k.ID + " (" + k.Name
			if k.Tier != "" {
				s += ", tier " + k.Tier
			}
			s += ")"
		}
		fmt.Fprintf(w, "API key:\t%s\n", s)
	}
	if len(x.Zones) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSERVER\tZONE\tMATCHED\tDECISION\tKEY\tCOST\tLIMIT\tREMAINING\tRETRY AFTER\tREASON")
	for _, z := range x.Zones {
		if !z.Matched {
			fmt.Fprintf(w, "%s\t%s\tno\t-\t-\t-\t-\t-\t-\t%s\n", z.Server, z.Zone, z.Reason)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\tyes\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", z.Server, z.Zone, orDash(z.Decision),
			explainKey(z), z.Cost, z.Limit, z.Remaining, fmtDuration(time.Duration(z.RetryAfter)), z.Reason)
	}
	first := true
	for _, z := range x.Zones {
		for _, err := range z.Errors {
			if first {
				fmt.Fprintln(w, "\nErrors:")
				first = false
			}
			fmt.Fprintf(w, "  %s/%s: %s\n", z.Server, z.Zone, err)
		}
	}
}

// explainKey is the zone's raw key when the server shows it (log_key),
// else the start of its hash.
func explainKey(z control.ZoneExplain) string {
	switch {
	case z.Key != "":
		return strconv.Quote(z.Key)
	case len(z.KeyHash) > 12:
		return z.KeyHash[:12] + "…"
	}
	return orDash(z.KeyHash)
}

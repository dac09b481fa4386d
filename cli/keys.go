package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratewarden/ratewarden/control"
)

// keysCommand is `rate-limit keys`: API key management.
func keysCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Creates, lists, shows, rotates, revokes and deletes API keys",
	}
	cmd.AddCommand(
		keysCreateCommand(g),
		&cobra.Command{
			Use:   "list",
			Short: "Lists every API key (metadata only)",
			Args:  cobra.NoArgs,
			RunE:  g.action(keysList),
		},
		&cobra.Command{
			Use:   "show <id>",
			Short: "Shows one API key (metadata only)",
			Args:  cobra.ExactArgs(1),
			RunE:  g.action(keysShow),
		},
		keysRotateCommand(g),
		&cobra.Command{
			Use:   "revoke <id>",
			Short: "Revokes an API key at once",
			Args:  cobra.ExactArgs(1),
			RunE:  g.action(keysRevoke),
		},
		&cobra.Command{
			Use:   "delete <id>",
			Short: "Deletes a revoked or expired API key for good",
			Args:  cobra.ExactArgs(1),
			RunE:  g.action(keysDelete),
		},
	)
	return cmd
}

// secretResponse is the admin API's answer to create and rotate: the only
// time a secret is shown.
type secretResponse struct {
	Secret string          `json:"secret"`
	Key    control.KeyInfo `json:"key"`
}

// secretWarning follows every secret printed.
const secretWarning = "This secret will not be shown again: store it now."

func keysCreateCommand(g *globals) *cobra.Command {
	var (
		spec    control.KeySpec
		labels  []string
		expires string
		ttl     string
	)
	cmd := &cobra.Command{
		Use:   "create --name <name> [--owner <owner>] [--tier <tier>] [--label <k=v>...] [--expires <RFC3339>|--ttl <duration>]",
		Short: "Creates an API key and prints its secret, once",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = g.action(func(e *env, _ []string) error {
		var err error
		if spec.Labels, err = parseLabels(labels); err != nil {
			return err
		}
		switch {
		case expires != "":
			t, err := time.Parse(time.RFC3339, expires)
			if err != nil {
				return fmt.Errorf("--expires: want an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", err)
			}
			spec.ExpiresAt = &t
		case ttl != "":
			if spec.ExpiresAt, err = e.expiry(ttl); err != nil {
				return err
			}
		}
		body, err := e.client.call(http.MethodPost, "/keys", nil, spec)
		if err != nil {
			return fmt.Errorf("creating API key: %w", err)
		}
		return e.showSecret(body, "Created")
	})
	f := cmd.Flags()
	f.StringVar(&spec.Name, "name", "", "Name of the key (required)")
	f.StringVar(&spec.Owner, "owner", "", "Who the key belongs to")
	f.StringVar(&spec.Tier, "tier", "", "Tier, for zones that key on it")
	f.StringArrayVar(&labels, "label", nil, "Label as key=value; repeat for more")
	f.StringVar(&expires, "expires", "", "When the key expires, as an RFC 3339 time")
	f.StringVar(&ttl, "ttl", "", "How long the key lives, such as 720h or 30d")
	_ = cmd.MarkFlagRequired("name")
	cmd.MarkFlagsMutuallyExclusive("expires", "ttl")
	return cmd
}

// parseLabels turns k=v flags into a map. A label given twice is an error.
func parseLabels(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	labels := make(map[string]string, len(flags))
	for _, l := range flags {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", l)
		}
		if _, dup := labels[k]; dup {
			return nil, fmt.Errorf("--label: %q given twice", k)
		}
		labels[k] = v
	}
	return labels, nil
}

func keysRotateCommand(g *globals) *cobra.Command {
	var grace string
	cmd := &cobra.Command{
		Use:   "rotate <id> [--grace <duration>]",
		Short: "Issues a new secret; the old one keeps working for the grace period",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = g.action(func(e *env, args []string) error {
		// req is the body of POST /keys/{id}/rotate. Grace is a Go
		// duration string; left out, the server's default applies.
		var req struct {
			Grace string `json:"grace,omitempty"`
		}
		if grace != "" {
			d, err := duration("grace", grace)
			if err != nil {
				return err
			}
			req.Grace = d.String()
		}
		body, err := e.client.call(http.MethodPost, "/keys/"+url.PathEscape(args[0])+"/rotate", nil, req)
		if err != nil {
			return fmt.Errorf("rotating API key %s: %w", args[0], err)
		}
		return e.showSecret(body, "Rotated")
	})
	cmd.Flags().StringVar(&grace, "grace", "", "How long the old secret keeps working, such as 24h (default: the server's)")
	return cmd
}

// showSecret prints a create or rotate response: the key, then its new
// secret with a warning that it will not be shown again. With --json the
// warning goes to the error output, so the JSON stays clean.
func (e *env) showSecret(body []byte, verb string) error {
	if e.json {
		if err := e.printJSON(body); err != nil {
			return err
		}
		fmt.Fprintln(e.cmd.ErrOrStderr(), secretWarning)
		return nil
	}
	return respond(e, body, func(w io.Writer, r secretResponse) {
		fmt.Fprintf(w, "%s API key %s (%s).\n\n", verb, r.Key.ID, r.Key.Name)
		e.writeKey(w, r.Key)
		fmt.Fprintf(w, "\nSecret:  %s\n\n%s\n", r.Secret, secretWarning)
	})
}

func keysList(e *env, _ []string) error {
	body, err := e.client.call(http.MethodGet, "/keys", nil, nil)
	if err != nil {
		return fmt.Errorf("listing API keys: %w", err)
	}
	return respond(e, body, func(w io.Writer, keys []control.KeyInfo) {
		if len(keys) == 0 {
			fmt.Fprintln(w, "No API keys.")
			return
		}
		fmt.Fprintln(w, "ID\tNAME\tOWNER\tTIER\tSTATUS\tCREATED\tEXPIRES")
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, orDash(k.Owner), orDash(k.Tier),
				k.Status, e.time(k.CreatedAt), e.timePtr(k.ExpiresAt))
		}
	})
}

func keysShow(e *env, args []string) error {
	body, err := e.client.call(http.MethodGet, "/keys/"+url.PathEscape(args[0]), nil, nil)
	if err != nil {
		return fmt.Errorf("showing API key %s: %w", args[0], err)
	}
	return respond(e, body, func(w io.Writer, k control.KeyInfo) { e.writeKey(w, k) })
}

func keysRevoke(e *env, args []string) error {
	body, err := e.client.call(http.MethodPost, "/keys/"+url.PathEscape(args[0])+"/revoke", nil, nil)
	if err != nil {
		return fmt.Errorf("revoking API key %s: %w", args[0], err)
	}
	return respond(e, body, func(w io.Writer, k control.KeyInfo) {
		if k.RevokedAt == nil {
			fmt.Fprintf(w, "Revoked API key %s.\n", args[0])
			return
		}
		fmt.Fprintf(w, "Revoked API key %s (%s) at %s.\n", k.ID, k.Name, e.time(*k.RevokedAt))
	})
}

// keysDelete deletes a key; the admin API refuses one that still works.
func keysDelete(e *env, args []string) error {
	body, err := e.client.call(http.MethodDelete, "/keys/"+url.PathEscape(args[0]), nil, nil)
	if err != nil {
		return fmt.Errorf("deleting API key %s: %w", args[0], err)
	}
	if e.json {
		return e.printJSON(body)
	}
	_, err = fmt.Fprintf(e.out(), "Deleted API key %s.\n", args[0])
	return err
}

// writeKey writes a key's metadata as aligned "Field: value" lines,
// leaving out the times it does not have.
func (e *env) writeKey(w io.Writer, k control.KeyInfo) {
	fmt.Fprintf(w, "ID:\t%s\n", k.ID)
	fmt.Fprintf(w, "Name:\t%s\n", k.Name)
	fmt.Fprintf(w, "Owner:\t%s\n", orDash(k.Owner))
	fmt.Fprintf(w, "Tier:\t%s\n", orDash(k.Tier))
	fmt.Fprintf(w, "Labels:\t%s\n", fmtLabels(k.Labels))
	fmt.Fprintf(w, "Status:\t%s\n", k.Status)
	fmt.Fprintf(w, "Created:\t%s\n", e.time(k.CreatedAt))
	for _, t := range []struct {
		name string
		at   *time.Time
	}{
		{"Expires", k.ExpiresAt},
		{"Rotated", k.RotatedAt},
		{"Old secret until", k.GraceUntil},
		{"Revoked", k.RevokedAt},
	} {
		if t.at != nil {
			fmt.Fprintf(w, "%s:\t%s\n", t.name, e.time(*t.at))
		}
	}
}

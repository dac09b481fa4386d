package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/ratewarden/ratewarden/control"
)

// exportCommand is `rate-limit export`: API keys (hashes and metadata,
// never secrets) and overrides, as one JSON document.
func exportCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [--output <file>]",
		Short: "Writes API keys (hashes and metadata) and overrides as a JSON document",
		Long: `Writes API keys (hashes and metadata, never secrets) and live overrides
as one JSON document, to standard output or to --output. The document is
JSON with or without --json; with --output, a one-line summary follows
unless --json is given.`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = g.action(func(e *env, _ []string) error {
		body, err := e.client.call(http.MethodGet, "/export", nil, nil)
		if err != nil {
			return fmt.Errorf("exporting: %w", err)
		}
		doc, err := decode[control.Document](body)
		if err != nil {
			return err
		}
		if output == "" {
			return e.printJSON(body)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, bytes.TrimSpace(body), "", "  "); err != nil {
			return fmt.Errorf("formatting the export: %w", err)
		}
		pretty.WriteByte('\n')
		// The document holds key hashes: readable by its owner only.
		if err := os.WriteFile(output, pretty.Bytes(), 0o600); err != nil {
			return fmt.Errorf("writing the export: %w", err)
		}
		if e.json {
			return nil
		}
		_, err = fmt.Fprintf(e.out(), "Exported %s, %s and %s to %s.\n",
			plural(len(doc.APIKeys), "API key", "API keys"),
			plural(len(doc.ZoneOverrides), "zone override", "zone overrides"),
			plural(len(doc.KeyOverrides), "key override", "key overrides"), output)
		return err
	})
	cmd.Flags().StringVarP(&output, "output", "o", "", "File to write (default: standard output)")
	return cmd
}

// importCommand is `rate-limit import FILE|-`. Importing the same document
// twice changes nothing the second time.
func importCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import <file|->",
		Short: "Loads API keys and overrides from an export document ('-' reads standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: g.action(func(e *env, args []string) error {
			name := args[0]
			var doc []byte
			var err error
			if name == "-" {
				name = "standard input"
				doc, err = io.ReadAll(e.cmd.InOrStdin())
			} else {
				doc, err = os.ReadFile(name)
			}
			if err != nil {
				return fmt.Errorf("reading the document: %w", err)
			}
			var head struct {
				Version int `json:"version"`
			}
			if err := json.Unmarshal(doc, &head); err != nil || head.Version == 0 {
				return fmt.Errorf("%s is not an export document (want JSON from 'rate-limit export', with a version)", name)
			}
			body, err := e.client.send(http.MethodPost, "/import", nil, doc)
			if err != nil {
				return fmt.Errorf("importing %s: %w", name, err)
			}
			return respond(e, body, func(w io.Writer, r control.ImportResult) {
				fmt.Fprintf(w, "Imported %s: %d created, %d updated, %d unchanged.\n", name, r.Created, r.Updated, r.Unchanged)
			})
		}),
	}
}

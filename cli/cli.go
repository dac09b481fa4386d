// Package cli adds the `caddy rate-limit ...` subcommands, which wrap
// Ratewarden's admin API (/rate_limit/v1 on Caddy's admin endpoint): API
// keys, zones and live overrides, inspect and reset, explain, health, and
// export/import.
//
// Every subcommand takes --address (the admin endpoint; default: the
// CADDY_ADMIN environment variable, else localhost:2019) and --json (print
// the admin API's JSON response instead of the human-readable summary).
package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "rate-limit",
		Usage: "<keys|zones|override|inspect|reset|explain|health|export|import|dashboard> [--address <interface>] [--json]",
		Short: "Manages Ratewarden rate limits through the admin API",
		Long: `
Manages a running Caddy's Ratewarden rate limits through its admin API:
API keys, zones and live overrides, key state, explanations of what the
zones would do with a request, store health, and export/import of keys
and overrides.

The admin endpoint is --address if given, else the CADDY_ADMIN environment
variable, else localhost:2019. --json prints the admin API's response as
JSON instead of the human-readable summary.
`,
		CobraFunc: func(cmd *cobra.Command) { configure(cmd, Options{}) },
	})
}

// Options configures a command tree built by NewCommand.
type Options struct {
	// Now is the clock that turns `keys create --ttl` into an expiry time
	// and shows times as relative ("in 2h"). Default: time.Now.
	Now func() time.Time
}

// NewCommand returns a fresh `rate-limit` command tree, the same one
// `caddy rate-limit` runs. Tests run it in-process: set its arguments with
// SetArgs, its output with SetOut and SetErr, its input with SetIn, then
// call Execute. A nil error means exit status 0; any error means exit
// status 1, and its one line has then been written to the error output:
// "error: ..." (or cobra's "Error: ..." for a usage error).
func NewCommand(opts Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:          "rate-limit",
		Short:        "Manages Ratewarden rate limits through the admin API",
		SilenceUsage: true,
	}
	configure(cmd, opts)
	return cmd
}

// configure adds the global flags and every subcommand to root.
func configure(root *cobra.Command, opts Options) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &globals{now: opts.Now}
	root.PersistentFlags().StringVar(&g.address, "address", "", "Address of the administration endpoint (default: CADDY_ADMIN, else localhost:2019)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "Print the admin API's JSON response")
	root.AddCommand(
		keysCommand(g),
		zonesCommand(g),
		overrideCommand(g),
		inspectCommand(g),
		resetCommand(g),
		explainCommand(g),
		healthCommand(g),
		exportCommand(g),
		importCommand(g),
		dashboardCommand(g),
	)
}

// globals holds the flags every subcommand shares, and the clock.
type globals struct {
	address string
	json    bool
	now     func() time.Time
}

// run is what a subcommand does once its flags are parsed.
type run func(e *env, args []string) error

// action turns f into a cobra RunE. It reports f's error as one line,
// "error: ...", on the error output, and returns it so that the process
// exits with status 1.
func (g *globals) action(f run) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e, err := g.env(cmd)
		if err == nil {
			err = f(e, args)
		}
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "error: %v\n", err)
			cmd.SilenceErrors = true
		}
		return err
	}
}

// env is one run of a subcommand: where it writes, whom it asks, and how.
type env struct {
	cmd    *cobra.Command
	client client
	json   bool
	now    func() time.Time
}

// out is the standard output.
func (e *env) out() io.Writer { return e.cmd.OutOrStdout() }

// env resolves the admin address for one run of cmd.
func (g *globals) env(cmd *cobra.Command) (*env, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(g.address, nil, "", "")
	if err != nil {
		return nil, fmt.Errorf("determining the admin API address: %w", err)
	}
	return &env{
		cmd:    cmd,
		client: client{addr: addr},
		json:   g.json,
		now:    g.now,
	}, nil
}

// duration parses a duration flag's value: a Go duration, or a whole
// number of days ("30d").
func duration(flag, value string) (time.Duration, error) {
	d, err := caddy.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("--%s: %w", flag, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("--%s: %s is not a positive duration", flag, value)
	}
	return d, nil
}

// expiry turns a --ttl value into the time it ends, from now.
func (e *env) expiry(ttl string) (*time.Time, error) {
	d, err := duration("ttl", ttl)
	if err != nil {
		return nil, err
	}
	t := e.now().Add(d).UTC()
	return &t, nil
}

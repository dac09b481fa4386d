package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/control"
)

// cliSite has a zone keyed per client (/c) and API keys with a zone per
// key (everything else).
const cliSite = `handle /c {
	rate_limit {
		zone per_client {
			key {header.X-Client}
			events 3
			window 1m
		}
	}
	respond "c"
}
handle {
	rate_limit {
		api_key {
			header X-API-Key
			require
		}
		zone per_key {
			key {http.rate_limit.api_key.id}
			limit 100 1m
		}
	}
	respond "ok {http.rate_limit.api_key.name}"
}`

// cliResult is one run of `caddy rate-limit ...`.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

// rateLimitCLI runs the built binary's `rate-limit` command against c's
// admin endpoint, with stdin as its standard input.
func rateLimitCLI(t testing.TB, c *Caddy, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	full := append([]string{"rate-limit"}, args...)
	if !slices.Contains(args, "--address") {
		full = append(full, "--address", fmt.Sprintf("127.0.0.1:%d", c.adminPort))
	}
	cmd := exec.CommandContext(ctx, caddyBin, full...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "CADDY_ADMIN=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := cliResult{args: args, stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("running caddy rate-limit %v: %v", args, err)
	}
	return res
}

// ok fails unless the run exited 0 with its stdout containing every want.
func (r cliResult) ok(t testing.TB, wants ...string) cliResult {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("rate-limit %v: exit %d\nstdout: %s\nstderr: %s", r.args, r.code, r.stdout, r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("rate-limit %v: stdout lacks %q:\n%s", r.args, w, r.stdout)
		}
	}
	return r
}

// fails fails unless the run exited 1 with one error line containing every
// want on stderr and nothing on stdout.
func (r cliResult) fails(t testing.TB, wants ...string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("rate-limit %v: exit %d, want 1\nstdout: %s\nstderr: %s", r.args, r.code, r.stdout, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("rate-limit %v: a failure wrote to stdout: %q", r.args, r.stdout)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("rate-limit %v: stderr lacks %q: %q", r.args, w, r.stderr)
		}
	}
}

// json decodes stdout into v.
func (r cliResult) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("rate-limit %v --json: stdout is not the JSON wanted: %v\n%s", r.args, err, r.stdout)
	}
}

// match returns the first group of re in stdout.
func (r cliResult) match(t testing.TB, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("rate-limit %v: stdout does not match %s:\n%s", r.args, re, r.stdout)
	}
	return m[1]
}

// Every subcommand of `caddy rate-limit`, run as the built binary against a
// real Caddy: exit statuses, human-readable and --json output, and the
// effect of each change seen through the admin API or in requests.
func TestCLIEndToEnd(t *testing.T) {
	t.Parallel()
	c := Start(t, Config{Site: cliSite})
	a := newAdminAPI(t, c)
	cli := func(args ...string) cliResult { t.Helper(); return rateLimitCLI(t, c, "", args...) }

	// keys create: the secret works at once; the metadata is stored.
	r := cli("keys", "create", "--name", "ci-bot", "--owner", "alice", "--tier", "gold",
		"--label", "env=prod", "--label", "team=core", "--ttl", "30d").ok(t, "This secret will not be shown again")
	id := r.match(t, `Created API key (\S+) \(ci-bot\)\.`)
	secret := r.match(t, `Secret:\s+(rwk_\S+)`)
	if got := c.Get(t, "/", "X-API-Key", secret); got.Status != 200 || got.Body != "ok ci-bot" {
		t.Errorf("the created key: %d %q", got.Status, got.Body)
	}
	var info control.KeyInfo
	a.call(t, http.StatusOK, "GET", "/keys/"+id, nil).decode(t, &info)
	wantExp := time.Now().Add(30 * 24 * time.Hour)
	if info.Owner != "alice" || info.Tier != "gold" || info.Labels["env"] != "prod" || info.Labels["team"] != "core" ||
		info.ExpiresAt == nil || info.ExpiresAt.Sub(wantExp).Abs() > time.Minute {
		t.Errorf("created key: %+v", info)
	}
	var second issuedKey
	r = cli("keys", "create", "--name", "second", "--json").ok(t)
	r.json(t, &second)
	if second.Secret == "" || second.Key.Name != "second" || !strings.Contains(r.stderr, "will not be shown again") {
		t.Errorf("keys create --json: %+v, stderr %q", second, r.stderr)
	}

	// keys list and show.
	cli("keys", "list").ok(t, "ID", "NAME", id, "ci-bot", second.Key.ID, "second")
	var list []control.KeyInfo
	cli("keys", "list", "--json").ok(t).json(t, &list)
	if len(list) != 2 || list[0].ID != id || list[1].ID != second.Key.ID {
		t.Errorf("keys list --json: %+v", list)
	}
	cli("keys", "show", id).ok(t, "ID:", id, "Owner:    alice", "Labels:   env=prod, team=core", "Status:   active")
	cli("keys", "show", id, "--json").ok(t).json(t, &info)
	if info.ID != id {
		t.Errorf("keys show --json: %+v", info)
	}
	cli("keys", "show", "nOSuchKey000").fails(t, "error: showing API key nOSuchKey000: Not Found")

	// keys rotate: both secrets work during the grace period.
	r = cli("keys", "rotate", id, "--grace", "1h").ok(t, "Rotated API key "+id, "Old secret until:")
	rotated := r.match(t, `Secret:\s+(rwk_\S+)`)
	for _, s := range []string{secret, rotated} {
		if got := c.Get(t, "/", "X-API-Key", s); got.Status != 200 {
			t.Errorf("after rotation with grace: %d %q", got.Status, got.Body)
		}
	}
	a.call(t, http.StatusOK, "GET", "/keys/"+id, nil).decode(t, &info)
	if info.GraceUntil == nil || info.GraceUntil.Sub(time.Now().Add(time.Hour)).Abs() > time.Minute {
		t.Errorf("grace_until after --grace 1h: %v", info.GraceUntil)
	}
	var third issuedKey
	cli("keys", "create", "--name", "third", "--json").ok(t).json(t, &third)
	var rotatedJSON issuedKey
	cli("keys", "rotate", third.Key.ID, "--json").ok(t).json(t, &rotatedJSON)
	if rotatedJSON.Secret == "" || rotatedJSON.Secret == third.Secret || rotatedJSON.Key.GraceUntil == nil ||
		rotatedJSON.Key.GraceUntil.Sub(time.Now().Add(24*time.Hour)).Abs() > time.Minute {
		t.Errorf("keys rotate --json (server's default grace, 24h): %+v", rotatedJSON)
	}
	if got := c.Get(t, "/", "X-API-Key", rotatedJSON.Secret); got.Status != 200 || got.Body != "ok third" {
		t.Errorf("secret from keys rotate --json: %d %q", got.Status, got.Body)
	}
	cli("keys", "revoke", third.Key.ID, "--json").ok(t).json(t, &info)
	if info.ID != third.Key.ID || info.Status != "revoked" || info.RevokedAt == nil {
		t.Errorf("keys revoke --json: %+v", info)
	}

	// keys revoke: refused at once; a second revoke is an error.
	cli("keys", "revoke", second.Key.ID).ok(t, "Revoked API key "+second.Key.ID+" (second) at ")
	if got := c.Get(t, "/", "X-API-Key", second.Secret); got.Status != 401 || unauthorizedReason(t, got) != "revoked" {
		t.Errorf("revoked key: %d %q", got.Status, got.Body)
	}
	cli("keys", "revoke", second.Key.ID).fails(t, "error: revoking API key "+second.Key.ID+": Conflict")
	cli("keys", "rotate", second.Key.ID).fails(t, "error: rotating API key "+second.Key.ID+": Conflict")

	// zones.
	cli("zones").ok(t, "NAME", "per_client", "sliding_log", "3/1m", "per_key", "gcra")
	var zones []control.ZoneInfo
	cli("zones", "--json").ok(t).json(t, &zones)
	if len(zones) != 2 {
		t.Errorf("zones --json: %+v", zones)
	}

	// override set, on the zone and on one key, then seen in requests.
	cli("override", "set", "per_client", "--limit", "5", "--ttl", "1h").ok(t, "Override set on zone per_client: limit 5, until ")
	if got := effectiveLimit(t, a, "per_client"); got != 5 {
		t.Errorf("effective limit after override set: %d", got)
	}
	c.expectStatuses(t, "/c", repeat(200, 5, 429), "X-Client", "plain")
	r = cli("override", "set", "per_client", "--key", "vip", "--limit", "7").ok(t, "Key override set in zone per_client for key hash ")
	vipHash := r.match(t, `key hash ([0-9a-f]{32}):`)
	c.expectStatuses(t, "/c", repeat(200, 7, 429), "X-Client", "vip")
	var kov control.KeyOverride
	cli("override", "set", "per_client", "--key", "vip two", "--multiplier", "2", "--json").ok(t).json(t, &kov)
	if kov.Multiplier == nil || *kov.Multiplier != 2 || kov.Zone != "per_client" {
		t.Errorf("override set --key --json: %+v", kov)
	}
	c.expectStatuses(t, "/c", repeat(200, 10, 429), "X-Client", "vip two")
	cli("override", "set", "per_client", "--mode", "block").fails(t, "error: ", "--mode")
	cli("override", "set", "per_client", "--limit", "0").fails(t, "error: overriding zone per_client: Bad Request", "/limit")

	// inspect and reset.
	cli("inspect", "per_client", "vip").ok(t, "Zone:         per_client", "Key hash:     "+vipHash, "Limit:        7", "Remaining:    0")
	var st control.KeyState
	cli("inspect", "per_client", "vip", "--json").ok(t).json(t, &st)
	if st.KeyHash != vipHash || st.Limit != 7 || st.Remaining != 0 || st.Override == nil {
		t.Errorf("inspect --json: %+v", st)
	}
	cli("reset", "per_client", "vip").ok(t, "Reset key hash "+vipHash+" in zone per_client; it had 0 of 7 remaining.")
	a.call(t, http.StatusOK, "GET", "/zones/per_client/keys?key=vip", nil).decode(t, &st)
	if st.Remaining != 7 {
		t.Errorf("after reset: %+v", st)
	}
	c.expectStatuses(t, "/c", []int{200}, "X-Client", "vip")
	cli("inspect", "nozone", "vip").fails(t, "error: ", "Not Found")

	// explain, human and JSON.
	cli("explain", "--url", c.URL+"/", "--header", "X-API-Key: "+rotated).ok(t,
		"Decision:  allowed", "API key:   ok: "+id+" (ci-bot, tier gold)", "per_key")
	var ex control.Explanation
	cli("explain", "--method", "POST", "--url", c.URL+"/c", "--header", "X-Client: plain", "--json").ok(t).json(t, &ex)
	// (Which other zones explain lists is TestAdminExplainFollowsHandleBlocks's
	// business.)
	denied := false
	for _, z := range ex.Zones {
		denied = denied || z.Zone == "per_client" && z.Matched && z.Decision == "denied" && z.Limit == 5
	}
	if !denied {
		t.Errorf("explain --json: per_client not denied: %+v", ex.Zones)
	}

	// health.
	cli("health").ok(t, "Status: ok", "default", "memory")
	var health control.Health
	cli("health", "--json").ok(t).json(t, &health)
	if health.Status != "ok" {
		t.Errorf("health --json: %+v", health)
	}

	// export, to a file (owner-only) and to stdout.
	file := filepath.Join(t.TempDir(), "export.json")
	cli("export", "--output", file).ok(t, "Exported 3 API keys, 1 zone override and 2 key overrides to "+file+".")
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("export file: %v, mode %v", err, st.Mode())
	}
	var doc control.Document
	raw, _ := os.ReadFile(file)
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.APIKeys) != 3 || len(doc.ZoneOverrides) != 1 || len(doc.KeyOverrides) != 2 {
		t.Errorf("export file: %v: %s", err, raw)
	}
	cli("export").ok(t).json(t, &doc)
	if doc.Version != 1 || len(doc.APIKeys) != 3 {
		t.Errorf("export to stdout: %+v", doc)
	}

	// override rm, then import brings the removed overrides back.
	cli("override", "rm", "per_client", "--key", "vip two").ok(t, "Removed the key override in zone per_client.")
	cli("override", "rm", "per_client").ok(t, "Removed the override of zone per_client.")
	cli("override", "rm", "per_client").fails(t, "error: removing the override of zone per_client: Not Found")
	if got := effectiveLimit(t, a, "per_client"); got != 3 {
		t.Errorf("effective limit after override rm: %d", got)
	}
	cli("import", file).ok(t, "Imported "+file+": 2 created, 0 updated, 4 unchanged.")
	if got := effectiveLimit(t, a, "per_client"); got != 5 {
		t.Errorf("effective limit after import: %d", got)
	}
	rateLimitCLI(t, c, string(raw), "import", "-").ok(t, "Imported standard input: 0 created, 0 updated, 6 unchanged.")
	var res control.ImportResult
	cli("import", file, "--json").ok(t).json(t, &res)
	if res.Unchanged != 6 || res.Created+res.Updated != 0 {
		t.Errorf("import --json: %+v", res)
	}
	notDoc := filepath.Join(t.TempDir(), "not.json")
	if err := os.WriteFile(notDoc, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cli("import", notDoc).fails(t, "is not an export document")

	// keys delete: a working key is refused; a revoked one goes for good.
	cli("keys", "delete", id).fails(t, "error: deleting API key "+id+": Conflict", "revoke it first")
	cli("keys", "delete", second.Key.ID).ok(t, "Deleted API key "+second.Key.ID+".")
	cli("keys", "show", second.Key.ID).fails(t, "error: showing API key "+second.Key.ID+": Not Found")
	if got := c.Get(t, "/", "X-API-Key", second.Secret); got.Status != 401 || unauthorizedReason(t, got) != "unknown" {
		t.Errorf("deleted key: %d %q", got.Status, got.Body)
	}

	// Usage errors and an address where nothing answers.
	cli("keys", "show").fails(t, "Error:")
	dead, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cli("zones", "--address", "127.0.0.1:"+strconv.Itoa(dead[0])).fails(t, "error: listing zones: reaching the admin API at 127.0.0.1:"+strconv.Itoa(dead[0]), "is Caddy running there?")

	// health exits 1 when a needed store is down, --json included.
	c.Reload(t, Config{
		Global: fmt.Sprintf("rate_limit {\n\tstore redis dead {\n\t\taddress 127.0.0.1:%d\n\t}\n}", dead[0]),
		Site:   cliSite + "\nhandle /dead {\n\trate_limit {\n\t\tstore dead\n\t\tzone on_dead {\n\t\t\tlimit 5 1m\n\t\t}\n\t}\n}",
	})
	r = cli("health")
	if r.code != 1 || !strings.Contains(r.stdout, "Status: unavailable") ||
		!strings.HasPrefix(r.stderr, `error: rate limiting is unavailable: store "dead"`) {
		t.Errorf("health with a dead store: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = cli("health", "--json")
	if r.code != 1 {
		t.Errorf("health --json with a dead store: exit %d", r.code)
	}
	r.json(t, &health)
	if health.Status != "unavailable" || health.Stores["dead"].OK {
		t.Errorf("health --json with a dead store: %+v", health)
	}
}

package cli

import (
	"net/http"
	"strings"
	"testing"
)

// keyJSON is an active key as the admin API describes it.
const keyJSON = `{"id":"7f3aK9mQ2xLp","name":"ci-bot","owner":"alice","tier":"gold",` +
	`"labels":{"team":"core","env":"prod"},"created_at":"2025-05-01T12:00:00Z",` +
	`"expires_at":"2025-07-01T12:00:00Z","status":"active"}`

func TestKeys(t *testing.T) {
	t.Parallel()
	runAPICases(t, []apiCase{
		{
			name: "create with every flag and a ttl",
			args: []string{"keys", "create", "--name", "ci-bot", "--owner", "alice", "--tier", "gold",
				"--label", "env=prod", "--label", "team=core", "--ttl", "720h"},
			reply: reply{http.StatusCreated, `{"secret":"rwk_live_7f3a_S3cr3t","key":` + keyJSON + `}`},
			want: request{Method: "POST", Path: "/rate_limit/v1/keys",
				Body: `{"name":"ci-bot","owner":"alice","tier":"gold","labels":{"env":"prod","team":"core"},"expires_at":"2025-07-01T12:00:00Z"}`},
			stdout: "Created API key 7f3aK9mQ2xLp (ci-bot).\n\n" +
				"ID:       7f3aK9mQ2xLp\n" +
				"Name:     ci-bot\n" +
				"Owner:    alice\n" +
				"Tier:     gold\n" +
				"Labels:   env=prod, team=core\n" +
				"Status:   active\n" +
				"Created:  2025-05-01 12:00:00 UTC (31d ago)\n" +
				"Expires:  2025-07-01 12:00:00 UTC (in 30d)\n\n" +
				"Secret:  rwk_live_7f3a_S3cr3t\n\n" +
				"This secret will not be shown again: store it now.\n",
		},
		{
			name:  "create with a name only and an RFC 3339 expiry",
			args:  []string{"keys", "create", "--name", "n", "--expires", "2026-01-02T03:04:05+02:00"},
			reply: reply{http.StatusCreated, `{"secret":"rwk_s","key":{"id":"k_1","name":"n","created_at":"2025-06-01T12:00:00Z","expires_at":"2026-01-02T01:04:05Z","status":"active"}}`},
			want:  request{Method: "POST", Path: "/rate_limit/v1/keys", Body: `{"name":"n","expires_at":"2026-01-02T03:04:05+02:00"}`},
			stdout: "Created API key k_1 (n).\n\n" +
				"ID:       k_1\n" +
				"Name:     n\n" +
				"Owner:    -\n" +
				"Tier:     -\n" +
				"Labels:   -\n" +
				"Status:   active\n" +
				"Created:  2025-06-01 12:00:00 UTC (now)\n" +
				"Expires:  2026-01-02 01:04:05 UTC (in 214d13h)\n\n" +
				"Secret:  rwk_s\n\n" +
				"This secret will not be shown again: store it now.\n",
		},
		{
			name:  "create with days in the ttl",
			args:  []string{"keys", "create", "--name", "n", "--ttl", "30d"},
			reply: reply{http.StatusCreated, `{"secret":"rwk_s","key":{"id":"k_1","name":"n","created_at":"2025-06-01T12:00:00Z","status":"active"}}`},
			want:  request{Method: "POST", Path: "/rate_limit/v1/keys", Body: `{"name":"n","expires_at":"2025-07-01T12:00:00Z"}`},
			stdout: "Created API key k_1 (n).\n\n" +
				"ID:       k_1\n" +
				"Name:     n\n" +
				"Owner:    -\n" +
				"Tier:     -\n" +
				"Labels:   -\n" +
				"Status:   active\n" +
				"Created:  2025-06-01 12:00:00 UTC (now)\n\n" +
				"Secret:  rwk_s\n\n" +
				"This secret will not be shown again: store it now.\n",
		},
		{
			name:  "list",
			args:  []string{"keys", "list"},
			reply: reply{Body: `[` + keyJSON + `,{"id":"0ldKey2bRevk","name":"old","created_at":"2025-01-01T00:00:00Z","revoked_at":"2025-05-31T12:00:00Z","status":"revoked"}]`},
			want:  request{Method: "GET", Path: "/rate_limit/v1/keys"},
			stdout: "" +
				"ID            NAME    OWNER  TIER  STATUS   CREATED                                EXPIRES\n" +
				"7f3aK9mQ2xLp  ci-bot  alice  gold  active   2025-05-01 12:00:00 UTC (31d ago)      2025-07-01 12:00:00 UTC (in 30d)\n" +
				"0ldKey2bRevk  old     -      -     revoked  2025-01-01 00:00:00 UTC (151d12h ago)  -\n",
		},
		{
			name:   "list with no keys",
			args:   []string{"keys", "list"},
			reply:  reply{Body: `[]`},
			want:   request{Method: "GET", Path: "/rate_limit/v1/keys"},
			stdout: "No API keys.\n",
		},
		{
			name:  "show",
			args:  []string{"keys", "show", "7f3aK9mQ2xLp"},
			reply: reply{Body: keyJSON},
			want:  request{Method: "GET", Path: "/rate_limit/v1/keys/7f3aK9mQ2xLp"},
			stdout: "" +
				"ID:       7f3aK9mQ2xLp\n" +
				"Name:     ci-bot\n" +
				"Owner:    alice\n" +
				"Tier:     gold\n" +
				"Labels:   env=prod, team=core\n" +
				"Status:   active\n" +
				"Created:  2025-05-01 12:00:00 UTC (31d ago)\n" +
				"Expires:  2025-07-01 12:00:00 UTC (in 30d)\n",
		},
		{
			name: "rotate with a grace period",
			args: []string{"keys", "rotate", "7f3aK9mQ2xLp", "--grace", "1d12h"},
			reply: reply{Body: `{"secret":"rwk_live_7f3a_N3w","key":{"id":"7f3aK9mQ2xLp","name":"ci-bot","created_at":"2025-05-01T12:00:00Z",` +
				`"rotated_at":"2025-06-01T12:00:00Z","grace_until":"2025-06-03T00:00:00Z","status":"active"}}`},
			want: request{Method: "POST", Path: "/rate_limit/v1/keys/7f3aK9mQ2xLp/rotate", Body: `{"grace":"36h0m0s"}`},
			stdout: "Rotated API key 7f3aK9mQ2xLp (ci-bot).\n\n" +
				"ID:                7f3aK9mQ2xLp\n" +
				"Name:              ci-bot\n" +
				"Owner:             -\n" +
				"Tier:              -\n" +
				"Labels:            -\n" +
				"Status:            active\n" +
				"Created:           2025-05-01 12:00:00 UTC (31d ago)\n" +
				"Rotated:           2025-06-01 12:00:00 UTC (now)\n" +
				"Old secret until:  2025-06-03 00:00:00 UTC (in 1d12h)\n\n" +
				"Secret:  rwk_live_7f3a_N3w\n\n" +
				"This secret will not be shown again: store it now.\n",
		},
		{
			name:  "rotate with the server's grace period",
			args:  []string{"keys", "rotate", "7f3aK9mQ2xLp"},
			reply: reply{Body: `{"secret":"rwk_live_7f3a_N3w","key":{"id":"7f3aK9mQ2xLp","name":"ci-bot","created_at":"2025-05-01T12:00:00Z","status":"active"}}`},
			want:  request{Method: "POST", Path: "/rate_limit/v1/keys/7f3aK9mQ2xLp/rotate", Body: `{}`},
			stdout: "Rotated API key 7f3aK9mQ2xLp (ci-bot).\n\n" +
				"ID:       7f3aK9mQ2xLp\n" +
				"Name:     ci-bot\n" +
				"Owner:    -\n" +
				"Tier:     -\n" +
				"Labels:   -\n" +
				"Status:   active\n" +
				"Created:  2025-05-01 12:00:00 UTC (31d ago)\n\n" +
				"Secret:  rwk_live_7f3a_N3w\n\n" +
				"This secret will not be shown again: store it now.\n",
		},
		{
			name:   "revoke",
			args:   []string{"keys", "revoke", "7f3aK9mQ2xLp"},
			reply:  reply{Body: `{"id":"7f3aK9mQ2xLp","name":"ci-bot","created_at":"2025-05-01T12:00:00Z","revoked_at":"2025-06-01T12:00:00Z","status":"revoked"}`},
			want:   request{Method: "POST", Path: "/rate_limit/v1/keys/7f3aK9mQ2xLp/revoke"},
			stdout: "Revoked API key 7f3aK9mQ2xLp (ci-bot) at 2025-06-01 12:00:00 UTC (now).\n",
		},
		{
			name:   "delete",
			args:   []string{"keys", "delete", "7f3aK9mQ2xLp"},
			reply:  reply{Status: http.StatusNoContent},
			want:   request{Method: "DELETE", Path: "/rate_limit/v1/keys/7f3aK9mQ2xLp"},
			stdout: "Deleted API key 7f3aK9mQ2xLp.\n",
		},
	})
}

// TestSecretWarning checks the secret's warning: on the
// standard output with the secret, or on the error output with --json so
// the JSON stays clean.
func TestSecretWarning(t *testing.T) {
	t.Parallel()
	f := newFakeAdmin(t, reply{http.StatusCreated, `{"secret":"rwk_s","key":{"id":"k_1","name":"n","status":"active"}}`})
	for _, args := range [][]string{{"keys", "create", "--name", "n"}, {"keys", "rotate", "k_1"}} {
		res := runCLI("", append([]string{"--address", f.addr()}, args...)...)
		if res.err != nil || !strings.Contains(res.stdout, "rwk_s") || !strings.HasSuffix(res.stdout, secretWarning+"\n") || res.stderr != "" {
			t.Errorf("%q: stdout %q, stderr %q, err %v", args, res.stdout, res.stderr, res.err)
		}
		res = runCLI("", append([]string{"--address", f.addr(), "--json"}, args...)...)
		if res.err != nil || !strings.Contains(res.stdout, "rwk_s") || strings.Contains(res.stdout, secretWarning) || res.stderr != secretWarning+"\n" {
			t.Errorf("%q --json: stdout %q, stderr %q, err %v", args, res.stdout, res.stderr, res.err)
		}
	}
}

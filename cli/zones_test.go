package cli

import (
	"net/http"
	"testing"
)

// zonesJSON has a zone with a zone override and key overrides, a zone
// switched off by an override, and a zone with no window.
const zonesJSON = `[
{"name":"per_client","servers":["srv0"],"store":"default","algorithm":"gcra","limit":100,"window":"1m0s","burst":20,
 "mode":"enforce","effective":{"limit":200,"burst":20,"mode":"shadow","enabled":true},
 "override":{"zone":"per_client","limit":200,"mode":"shadow","expires_at":"2025-06-01T14:00:00Z","updated_at":"2025-06-01T11:00:00Z"},
 "key_overrides":2,"counts":{"allowed":1520,"denied":31,"shadow_denied":4},"log_key":false},
{"name":"login","servers":["srv0"],"store":"redis","algorithm":"sliding_log","limit":5,"window":"5m0s","mode":"enforce",
 "effective":{"limit":5,"mode":"enforce","enabled":false},
 "override":{"zone":"login","enabled":false,"updated_at":"2025-06-01T11:00:00Z"},
 "key_overrides":0,"counts":{"allowed":10,"denied":2,"shadow_denied":0},"log_key":true},
{"name":"uploads","servers":["srv0","srv1"],"store":"default","algorithm":"concurrency","limit":10,"mode":"enforce",
 "effective":{"limit":10,"mode":"enforce","enabled":true},
 "key_overrides":1,"counts":{"allowed":7,"denied":0,"shadow_denied":0},"log_key":false}]`

// keyOverrideJSON is a key override with a multiplier.
const keyOverrideJSON = `{"zone":"per_client","key_hash":"9f86d081884c7d659a2feaa0c55ad015",` +
	`"multiplier":2.5,"burst":10,"expires_at":"2025-06-02T12:00:00Z","updated_at":"2025-06-01T12:00:00Z"}`

func TestZones(t *testing.T) {
	t.Parallel()
	runAPICases(t, []apiCase{
		{
			name:  "zones",
			args:  []string{"zones"},
			reply: reply{Body: zonesJSON},
			want:  request{Method: "GET", Path: "/rate_limit/v1/zones"},
			stdout: "" +
				"NAME        ALGORITHM    LIMIT            EFFECTIVE        MODE     OVERRIDES     ALLOWED  DENIED  SHADOW DENIED\n" +
				"per_client  gcra         100/1m burst 20  200/1m burst 20  shadow   zone, 2 keys  1520     31      4\n" +
				"login       sliding_log  5/5m             disabled         enforce  zone          10       2       0\n" +
				"uploads     concurrency  10               10               enforce  1 key         7        0       0\n",
		},
		{
			name:   "no zones",
			args:   []string{"zones"},
			reply:  reply{Body: `[]`},
			want:   request{Method: "GET", Path: "/rate_limit/v1/zones"},
			stdout: "No zones.\n",
		},
		{
			name: "inspect",
			args: []string{"inspect", "per_client", "10.0.0.1"},
			reply: reply{Body: `{"zone":"per_client","key_hash":"9f86d081884c7d659a2feaa0c55ad015","limit":250,"remaining":42,` +
				`"allowed":true,"retry_after_ms":0,"reset_after_ms":12000,"override":` + keyOverrideJSON + `}`},
			want: request{Method: "GET", Path: "/rate_limit/v1/zones/per_client/keys", Query: "key=10.0.0.1"},
			stdout: "" +
				"Zone:         per_client\n" +
				"Key hash:     9f86d081884c7d659a2feaa0c55ad015\n" +
				"Limit:        250\n" +
				"Remaining:    42\n" +
				"Allowed now:  yes\n" +
				"Retry after:  0s\n" +
				"Reset after:  12s\n" +
				"Override:     2.5× the zone's limit, burst 10, until 2025-06-02 12:00:00 UTC (in 1d)\n",
		},
		{
			name: "inspect a denied key in a log_key zone",
			args: []string{"inspect", "login", "alice@example.com"},
			reply: reply{Body: `{"zone":"login","key":"alice@example.com","key_hash":"2bd806c97f0e00af1a1fc3328fa763a9","limit":5,"remaining":0,` +
				`"allowed":false,"retry_after_ms":65000,"reset_after_ms":300000}`},
			want: request{Method: "GET", Path: "/rate_limit/v1/zones/login/keys", Query: "key=alice%40example.com"},
			stdout: "" +
				"Zone:         login\n" +
				"Key:          alice@example.com\n" +
				"Key hash:     2bd806c97f0e00af1a1fc3328fa763a9\n" +
				"Limit:        5\n" +
				"Remaining:    0\n" +
				"Allowed now:  no\n" +
				"Retry after:  1m5s\n" +
				"Reset after:  5m\n",
		},
		{
			name: "reset",
			args: []string{"reset", "login", "alice@example.com"},
			reply: reply{Body: `{"zone":"login","key_hash":"2bd806c97f0e00af1a1fc3328fa763a9","limit":5,"remaining":0,` +
				`"allowed":false,"retry_after_ms":65000,"reset_after_ms":300000}`},
			want:   request{Method: "DELETE", Path: "/rate_limit/v1/zones/login/keys", Query: "key=alice%40example.com"},
			stdout: "Reset key hash 2bd806c97f0e00af1a1fc3328fa763a9 in zone login; it had 0 of 5 remaining.\n",
		},
	})
}

func TestOverride(t *testing.T) {
	t.Parallel()
	runAPICases(t, []apiCase{
		{
			name: "set a zone's limit, burst and mode for a while",
			args: []string{"override", "set", "per_client", "--limit", "200", "--burst", "40", "--mode", "shadow", "--ttl", "2h"},
			reply: reply{Body: `{"zone":"per_client","limit":200,"burst":40,"mode":"shadow",` +
				`"expires_at":"2025-06-01T14:00:00Z","updated_at":"2025-06-01T12:00:00Z"}`},
			want: request{Method: "PUT", Path: "/rate_limit/v1/zones/per_client/override",
				Body: `{"limit":200,"burst":40,"mode":"shadow","ttl":"2h0m0s"}`},
			stdout: "Override set on zone per_client: limit 200, burst 40, mode shadow, until 2025-06-01 14:00:00 UTC (in 2h).\n",
		},
		{
			name:   "switch a zone off",
			args:   []string{"override", "set", "login", "--enabled=false"},
			reply:  reply{Body: `{"zone":"login","enabled":false,"updated_at":"2025-06-01T12:00:00Z"}`},
			want:   request{Method: "PUT", Path: "/rate_limit/v1/zones/login/override", Body: `{"enabled":false}`},
			stdout: "Override set on zone login: disabled, no expiry.\n",
		},
		{
			name:   "an explicit zero is sent",
			args:   []string{"override", "set", "login", "--burst", "0", "--enabled"},
			reply:  reply{Body: `{"zone":"login","burst":0,"enabled":true,"updated_at":"2025-06-01T12:00:00Z"}`},
			want:   request{Method: "PUT", Path: "/rate_limit/v1/zones/login/override", Body: `{"burst":0,"enabled":true}`},
			stdout: "Override set on zone login: burst 0, enabled, no expiry.\n",
		},
		{
			name:  "set a key's multiplier",
			args:  []string{"override", "set", "per_client", "--key", "10.0.0.1", "--multiplier", "2.5", "--burst", "10", "--ttl", "1d"},
			reply: reply{Body: keyOverrideJSON},
			want: request{Method: "PUT", Path: "/rate_limit/v1/zones/per_client/keys/override", Query: "key=10.0.0.1",
				Body: `{"multiplier":2.5,"burst":10,"ttl":"24h0m0s"}`},
			stdout: "Key override set in zone per_client for key hash 9f86d081884c7d659a2feaa0c55ad015: " +
				"2.5× the zone's limit, burst 10, until 2025-06-02 12:00:00 UTC (in 1d).\n",
		},
		{
			name: "set a key's limit",
			args: []string{"override", "set", "per_client", "--key", "partner key", "--limit", "1000"},
			reply: reply{Body: `{"zone":"per_client","key_hash":"5e884898da28047151d0e56f8dc62927","limit":1000,` +
				`"updated_at":"2025-06-01T12:00:00Z"}`},
			want: request{Method: "PUT", Path: "/rate_limit/v1/zones/per_client/keys/override", Query: "key=partner+key",
				Body: `{"limit":1000}`},
			stdout: "Key override set in zone per_client for key hash 5e884898da28047151d0e56f8dc62927: limit 1000, no expiry.\n",
		},
		{
			name:   "remove a zone's override",
			args:   []string{"override", "rm", "per_client"},
			reply:  reply{Status: http.StatusNoContent},
			want:   request{Method: "DELETE", Path: "/rate_limit/v1/zones/per_client/override"},
			stdout: "Removed the override of zone per_client.\n",
		},
		{
			name:   "remove a key's override",
			args:   []string{"override", "rm", "per_client", "--key", "10.0.0.1"},
			reply:  reply{Status: http.StatusNoContent},
			want:   request{Method: "DELETE", Path: "/rate_limit/v1/zones/per_client/keys/override", Query: "key=10.0.0.1"},
			stdout: "Removed the key override in zone per_client.\n",
		},
	})
}

package cli

import (
	"net/http"
	"testing"
)

// healthyJSON is GET /health with every store usable.
const healthyJSON = `{"status":"ok","stores":{
 "redis":{"backend":"redis","ok":true,"topology":"sentinel","breaker":"closed","on_failure":"local","scripts":"loaded",
  "latency_ns":1234567,"name":"redis","zones":["per_client","login"],"needed":true},
 "default":{"backend":"memory","ok":true,"keys":1042,"latency_ns":850,"name":"default","zones":["uploads"],"needed":true}}}`

// unhealthyJSON is GET /health's 503 body: the Redis store failed.
const unhealthyJSON = `{"status":"unavailable","stores":{
 "redis":{"backend":"redis","ok":false,"error":"dial tcp 10.0.0.5:6379: connect: connection refused","topology":"standalone",
  "breaker":"open","on_failure":"deny","latency_ns":50000000,"name":"redis","zones":["per_client"],"needed":true},
 "default":{"backend":"memory","ok":true,"name":"default","needed":false}}}`

func TestHealthy(t *testing.T) {
	t.Parallel()
	runAPICases(t, []apiCase{{
		name:  "ok",
		args:  []string{"health"},
		reply: reply{Body: healthyJSON},
		want:  request{Method: "GET", Path: "/rate_limit/v1/health"},
		stdout: "" +
			"Status: ok\n" +
			"\n" +
			"STORE    BACKEND           OK   NEEDED  BREAKER  LATENCY  ZONES              ERROR\n" +
			"default  memory            yes  yes     -        850ns    uploads            -\n" +
			"redis    redis (sentinel)  yes  yes     closed   1.23ms   per_client, login  -\n",
	}})
}

// TestUnhealthy pins exit status 1 on 503, with the stores that failed
// named on the error output.
func TestUnhealthy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		reply          reply
		json           bool
		stdout, stderr string
	}{
		{
			name:  "store failed",
			reply: reply{http.StatusServiceUnavailable, unhealthyJSON},
			stdout: "" +
				"Status: unavailable\n" +
				"\n" +
				"STORE    BACKEND             OK   NEEDED  BREAKER  LATENCY  ZONES       ERROR\n" +
				"default  memory              yes  no      -        -        -           -\n" +
				"redis    redis (standalone)  no   yes     open     50ms     per_client  dial tcp 10.0.0.5:6379: connect: connection refused\n",
			stderr: "error: rate limiting is unavailable: store \"redis\" (redis) failed: dial tcp 10.0.0.5:6379: connect: connection refused\n",
		},
		{
			name:   "store failed, json",
			reply:  reply{http.StatusServiceUnavailable, unhealthyJSON},
			json:   true,
			stdout: "PRETTY",
			stderr: "error: rate limiting is unavailable: store \"redis\" (redis) failed: dial tcp 10.0.0.5:6379: connect: connection refused\n",
		},
		{
			name:   "503 problem, no health body",
			reply:  reply{http.StatusServiceUnavailable, `{"title":"Service Unavailable","status":503,"detail":"the rate_limit app is not running"}`},
			stderr: "error: checking health: Service Unavailable: the rate_limit app is not running\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAdmin(t, tc.reply)
			args := []string{"--address", f.addr(), "health"}
			if tc.json {
				args = append(args, "--json")
			}
			res := runCLI("", args...)
			if res.err == nil {
				t.Error("exit status 0, want 1")
			}
			want := tc.stdout
			if want == "PRETTY" {
				want = pretty(t, tc.reply.Body)
			}
			if res.stdout != want || res.stderr != tc.stderr {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q, want %q", res.stdout, want, res.stderr, tc.stderr)
			}
		})
	}
}

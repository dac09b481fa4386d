package cli

import "testing"

// explanationJSON denies the request in one zone, allows it in another
// (a log_key zone, so its raw key shows), and leaves a third unmatched.
const explanationJSON = `{"exempt":false,"api_key":{"result":"ok","id":"7f3aK9mQ2xLp","name":"ci-bot","tier":"gold"},
"zones":[
 {"server":"srv0","zone":"per_client","matched":true,"reason":"match set 1 matched","key_hash":"9f86d081884c7d659a2feaa0c55ad015",
  "cost":5,"decision":"denied","limit":100,"remaining":0,"retry_after_ms":5000},
 {"server":"srv0","zone":"login","matched":false,"reason":"no match block matched","remaining":0},
 {"server":"srv0","zone":"by_tier","matched":true,"reason":"no match block","key":"gold","key_hash":"77d3a1b2c4e5f60718293a4b5c6d7e8f",
  "cost":1,"decision":"allowed","limit":1000,"remaining":999,"errors":["cost expression: no such key: size"]}],
"decision":"denied"}`

func TestExplain(t *testing.T) {
	t.Parallel()
	runAPICases(t, []apiCase{
		{
			name: "every flag",
			args: []string{"explain", "--method", "POST", "--url", "https://api.example.com/v1/items?x=1&y=2",
				"--header", "X-API-Key: rwk_live_7f3a_S3cr3t", "--header", "accept: text/html",
				"--header", "Accept:application/json ", "--remote-addr", "203.0.113.7:51234", "--server", "srv0"},
			reply: reply{Body: explanationJSON},
			want: request{Method: "POST", Path: "/rate_limit/v1/explain",
				Body: `{"method":"POST","url":"https://api.example.com/v1/items?x=1&y=2",` +
					`"headers":{"X-Api-Key":["rwk_live_7f3a_S3cr3t"],"Accept":["text/html","application/json"]},` +
					`"remote_addr":"203.0.113.7:51234","server":"srv0"}`},
			stdout: "" +
				"Decision:  denied\n" +
				"Exempt:    no\n" +
				"API key:   ok: 7f3aK9mQ2xLp (ci-bot, tier gold)\n" +
				"\n" +
				"SERVER  ZONE        MATCHED  DECISION  KEY            COST  LIMIT  REMAINING  RETRY AFTER  REASON\n" +
				"srv0    per_client  yes      denied    9f86d081884c…  5     100    0          5s           match set 1 matched\n" +
				"srv0    login       no       -         -              -     -      -          -            no match block matched\n" +
				"srv0    by_tier     yes      allowed   \"gold\"         1     1000   999        0s           no match block\n" +
				"\n" +
				"Errors:\n" +
				"  srv0/by_tier: cost expression: no such key: size\n",
		},
		{
			name:   "defaults, exempt",
			args:   []string{"explain", "--url", "http://localhost/health"},
			reply:  reply{Body: `{"exempt":true,"zones":[],"decision":"exempt"}`},
			want:   request{Method: "POST", Path: "/rate_limit/v1/explain", Body: `{"method":"GET","url":"http://localhost/health"}`},
			stdout: "Decision:  exempt\nExempt:    yes\n",
		},
		{
			name:  "an API key that failed",
			args:  []string{"explain", "--url", "http://localhost/", "--header", "X-API-Key: bogus"},
			reply: reply{Body: `{"exempt":false,"api_key":{"result":"malformed"},"zones":[],"decision":"allowed"}`},
			want: request{Method: "POST", Path: "/rate_limit/v1/explain",
				Body: `{"method":"GET","url":"http://localhost/","headers":{"X-Api-Key":["bogus"]}}`},
			stdout: "Decision:  allowed\nExempt:    no\nAPI key:   malformed\n",
		},
	})
}

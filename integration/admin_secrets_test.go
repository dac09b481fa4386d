package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secretsSite takes API keys from X-API-Key, Authorization: Bearer and the
// api_key query parameter, limits each key to 3 a minute with log_key (so
// refusals are logged with the key id), and writes an access log.
func secretsSite(accessLog string) string {
	return fmt.Sprintf(`log {
	output file %s
	format json
}
rate_limit {
	api_key {
		header X-API-Key
		bearer
		query api_key
		require
		failure_limit 1000 1m
	}
	zone per_key {
		key {http.rate_limit.api_key.id}
		limit 3 1m
		log_key
	}
}
respond "ok {http.rate_limit.api_key.name}"`, accessLog)
}

// secretForms are the strings that must not leak for one token: the token,
// its random part (after "rwk_<id>_") and its SHA-256, the stored hash.
type secretForms struct {
	token, random, hash string
}

func formsOf(token string) secretForms {
	sum := sha256.Sum256([]byte(token))
	return secretForms{token: token, random: token[len("rwk_")+12+1:][:43], hash: hex.EncodeToString(sum[:])}
}

// Secrets and their hashes appear in no log line (Caddy's whole output,
// with the audit log; the access log), in no admin API response but the
// create or rotate response that issued them (hashes: but the export), and
// not in /metrics, after keys were created, rotated, revoked and used in
// headers and query strings, rightly and wrongly.
func TestAdminNoSecretLeaks(t *testing.T) {
	t.Parallel()
	accessLog := filepath.Join(t.TempDir(), "access.log")
	c := Start(t, Config{Site: secretsSite(accessLog)})
	a := newAdminAPI(t, c)

	ka, kb, kc := a.createKey(t, "alpha"), a.createKey(t, "bravo"), a.createKey(t, "charlie")
	var a2, c2 issuedKey
	a.call(t, http.StatusOK, "POST", "/keys/"+ka.Key.ID+"/rotate", `{"grace":"1s"}`).decode(t, &a2)
	a.call(t, http.StatusOK, "POST", "/keys/"+kc.Key.ID+"/rotate", nil).decode(t, &c2)
	a.call(t, http.StatusOK, "POST", "/keys/"+kb.Key.ID+"/revoke", nil)
	tokens := []string{ka.Secret, a2.Secret, kb.Secret, kc.Secret, c2.Secret}
	issuing := map[int]bool{} // indexes of the replies that issued secrets
	for i, r := range a.all() {
		if r.Status < 300 && (r.Operation == "POST "+adminBase+"/keys" || r.Operation == "POST "+adminBase+"/keys/{id}/rotate") {
			issuing[i] = true
		}
	}
	if len(issuing) != 5 {
		t.Fatalf("%d issuing replies, want 5", len(issuing))
	}

	// Wrong forms of a real secret: a changed checksum, one character
	// short, and the secret without its prefix.
	tampered := []string{a2.Secret[:len(a2.Secret)-1] + flip(a2.Secret[len(a2.Secret)-1]), a2.Secret[1:], a2.Secret[4:]}
	expect := func(want int, path string, headers ...string) {
		t.Helper()
		if r := c.Get(t, path, headers...); r.Status != want {
			t.Errorf("GET %s %v: %d %q, want %d", path, headers, r.Status, r.Body, want)
		}
	}
	expect(http.StatusOK, "/", "X-API-Key", a2.Secret)
	expect(http.StatusOK, "/?api_key="+url.QueryEscape(a2.Secret))
	expect(http.StatusOK, "/", "Authorization", "Bearer "+ka.Secret) // in grace
	expect(http.StatusTooManyRequests, "/", "X-API-Key", ka.Secret)
	for range 3 {
		expect(http.StatusOK, "/", "X-API-Key", c2.Secret)
	}
	expect(http.StatusTooManyRequests, "/?api_key="+url.QueryEscape(c2.Secret))
	expect(http.StatusTooManyRequests, "/", "X-API-Key", kc.Secret) // in the default 24h grace
	expect(http.StatusUnauthorized, "/", "X-API-Key", kb.Secret)
	expect(http.StatusUnauthorized, "/?api_key="+url.QueryEscape(kb.Secret))
	expect(http.StatusUnauthorized, "/", "Authorization", "Bearer "+kb.Secret)
	for _, bad := range tampered {
		expect(http.StatusUnauthorized, "/", "X-API-Key", bad)
		expect(http.StatusUnauthorized, "/?api_key="+url.QueryEscape(bad))
	}
	time.Sleep(time.Until(*a2.Key.GraceUntil) + 50*time.Millisecond)
	expect(http.StatusUnauthorized, "/", "X-API-Key", ka.Secret) // grace over

	// Admin reads, explanations and refusals that see the secrets.
	a.call(t, http.StatusOK, "GET", "/keys", nil)
	for _, k := range []issuedKey{ka, kb, kc} {
		a.call(t, http.StatusOK, "GET", "/keys/"+k.Key.ID, nil)
		a.call(t, http.StatusOK, "GET", "/zones/per_key/keys?key="+k.Key.ID, nil)
	}
	// Explanations go around the validator: TestAdminOpenAPIExplainWithoutRequiredKey
	// judges their shape; here only their text matters.
	var explained []string
	for i, tok := range append(tokens, tampered...) {
		for _, req := range []map[string]any{
			{"method": "GET", "url": c.URL + "/", "headers": map[string][]string{"X-API-Key": {tok}}},
			{"method": "GET", "url": c.URL + "/", "headers": map[string][]string{"Authorization": {"Bearer " + tok}}},
			{"method": "GET", "url": c.URL + "/?api_key=" + url.QueryEscape(tok)},
		} {
			explained = append(explained, explainRaw(t, c, req))
		}
		a.call(t, http.StatusBadRequest, "POST", "/explain", map[string]any{"method": tok, "url": c.URL})
		a.call(t, http.StatusBadRequest, "PUT", "/zones/per_key/keys/override", map[string]any{"key": tok, "limit": "x"})
		if i == 0 || i == len(tokens) { // POST /keys counts against the admin client limit
			a.call(t, http.StatusBadRequest, "POST", "/keys", map[string]any{"name": tok, "owner": strings.Repeat(tok, 4)})
		}
		a.call(t, http.StatusBadRequest, "POST", "/import", map[string]any{"version": 1, "api_keys": []any{map[string]any{"id": tok}}})
	}
	for _, path := range []string{"/zones", "/zones/per_key", "/zones/per_key/top", "/overrides", "/health"} {
		a.call(t, http.StatusOK, "GET", path, nil)
	}
	export := a.call(t, http.StatusOK, "GET", "/export", nil)
	exportOp := "GET " + adminBase + "/export"

	// Where to look.
	type source struct {
		name     string
		text     string
		hashesOK bool // the export holds secret hashes by design
	}
	var sources []source
	for i, r := range a.all() {
		if issuing[i] {
			continue
		}
		sources = append(sources, source{name: fmt.Sprintf("admin reply %s %s -> %d", r.Method, r.Path, r.Status),
			text: string(r.Body), hashesOK: r.Operation == exportOp})
	}
	for i, e := range explained {
		sources = append(sources, source{name: fmt.Sprintf("explanation %d", i+1), text: e})
	}
	metrics := adminGet(t, c, "/metrics")
	sources = append(sources, source{name: "/metrics", text: metrics})
	output := c.Log()
	for i, l := range strings.Split(output, "\n") {
		sources = append(sources, source{name: fmt.Sprintf("caddy output line %d", i+1), text: l})
	}
	access, echoed := accessLogWithoutEcho(t, accessLog)
	for i, l := range access {
		sources = append(sources, source{name: fmt.Sprintf("access log line %d", i+1), text: l})
	}

	// The scan must have had something to read.
	if n := strings.Count(output, `"logger":"rate_limit.audit"`); n < 6 {
		t.Errorf("%d audit lines in Caddy's output, want at least 6", n)
	}
	if !strings.Contains(output, `"msg":"rate limit exceeded"`) {
		t.Error("no refusal was logged")
	}
	if len(access) < 15 || !strings.Contains(metrics, "caddy_rate_limit_") {
		t.Errorf("access log: %d lines; metrics hold rate_limit series: %v", len(access), strings.Contains(metrics, "caddy_rate_limit_"))
	}
	t.Logf("scanned %d sources; %d access log lines echoed a presented key in request.uri or request.headers.X-Api-Key (Caddy's request log)", len(sources), echoed)

	for _, tok := range tokens {
		f := formsOf(tok)
		for _, s := range sources {
			for what, needle := range map[string]string{"token": f.token, "random part": f.random, "hash": f.hash} {
				if what == "hash" && s.hashesOK {
					continue
				}
				if strings.Contains(s.text, needle) {
					t.Errorf("%s holds a secret's %s: %.400s", s.name, what, s.text)
				}
			}
		}
	}
	if !strings.Contains(string(export.Body), formsOf(c2.Secret).hash) {
		t.Error("the export lacks the current secret's hash: the hash scan looks for the wrong form")
	}
}

// flip returns another base62 character than b.
func flip(b byte) string {
	if b == 'a' {
		return "b"
	}
	return "a"
}

// explainRaw posts req to /explain and returns the body of its 200.
func explainRaw(t testing.TB, c *Caddy, req map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(req)
	resp, err := c.Client.Post(c.Admin+adminBase+"/explain", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("POST /explain: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /explain: %d %v: %s", resp.StatusCode, err, b)
	}
	return string(b)
}

// adminGet reads path from c's admin endpoint.
func adminGet(t testing.TB, c *Caddy, path string) string {
	t.Helper()
	resp, err := c.Client.Get(c.Admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(b)
}

// accessLogWithoutEcho reads a JSON access log and drops from each line
// the two places where Caddy itself repeats what the client sent, before
// any handler runs: request.uri (the query string) and the X-Api-Key
// request header. (Caddy redacts Authorization itself.) It returns the
// remaining lines, re-encoded, and how many lines had anything dropped.
func accessLogWithoutEcho(t testing.TB, path string) ([]string, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the access log: %v", err)
	}
	var out []string
	echoed := 0
	for _, m := range jsonLines(t, b) {
		req, _ := m["request"].(map[string]any)
		hdr, _ := req["headers"].(map[string]any)
		if strings.Contains(fmt.Sprint(req["uri"]), "api_key=") || hdr["X-Api-Key"] != nil {
			echoed++
		}
		delete(req, "uri")
		delete(hdr, "X-Api-Key")
		line, _ := json.Marshal(m)
		out = append(out, string(line))
	}
	return out, echoed
}

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/ratewarden/ratewarden/admin/openapitest"
)

// adminBase is the admin API's prefix on Caddy's admin endpoint.
const adminBase = "/rate_limit/v1"

// adminAPI calls Ratewarden's admin API on one running Caddy and checks
// every response against the OpenAPI document that instance serves at
// /rate_limit/v1/openapi.json (not the copy in the source tree). It records
// which documented operations and statuses were exercised, and every
// response, for the tests that scan them.
type adminAPI struct {
	c      *Caddy
	v      *openapitest.Validator
	router routers.Router

	mu        sync.Mutex
	exercised map[string]map[int]bool // "METHOD /path/{template}" -> statuses
	replies   []adminReply
}

// adminReply is one fully read admin API response.
type adminReply struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
	// Operation is the documented operation ("GET /rate_limit/v1/keys/{id}"),
	// or "" for a path the document does not have.
	Operation string
}

// newAdminAPI fetches the document c serves and builds the validator from
// those bytes.
func newAdminAPI(t testing.TB, c *Caddy) *adminAPI {
	t.Helper()
	resp, err := c.Client.Get(c.Admin + adminBase + "/openapi.json")
	if err != nil {
		t.Fatalf("fetching the served OpenAPI document: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/openapi.json: status %d, %v: %.300s", adminBase, resp.StatusCode, err, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s/openapi.json: Content-Type %q, want application/json", adminBase, ct)
	}
	v, err := openapitest.New(body)
	if err != nil {
		t.Fatalf("the served OpenAPI document: %v", err)
	}
	router, err := legacy.NewRouter(v.Doc())
	if err != nil {
		t.Fatalf("routing the served OpenAPI document: %v", err)
	}
	a := &adminAPI{c: c, v: v, router: router, exercised: map[string]map[int]bool{}}
	// The document's own fetch is an exchange like any other.
	req, _ := http.NewRequest(http.MethodGet, adminBase+"/openapi.json", nil)
	a.check(t, req, adminReply{Method: http.MethodGet, Path: adminBase + "/openapi.json",
		Status: resp.StatusCode, Header: resp.Header, Body: body})
	return a
}

// call sends body (nil for none; []byte and string are sent as they are,
// anything else as JSON) with Content-Type application/json to path below
// /rate_limit/v1, and fails the test unless the status is want. Extra
// header name/value pairs may follow.
func (a *adminAPI) call(t testing.TB, want int, method, path string, body any, headers ...string) adminReply {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatalf("encoding the request body: %v", err)
		}
	}
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	r := a.send(t, method, path, ct, raw, headers...)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d; body: %.600s", method, path, r.Status, want, r.Body)
	}
	return r
}

// send sends a raw body with the given Content-Type ("" for none) and
// validates the response. It does not judge the status.
func (a *adminAPI) send(t testing.TB, method, path, contentType string, body []byte, headers ...string) adminReply {
	t.Helper()
	if len(headers)%2 != 0 {
		t.Fatal("headers must be name/value pairs")
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, a.c.Admin+adminBase+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.c.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	r := adminReply{Method: method, Path: adminBase + path, Status: resp.StatusCode, Header: resp.Header, Body: got}
	return a.check(t, req, r)
}

// check validates r against the served document, checks what every
// response shares (an X-Request-ID; problem+json errors that repeat it),
// and records the exchange.
func (a *adminAPI) check(t testing.TB, req *http.Request, r adminReply) adminReply {
	t.Helper()
	routed := req.Clone(req.Context())
	u := *req.URL
	u.Scheme, u.Host = "", ""
	routed.URL = &u
	if route, _, err := a.router.FindRoute(routed); err == nil {
		r.Operation = route.Method + " " + route.Path
		if err := a.v.ValidateResponse(req, r.Status, r.Header, r.Body); err != nil {
			t.Errorf("response does not match the served OpenAPI document: %v\nbody: %.600s", err, r.Body)
		}
	}
	id := r.Header.Get("X-Request-ID")
	if id == "" {
		t.Errorf("%s %s -> %d: no X-Request-ID header", r.Method, r.Path, r.Status)
	}
	// Every error is a problem, but for GET /health's 503, which is the
	// health report itself.
	healthReport := r.Operation == "GET "+adminBase+"/health" && r.Status == http.StatusServiceUnavailable &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
	if r.Status >= 400 && !healthReport {
		p := r.problem(t)
		if p.RequestID != id {
			t.Errorf("%s %s -> %d: problem request_id %q, X-Request-ID %q", r.Method, r.Path, r.Status, p.RequestID, id)
		}
		if p.Status != r.Status {
			t.Errorf("%s %s -> %d: problem status %d", r.Method, r.Path, r.Status, p.Status)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Operation != "" {
		if a.exercised[r.Operation] == nil {
			a.exercised[r.Operation] = map[int]bool{}
		}
		a.exercised[r.Operation][r.Status] = true
	}
	a.replies = append(a.replies, r)
	return r
}

// operations lists the document's operations, each with its declared
// statuses ("default" left out), sorted.
func (a *adminAPI) operations() map[string][]int {
	out := map[string][]int{}
	for path, item := range a.v.Doc().Paths.Map() {
		for method, op := range item.Operations() {
			var codes []int
			for code := range op.Responses.Map() {
				var n int
				if _, err := fmt.Sscan(code, &n); err == nil {
					codes = append(codes, n)
				}
			}
			slices.Sort(codes)
			out[method+" "+path] = codes
		}
	}
	return out
}

// all returns every reply so far.
func (a *adminAPI) all() []adminReply {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.replies)
}

// adminProblem is an admin API problem+json body.
type adminProblem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
	Field     string `json:"field"`
	Errors    []struct {
		Field     *string `json:"field"`
		Parameter string  `json:"parameter"`
		Detail    string  `json:"detail"`
	} `json:"errors"`
}

// adminProblemType is the type URI of an admin problem slug.
func adminProblemType(slug string) string {
	return "https://github.com/ratewarden/ratewarden/blob/main/docs/problems.md#" + slug
}

// problem decodes r as a problem+json body, failing the test if it is not
// one.
func (r adminReply) problem(t testing.TB) adminProblem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s %s -> %d: Content-Type %q, want application/problem+json", r.Method, r.Path, r.Status, ct)
	}
	var p adminProblem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Errorf("%s %s -> %d: body is not a problem: %v: %.300s", r.Method, r.Path, r.Status, err, r.Body)
	}
	return p
}

// fields lists the JSON pointers (and "?name" for parameters) a 400 names.
func (p adminProblem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		switch {
		case e.Field != nil:
			out = append(out, *e.Field)
		case e.Parameter != "":
			out = append(out, "?"+e.Parameter)
		}
	}
	return out
}

// decode unmarshals r's body into v.
func (r adminReply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s %s: decoding %.300s: %v", r.Method, r.Path, r.Body, err)
	}
}

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// apiBase is the admin API's path prefix.
const apiBase = "/rate_limit/v1"

// client talks to the admin API at addr through caddycmd.AdminAPIRequest,
// which knows every admin address form (TCP, unix sockets, fds) and sets
// the Origin header the admin endpoint checks.
type client struct {
	addr string
}

// call sends v (nil for no body) as JSON to path (below apiBase, already
// escaped) with query, and returns the response body. A status of 400 or
// more is returned as *apiError.
func (c client) call(method, path string, query url.Values, v any) ([]byte, error) {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
	}
	return c.send(method, path, query, body)
}

// send is call with a body already encoded (nil for none).
func (c client) send(method, path string, query url.Values, body []byte) ([]byte, error) {
	uri, rawQuery := apiBase+path, ""
	if len(query) > 0 {
		rawQuery = "?" + query.Encode()
		uri += rawQuery
	}
	var r io.Reader // a nil interface, so that no Content-Type is set
	if body != nil {
		r = bytes.NewReader(body)
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, uri, nil, r)
	if err != nil {
		if apiErr := parseAdminError(err); apiErr != nil {
			return nil, apiErr
		}
		// The error quotes the URL; a raw key in its query may be a
		// credential (a zone can key on an API key header), so it goes.
		msg := err.Error()
		if rawQuery != "" {
			msg = strings.ReplaceAll(msg, rawQuery, "?…")
		}
		return nil, fmt.Errorf("reaching the admin API at %s (is Caddy running there?): %s", c.addr, msg)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's response from %s: %w", c.addr, err)
	}
	return out, nil
}

// adminErrorPrefix starts the error AdminAPIRequest returns for a status of
// 400 or more; the status and the response body follow.
const adminErrorPrefix = "caddy responded with error: HTTP "

// parseAdminError recovers the status and body from AdminAPIRequest's
// error for a status of 400 or more, or returns nil for any other error.
func parseAdminError(err error) *apiError {
	rest, ok := strings.CutPrefix(err.Error(), adminErrorPrefix)
	if !ok {
		return nil
	}
	code, body, ok := strings.Cut(rest, ": ")
	status, convErr := strconv.Atoi(code)
	if !ok || convErr != nil {
		return nil
	}
	return &apiError{Status: status, Body: []byte(body)}
}

// apiError is an admin API response with a status of 400 or more.
type apiError struct {
	Status int
	Body   []byte
}

// problem is an application/problem+json body (RFC 9457) as Ratewarden's
// admin API writes it, or Caddy's own admin error body ({"error": "..."}).
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// Field is a JSON pointer to the request field at fault.
	Field string `json:"field"`
	// Error is Caddy's admin error message.
	Error string `json:"error"`
}

// Error is one line: "<title>: <detail> (field /x)" for a problem, the
// message for a Caddy admin error, else the status and the start of the
// body.
func (e *apiError) Error() string {
	status := "HTTP " + strconv.Itoa(e.Status)
	if text := http.StatusText(e.Status); text != "" {
		status += " " + text
	}
	var p problem
	if json.Unmarshal(e.Body, &p) != nil || p.Title == "" && p.Detail == "" && p.Error == "" {
		body := strings.TrimSpace(string(e.Body))
		if body == "" {
			return status
		}
		return status + ": " + oneLine(body, 200)
	}
	title := p.Title
	if title == "" {
		title = status
	}
	msg := title
	for _, s := range []string{p.Detail, p.Error} {
		if s != "" && s != title {
			msg += ": " + s
		}
	}
	if p.Field != "" {
		msg += " (field " + p.Field + ")"
	}
	return oneLine(msg, 500)
}

// oneLine joins s's lines and cuts it to at most max bytes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		for max > 0 && !utf8.RuneStart(s[max]) {
			max--
		}
		s = s[:max] + "…"
	}
	return s
}

// keyQuery is the query naming a raw key.
func keyQuery(key string) url.Values { return url.Values{"key": {key}} }

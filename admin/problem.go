package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/control"
)

// problemBase is where every problem type of the admin API is documented.
const problemBase = "https://github.com/ratewarden/ratewarden/blob/main/docs/problems.md#"

// Problem type slugs: each is a section of docs/problems.md.
const (
	slugNotConfigured    = "admin-not-configured"
	slugUnavailable      = "admin-unavailable"
	slugNotFound         = "admin-not-found"
	slugMethodNotAllowed = "admin-method-not-allowed"
	slugConflict         = "admin-conflict"
	slugInvalidRequest   = "admin-invalid-request"
	slugMalformedJSON    = "admin-malformed-json"
	slugInvalidUTF8      = "admin-invalid-utf8"
	slugBodyTooLarge     = "admin-body-too-large"
	slugUnsupportedMedia = "admin-unsupported-media-type"
	slugRateLimited      = "admin-rate-limited"
	slugInternal         = "admin-internal-error"
)

// problem is an application/problem+json body (RFC 9457). Field and Errors
// are extension members naming the request fields at fault; RequestID
// repeats the X-Request-ID response header and identifies the occurrence.
// There is no instance member: the path could hold a pasted token.
type problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	Field     *string        `json:"field,omitempty"`
	Errors    []fieldProblem `json:"errors,omitempty"`

	// retryAfter, when set, becomes the Retry-After header (seconds).
	retryAfter int
	// allow, when set, becomes the Allow header of a 405.
	allow []string
	// cause is logged for a 5xx, never sent.
	cause error
}

// fieldProblem names one field at fault: Field is a JSON pointer into the
// request body ("" is the whole body); Parameter names a query or path
// parameter instead.
type fieldProblem struct {
	Field     *string `json:"field,omitempty"`
	Parameter string  `json:"parameter,omitempty"`
	Detail    string  `json:"detail"`
}

func ptrString(s string) *string { return &s }

func newProblem(status int, slug, detail string) *problem {
	return &problem{Type: problemBase + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}

// invalidProblem is a 400 naming every field at fault, in the errors
// member and in the detail.
func invalidProblem(fields []fieldProblem) *problem {
	p := newProblem(http.StatusBadRequest, slugInvalidRequest, "")
	p.Errors = fields
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		switch {
		case f.Parameter != "":
			parts = append(parts, "query parameter "+f.Parameter+": "+f.Detail)
		case f.Field != nil && *f.Field == "":
			parts = append(parts, "request body: "+f.Detail)
		case f.Field != nil:
			parts = append(parts, *f.Field+": "+f.Detail)
		}
		if p.Field == nil && f.Field != nil {
			p.Field = f.Field
		}
	}
	p.Detail = strings.Join(parts, "; ")
	return p
}

func internalProblem(err error) *problem {
	p := newProblem(http.StatusInternalServerError, slugInternal, "the admin API failed; the server log has the cause")
	p.cause = err
	return p
}

// errorProblem maps an error of the rate_limit app (wrapping one of
// control's sentinel errors) to a problem. what names the object the
// request is about ("zone \"api\"", "API key abc"). The error's text is
// sent only for a conflict (it says what state blocks the change);
// otherwise it could quote a raw key the client sent.
func errorProblem(err error, what string) *problem {
	var fe *control.FieldError
	switch {
	case errors.As(err, &fe):
		return invalidProblem([]fieldProblem{{Field: ptrString(fe.Field), Detail: fe.Reason}})
	case errors.Is(err, control.ErrNotFound):
		return newProblem(http.StatusNotFound, slugNotFound, what+" not found")
	case errors.Is(err, control.ErrConflict):
		return newProblem(http.StatusConflict, slugConflict, conflictDetail(err, what))
	case errors.Is(err, control.ErrInvalid):
		return newProblem(http.StatusBadRequest, slugInvalidRequest, what+": the request is not valid")
	case errors.Is(err, control.ErrUnavailable):
		p := newProblem(http.StatusServiceUnavailable, slugUnavailable, "the store holding control records is unavailable; retry later")
		p.cause = err
		return p
	}
	return internalProblem(err)
}

// conflictDetail is the conflict's own message, such as "rotating API key
// abc: key is revoked: conflict", cut to its reason.
func conflictDetail(err error, what string) string {
	msg := strings.TrimSuffix(err.Error(), ": "+control.ErrConflict.Error())
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if msg == "" || msg == control.ErrConflict.Error() {
		return what + ": the change conflicts with its current state"
	}
	return what + ": " + msg
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, reqID string, p *problem) {
	if p.Status >= 500 && p.cause != nil {
		caddy.Log().Named("admin.api.rate_limit").Error("admin request failed",
			zap.String("request_id", reqID), zap.String("method", r.Method),
			zap.String("path", r.URL.Path), zap.Int("status", p.Status), zap.Error(p.cause))
	}
	p.RequestID = reqID
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"` + problemBase + slugInternal + `","title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if len(p.allow) > 0 {
		h.Set("Allow", strings.Join(p.allow, ", "))
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

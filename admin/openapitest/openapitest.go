// Package openapitest checks HTTP exchanges with the admin API against its
// OpenAPI document, with kin-openapi's openapi3filter. Unit tests of the
// admin package and end-to-end tests against a running Caddy use it alike:
//
//	v, err := openapitest.New(admin.OpenAPI())
//	...
//	v.RequireResponse(t, req, resp.StatusCode, resp.Header, body)
//
// It does not import the admin package, so that admin's own tests can use
// it (they pass the embedded document).
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Validator validates requests and responses against one document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// New loads and validates an OpenAPI 3.1 document.
func New(spec []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI document: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validating the OpenAPI document: %w", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing the OpenAPI document: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// Doc is the loaded document.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// ValidateResponse checks that status, header and body are a response the
// document declares for req's operation. req's URL may be absolute (a
// client request) or a path (a server-side request); only its path and
// method route it. A status the operation does not declare (nor covers
// with default) is an error.
func (v *Validator) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	input, err := v.requestInput(req, nil)
	if err != nil {
		return err
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("%s %s -> %d: %w", req.Method, req.URL.Path, status, err)
	}
	return nil
}

// ValidateRequest checks req with body against the document, as the admin
// API itself does.
func (v *Validator) ValidateRequest(req *http.Request, body []byte) error {
	input, err := v.requestInput(req, body)
	if err != nil {
		return err
	}
	input.Options = &openapi3filter.Options{MultiError: true, SkipSettingDefaults: true}
	return openapi3filter.ValidateRequest(context.Background(), input)
}

func (v *Validator) requestInput(req *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	r := req.Clone(context.Background())
	if r.Method == http.MethodHead {
		r.Method = http.MethodGet
	}
	// Route by path only: the document has no servers.
	u := *r.URL
	u.Scheme, u.Host = "", ""
	r.URL = &u
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("%s %s is not in the OpenAPI document: %w", req.Method, req.URL.Path, err)
	}
	return &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route}, nil
}

// HasOperation reports whether the document has an operation for req's
// method and path.
func (v *Validator) HasOperation(req *http.Request) bool {
	_, err := v.requestInput(req, nil)
	return err == nil
}

// RequireResponse fails tb unless the response is valid.
func (v *Validator) RequireResponse(tb testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	tb.Helper()
	if err := v.ValidateResponse(req, status, header, body); err != nil {
		tb.Errorf("response does not match the OpenAPI document: %v\nbody: %s", err, body)
	}
}

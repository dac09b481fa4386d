package admin

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// openapiJSON is the admin API's OpenAPI 3.1 document, written by hand. A
// byte-identical copy lives at docs/openapi.json.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the admin API's OpenAPI 3.1 document (JSON), as served at
// /rate_limit/v1/openapi.json. Tests of a running Caddy validate responses
// against it with the openapitest package.
func OpenAPI() []byte { return bytes.Clone(openapiJSON) }

// loadSpec parses the document once per process: it is a constant, not
// state.
var loadSpec = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapiJSON)
	if err != nil {
		return nil, fmt.Errorf("loading the admin OpenAPI document: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validating the admin OpenAPI document: %w", err)
	}
	return doc, nil
})

// validateRequest checks r's parameters and body (already read, and checked
// to be JSON) against the operation of the route template path (below
// basePath), with kin-openapi's openapi3filter. The operation is taken
// from the route table rather than found by kin-openapi's router, so that
// path parameters are exactly those ServeMux matched (a zone name may hold
// an escaped slash). It returns nil or a 400 problem naming every field at
// fault.
func validateRequest(ctx context.Context, r *http.Request, path string, body []byte) *problem {
	doc, err := loadSpec()
	if err != nil {
		return internalProblem(err)
	}
	item := doc.Paths.Value(basePath + path)
	var op *openapi3.Operation
	if item != nil {
		op = item.GetOperation(r.Method)
		if op == nil && r.Method == http.MethodHead {
			op = item.GetOperation(http.MethodGet)
		}
	}
	if op == nil {
		return internalProblem(fmt.Errorf("%s %s is missing from the OpenAPI document", r.Method, basePath+path))
	}
	params := map[string]string{}
	for _, name := range pathParams(path) {
		params[name] = r.PathValue(name)
	}
	// Validate a copy, so that r's body stays as the handler read it.
	req := r.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = nil
	err = openapi3filter.ValidateRequest(ctx, &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      &routers.Route{Spec: doc, Path: basePath + path, PathItem: item, Method: r.Method, Operation: op},
		Options:    &openapi3filter.Options{MultiError: true, SkipSettingDefaults: true},
	})
	if err == nil {
		return nil
	}
	fields := requestErrors(err)
	if len(fields) == 0 {
		fields = []fieldProblem{{Field: ptrString(""), Detail: "does not match the request schema"}}
	}
	return invalidProblem(fields)
}

// pathParams lists the {names} in a route template.
func pathParams(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			out = append(out, strings.TrimSuffix(name, "}"))
		}
	}
	return out
}

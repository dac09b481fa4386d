package openapitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const spec = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "paths": {
    "/things/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {"responses": {
        "200": {"description": "ok", "content": {"application/json": {"schema": {
          "type": "object", "additionalProperties": false, "required": ["n"], "properties": {"n": {"type": "integer"}}}}}},
        "default": {"description": "error", "content": {"application/problem+json": {"schema": {"type": "object", "required": ["status"]}}}}}}
    }
  }
}`

// TestValidateResponse pins what the helper catches: a body off its
// schema, an undeclared content type and an unknown operation.
func TestValidateResponse(t *testing.T) {
	t.Parallel()
	v, err := New([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	js := http.Header{"Content-Type": {"application/json"}}
	prob := http.Header{"Content-Type": {"application/problem+json"}}
	for _, c := range []struct {
		name, target string
		status       int
		header       http.Header
		body         string
		ok           bool
	}{
		{"valid", "/things/1", 200, js, `{"n":1}`, true},
		{"absolute URL routes by path", "http://localhost:2999/things/1", 200, js, `{"n":1}`, true},
		{"missing field", "/things/1", 200, js, `{}`, false},
		{"unknown field", "/things/1", 200, js, `{"n":1,"x":2}`, false},
		{"wrong type", "/things/1", 200, js, `{"n":"1"}`, false},
		{"error through default", "/things/1", 404, prob, `{"status":404}`, true},
		{"wrong content type", "/things/1", 200, prob, `{"n":1}`, false},
		{"unknown path", "/other", 200, js, `{}`, false},
	} {
		req := httptest.NewRequest(http.MethodGet, c.target, nil)
		err := v.ValidateResponse(req, c.status, c.header, []byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v, want ok %v", c.name, err, c.ok)
		}
	}
	if v.HasOperation(httptest.NewRequest(http.MethodPost, "/things/1", nil)) {
		t.Error("POST /things/1 is not in the document")
	}
	// A path parameter the operation does not declare makes the document
	// invalid.
	if _, err := New([]byte(strings.Replace(spec, `"/things/{id}"`, `"/things/{id}/{other}"`, 1))); err == nil {
		t.Error("an invalid document loaded")
	}
}

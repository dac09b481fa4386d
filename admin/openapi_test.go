package admin

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestDocsCopyOfOpenAPI keeps docs/openapi.json byte-identical to the
// embedded document.
func TestDocsCopyOfOpenAPI(t *testing.T) {
	t.Parallel()
	docs, err := os.ReadFile(filepath.Join("..", "docs", "openapi.json"))
	if err != nil {
		t.Fatalf("reading docs/openapi.json: %v", err)
	}
	if !bytes.Equal(docs, openapiJSON) {
		t.Fatal("docs/openapi.json differs from admin/openapi.json, which is the source: " +
			"edit admin/openapi.json, then run `cp admin/openapi.json docs/openapi.json` from the repository root")
	}
}

// TestOpenAPIMatchesRoutes checks that the document and the route table
// list the same operations.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var routes, documented []string
	for _, ep := range endpoints() {
		routes = append(routes, ep.method+" "+basePath+ep.path)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if !slices.Equal(routes, documented) {
		t.Errorf("routes and document differ:\nroutes:   %v\ndocument: %v", routes, documented)
	}
}

// TestOpenAPIShapes pins the document's rules: request bodies are closed
// objects, and every operation describes its errors as problem+json.
func TestOpenAPIShapes(t *testing.T) {
	t.Parallel()
	doc, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Error("the document is not OpenAPI 3.1")
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.RequestBody != nil {
				schema := op.RequestBody.Value.Content.Get("application/json").Schema.Value
				if ap := schema.AdditionalProperties.Has; ap == nil || *ap {
					t.Errorf("%s: request body allows unknown fields", name)
				}
			}
			def := op.Responses.Default()
			if def == nil || def.Value.Content.Get("application/problem+json") == nil {
				t.Errorf("%s: no problem+json default response", name)
			}
			for code, resp := range op.Responses.Map() {
				if code == "204" {
					continue
				}
				if len(resp.Value.Content) == 0 {
					t.Errorf("%s %s: response has no schema", name, code)
				}
			}
		}
	}
	var names []string
	for name, sc := range doc.Components.Schemas {
		if sc.Value.Type.Is(openapi3.TypeObject) && strings.HasSuffix(name, "Request") {
			names = append(names, name)
		}
	}
	if len(names) < 3 {
		t.Errorf("request schemas %v", names)
	}
}

package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// requestErrors turns an openapi3filter.ValidateRequest error into one
// fieldProblem per failing value. The details never quote a value the client
// sent (a raw key or a token could be one): only field names, types and the
// schema's own limits.
func requestErrors(err error) []fieldProblem {
	var out []fieldProblem
	collectRequestErrors(err, &out)
	return out
}

func collectRequestErrors(err error, out *[]fieldProblem) {
	switch e := err.(type) {
	case openapi3.MultiError:
		for _, sub := range e {
			collectRequestErrors(sub, out)
		}
		return
	case *openapi3filter.RequestError:
		if e.Parameter != nil {
			*out = append(*out, fieldProblem{Parameter: e.Parameter.Name, Detail: parameterDetail(e.Err)})
			return
		}
		if errors.Is(e.Err, openapi3filter.ErrInvalidRequired) {
			*out = append(*out, fieldProblem{Field: ptrString(""), Detail: "a request body is required"})
			return
		}
		n := len(*out)
		collectSchemaErrors(e.Err, out)
		if len(*out) == n {
			*out = append(*out, fieldProblem{Field: ptrString(""), Detail: "does not match the request schema"})
		}
	}
}

// parameterDetail describes what is wrong with a query or path parameter.
func parameterDetail(err error) string {
	switch {
	case errors.Is(err, openapi3filter.ErrInvalidRequired):
		return "required"
	case errors.Is(err, openapi3filter.ErrInvalidEmptyValue):
		return "must not be empty"
	}
	var sub []fieldProblem
	collectSchemaErrors(err, &sub)
	if len(sub) > 0 {
		return sub[0].Detail
	}
	return "invalid"
}

// collectSchemaErrors walks the tree of SchemaErrors under err and reports
// its leaves. An anyOf whose every branch failed only for a missing
// property becomes one "one of ... is required" problem.
func collectSchemaErrors(err error, out *[]fieldProblem) {
	switch e := err.(type) {
	case nil:
		return
	case openapi3.MultiError:
		for _, sub := range e {
			collectSchemaErrors(sub, out)
		}
		return
	case *openapi3.SchemaError:
		if e.Origin == nil {
			*out = append(*out, leafProblems(e)...)
			return
		}
		if e.SchemaField == "anyOf" || e.SchemaField == "oneOf" {
			var sub []fieldProblem
			collectSchemaErrors(e.Origin, &sub)
			if p, ok := oneOfRequired(sub); ok {
				*out = append(*out, p)
				return
			}
			*out = append(*out, sub...)
			return
		}
		n := len(*out)
		collectSchemaErrors(e.Origin, out)
		if len(*out) == n {
			*out = append(*out, leafProblems(e)...)
		}
		return
	}
	if u := errors.Unwrap(err); u != nil {
		collectSchemaErrors(u, out)
	}
}

// oneOfRequired merges the "required" leaves of a failed anyOf.
func oneOfRequired(sub []fieldProblem) (fieldProblem, bool) {
	if len(sub) < 2 {
		return fieldProblem{}, false
	}
	var names []string
	for _, p := range sub {
		if p.Detail != "required" || p.Field == nil {
			return fieldProblem{}, false
		}
		names = append(names, *p.Field)
	}
	return fieldProblem{
		Field:  ptrString(names[0]),
		Detail: "one of " + strings.Join(names, ", ") + " is required",
	}, true
}

// leafProblems describes one failing value: one problem, or one per
// member for a missing or unknown member.
func leafProblems(e *openapi3.SchemaError) []fieldProblem {
	at := pointer(e.JSONPointer())
	var verr *jsonschema.ValidationError
	if !errors.As(e, &verr) || verr.ErrorKind == nil {
		return []fieldProblem{legacyProblem(at, e)}
	}
	var out []fieldProblem
	switch k := verr.ErrorKind.(type) {
	case *kind.Required:
		for _, name := range k.Missing {
			out = append(out, fieldProblem{Field: ptrString(at + "/" + escapeToken(name)), Detail: "required"})
		}
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			out = append(out, memberProblem(at, name, "unknown field"))
		}
	default:
		out = append(out, kindProblem(at, verr, e.Schema))
	}
	return out
}

// kindProblem describes a JSON Schema 2020-12 validator error by its kind.
func kindProblem(at string, verr *jsonschema.ValidationError, schema *openapi3.Schema) fieldProblem {
	p := func(field, detail string) fieldProblem { return fieldProblem{Field: ptrString(field), Detail: detail} }
	switch k := verr.ErrorKind.(type) {
	case *kind.Type:
		return p(at, "must be "+article(strings.Join(k.Want, " or "))+", not "+article(k.Got))
	case *kind.Enum:
		return p(at, "must be one of "+displayValues(k.Want...))
	case *kind.Const:
		return p(at, "must be "+displayValues(k.Want))
	case *kind.Pattern:
		return p(at, patternDetail(schema, k.Want))
	case *kind.Format:
		return p(at, "is not a valid "+k.Want)
	case *kind.MinLength:
		return p(at, fmt.Sprintf("must be at least %d characters long", k.Want))
	case *kind.MaxLength:
		return p(at, fmt.Sprintf("must be at most %d characters long", k.Want))
	case *kind.Minimum:
		return p(at, "must be at least "+ratString(k.Want))
	case *kind.Maximum:
		return p(at, "must be at most "+ratString(k.Want))
	case *kind.ExclusiveMinimum:
		return p(at, "must be greater than "+ratString(k.Want))
	case *kind.ExclusiveMaximum:
		return p(at, "must be less than "+ratString(k.Want))
	case *kind.MinItems:
		return p(at, fmt.Sprintf("must have at least %d item(s)", k.Want))
	case *kind.MaxItems:
		return p(at, fmt.Sprintf("must have at most %d item(s)", k.Want))
	case *kind.MaxProperties:
		return p(at, fmt.Sprintf("must have at most %d members", k.Want))
	case *kind.PropertyNames:
		return memberProblem(at, k.Property, "is not an allowed member name")
	case *kind.Not, *kind.FalseSchema:
		if other, ok := excludedBy(verr.SchemaURL); ok {
			return p(at, "cannot be given together with "+other)
		}
		return p(at, "not allowed here")
	}
	kw := verr.ErrorKind.KeywordPath()
	if len(kw) == 0 {
		return p(at, "does not match the schema")
	}
	return p(at, "does not satisfy "+kw[len(kw)-1])
}

// patternDetail says what a pattern wants: the schema's x-hint ("a Go
// duration, such as 90s"), or the pattern itself.
func patternDetail(schema *openapi3.Schema, pattern string) string {
	if schema != nil {
		if hint, ok := schema.Extensions["x-hint"].(string); ok && hint != "" {
			return "must be " + hint
		}
	}
	return "does not match the pattern " + strconv.Quote(pattern)
}

// excludedBy reads which field excludes this one from the location of a
// dependentSchemas rule ("...#/dependentSchemas/limit/properties/...").
func excludedBy(schemaURL string) (string, bool) {
	_, frag, _ := strings.Cut(schemaURL, "#")
	toks := strings.Split(frag, "/")
	for i := len(toks) - 2; i >= 0; i-- {
		if toks[i] == "dependentSchemas" {
			name, err := url.PathUnescape(strings.NewReplacer("~1", "/", "~0", "~").Replace(toks[i+1]))
			if err != nil {
				return "", false
			}
			return "/" + escapeToken(name), true
		}
	}
	return "", false
}

// legacyProblem describes an error of kin-openapi's OpenAPI 3.0 validator,
// which it falls back to for some schemas. Its reasons never hold the value.
func legacyProblem(at string, e *openapi3.SchemaError) fieldProblem {
	switch e.SchemaField {
	case "required":
		return fieldProblem{Field: ptrString(at), Detail: "required"}
	case "properties":
		if name, ok := quotedIn(e.Reason, "property ", " is unsupported"); ok {
			return memberProblem(at, name, "unknown field")
		}
	case "pattern":
		if e.Schema != nil {
			return fieldProblem{Field: ptrString(at), Detail: patternDetail(e.Schema, e.Schema.Pattern)}
		}
	case "format":
		if e.Schema != nil {
			return fieldProblem{Field: ptrString(at), Detail: "is not a valid " + e.Schema.Format}
		}
	}
	detail := e.Reason
	if detail == "" {
		detail = "does not satisfy " + e.SchemaField
	}
	return fieldProblem{Field: ptrString(at), Detail: detail}
}

// memberProblem names a member the client sent, at the object at, when
// the name looks like a field name. Any other name (a pasted token, say)
// is not repeated: the problem names the object instead.
func memberProblem(at, name, detail string) fieldProblem {
	if fieldLike(name) {
		return fieldProblem{Field: ptrString(at + "/" + escapeToken(name)), Detail: detail}
	}
	return fieldProblem{Field: ptrString(at), Detail: "has a member whose name is not shown: " + detail}
}

// fieldLike reports whether a member name is short and made of letters,
// digits, '_', '-' and '.', and is not an API key token.
func fieldLike(name string) bool {
	if name == "" || len(name) > 40 || strings.HasPrefix(name, "rwk_") {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// quotedIn returns the Go-quoted string between prefix and suffix in s.
func quotedIn(s, prefix, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, suffix)
	if !ok {
		return "", false
	}
	name, err := strconv.Unquote(rest)
	return name, err == nil
}

// pointer builds a JSON pointer (RFC 6901) from unescaped tokens.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapeToken(t))
	}
	return b.String()
}

func escapeToken(t string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(t)
}

func article(s string) string {
	if s == "" {
		return s
	}
	if slices.Contains([]byte("aeiou"), s[0]) {
		return "an " + s
	}
	return "a " + s
}

// displayValues lists schema values (never client values) as JSON.
func displayValues(vs ...any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte("?")
		}
		parts[i] = string(b)
	}
	return strings.Join(parts, ", ")
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "the limit"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

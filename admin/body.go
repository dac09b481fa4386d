package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Request body limits.
const (
	maxBody       = 64 << 10 // bytes, every body but /import's
	maxImportBody = 8 << 20  // bytes, /import
)

// bodyRule says what an endpoint accepts as its body.
type bodyRule struct {
	// max is the largest body in bytes; 0 means the endpoint takes none
	// (a body sent anyway is ignored).
	max int64
	// optional lets the body be empty.
	optional bool
}

// readBody reads and checks r's body before schema validation: its size
// (413), media type (415), encoding (400, invalid UTF-8 named as such) and
// JSON syntax (400). An empty optional body gives nil.
func readBody(w http.ResponseWriter, r *http.Request, rule bodyRule) ([]byte, *problem) {
	if rule.max == 0 {
		return nil, nil
	}
	present := r.Body != nil && r.Body != http.NoBody
	if present && r.ContentLength != 0 {
		if p := checkContentType(r.Header.Get("Content-Type")); p != nil {
			return nil, p
		}
	}
	var body []byte
	if present {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, rule.max))
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				return nil, newProblem(http.StatusRequestEntityTooLarge, slugBodyTooLarge,
					fmt.Sprintf("the request body is larger than %d bytes", rule.max))
			}
			return nil, newProblem(http.StatusBadRequest, slugMalformedJSON, "reading the request body failed")
		}
	}
	if len(body) == 0 {
		if rule.optional {
			return nil, nil
		}
		return nil, invalidProblem([]fieldProblem{{Field: ptrString(""), Detail: "a request body is required"}})
	}
	if !utf8.Valid(body) {
		return nil, newProblem(http.StatusBadRequest, slugInvalidUTF8,
			fmt.Sprintf("the request body is not valid UTF-8 (first invalid byte at offset %d)", invalidUTF8Offset(body)))
	}
	if err := checkJSON(body); err != nil {
		return nil, newProblem(http.StatusBadRequest, slugMalformedJSON, err.Error())
	}
	return body, nil
}

// checkContentType requires application/json, with at most a UTF-8
// charset parameter.
func checkContentType(ct string) *problem {
	unsupported := newProblem(http.StatusUnsupportedMediaType, slugUnsupportedMedia,
		"the request body must be application/json")
	if ct == "" {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return unsupported
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return unsupported
		}
	}
	return nil
}

// checkJSON reports where body stops being one JSON value, without
// quoting it.
func checkJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("the request body is not valid JSON (at offset %d)", syn.Offset)
		}
		return errors.New("the request body is not valid JSON (it ends too early)")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("the request body is not valid JSON (data after the value at offset %d)", dec.InputOffset())
	}
	return nil
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// decodeBody decodes a body that passed schema validation into v. A value
// the schema allows but v cannot hold (such as 1e3 for an integer) is a 400
// naming the field.
func decodeBody(body []byte, v any) *problem {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := ""
		if te.Field != "" {
			field = "/" + strings.ReplaceAll(te.Field, ".", "/")
		}
		return invalidProblem([]fieldProblem{{Field: ptrString(field), Detail: "must be an integer written without a fraction or exponent"}})
	}
	return invalidProblem([]fieldProblem{{Field: ptrString(""), Detail: "holds a value out of range, such as a time with a leap second"}})
}

package ratewarden

import (
	"reflect"
	"strconv"
	"testing"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/caddyserver/caddy/v2"
)

func TestCompileCEL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		want      *cel.Type
		err       string // substring; "" for success
	}{
		{"string with placeholders", `{http.request.header.X-Tenant} + ":" + {http.request.uri.path}`, cel.StringType, ""},
		{"string literal", `"static"`, cel.StringType, ""},
		{"int arithmetic", `2 * 3`, cel.IntType, ""},
		{"int from a placeholder", `int({http.request.header.X-Cost})`, cel.IntType, ""},
		{"ternary", `{http.request.method} == "POST" ? 5 : 1`, cel.IntType, ""},
		{"dyn placeholder is checked at run time", `{http.request.header.X-Cost}`, cel.IntType, ""},
		{"string extension library", `{http.request.uri.path}.lowerAscii()`, cel.StringType, ""},
		{"math extension library", `math.greatest(1, 2)`, cel.IntType, ""},
		{"int where string is wanted", `1 + 2`, cel.StringType, "returns int, want string"},
		{"string where int is wanted", `"a" + "b"`, cel.IntType, "returns string, want int"},
		{"uint where int is wanted", `uint(3)`, cel.IntType, "returns uint, want int"},
		{"bool where int is wanted", `1 == 1`, cel.IntType, "returns bool, want int"},
		{"syntax error", `{http.request.method} ==`, cel.IntType, "compiling CEL expression"},
		{"undeclared name", `nope + 1`, cel.IntType, "undeclared reference"},
		{"Caddy matcher functions are not available", `path("/a")`, cel.StringType, "compiling CEL expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := compileCEL(tc.src, tc.want)
			if tc.err == "" {
				if err != nil || e == nil || e.source != tc.src {
					t.Fatalf("compileCEL(%q) = %v, %v", tc.src, e, err)
				}
				return
			}
			wantErr(t, err, tc.err, strconv.Quote(tc.src))
		})
	}
}

func TestCELEval(t *testing.T) {
	t.Parallel()
	repl := caddy.NewReplacer()
	repl.Set("h.tenant", "acme")
	repl.Set("h.path", "/v1/Items")
	repl.Set("h.cost", "7")
	repl.Set("h.int", 42)
	repl.Set("h.uint", uint64(9))
	repl.Set("h.huge", uint64(1)<<63)
	repl.Set("h.neg", -3)
	for _, tc := range []struct {
		name, src string
		str       bool // a string expression; otherwise int
		want      any  // string or int64; nil when it must fail
	}{
		{"placeholders", `{h.tenant} + ":" + {h.path}`, true, "acme:/v1/Items"},
		{"missing placeholder is empty", `"[" + {h.missing} + "]"`, true, "[]"},
		{"escaped placeholder is literal", `"\{h.tenant}"`, true, "{h.tenant}"},
		{"placeholder at the start and after an escape", `{h.tenant} + "\{lit}" + {h.tenant}`, true, "acme{lit}acme"},
		{"string functions", `{h.path}.lowerAscii()`, true, "/v1/items"},
		{"string expression returning an int placeholder", `{h.int}`, true, nil},
		{"runtime error", `{h.path}.substring(100)`, true, nil},
		{"int from a string placeholder", `int({h.cost}) * 2`, false, int64(14)},
		{"int placeholder", `{h.int}`, false, int64(42)},
		{"negative int", `{h.neg}`, false, int64(-3)},
		{"uint placeholder converts", `{h.uint}`, false, int64(9)},
		{"uint too large", `{h.huge}`, false, nil},
		{"string placeholder is not an int", `{h.cost}`, false, nil},
		{"int conversion of text fails", `int({h.tenant})`, false, nil},
		{"division by zero", `1 / (int({h.cost}) - 7)`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := cel.IntType
			if tc.str {
				want = cel.StringType
			}
			e, err := compileCEL(tc.src, want)
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if tc.str {
				got, err = e.evalString(repl)
			} else {
				got, err = e.evalInt(repl)
			}
			if tc.want == nil {
				if err == nil {
					t.Errorf("%s = %v, want an error", tc.src, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%s = %v (%v), want %v", tc.src, got, err, tc.want)
			}
		})
	}
}

func TestCELRequestValue(t *testing.T) {
	t.Parallel()
	repl, other := caddy.NewReplacer(), caddy.NewReplacer()
	req := celRequest{repl}
	if v, ok := req.ResolveName("req"); !ok || v != req {
		t.Errorf("req resolves to %v, %v", v, ok)
	}
	if _, ok := req.ResolveName("request"); ok {
		t.Error("an unknown variable resolved")
	}
	if req.Parent() != nil || req.Type() != celRequestType || req.Value() != req {
		t.Error("activation or value accessors are wrong")
	}
	if req.Equal(celRequest{repl}) != types.True || req.Equal(celRequest{other}) != types.False || req.Equal(types.String("x")) != types.False {
		t.Error("Equal does not compare replacers")
	}
	if _, err := req.ConvertToNative(reflect.TypeFor[string]()); err == nil {
		t.Error("req converted to a native value")
	}
	if !types.IsError(req.ConvertToType(types.StringType)) {
		t.Error("req converted to a CEL type")
	}
	// ph() rejects arguments the placeholder sugar never produces.
	if !types.IsError(placeholderValue(types.String("x"), types.String("y"))) {
		t.Error("ph accepted a first argument that is not req")
	}
	if !types.IsError(placeholderValue(req, types.Int(1))) {
		t.Error("ph accepted a placeholder name that is not a string")
	}
}

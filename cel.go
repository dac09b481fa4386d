package ratewarden

import (
	"fmt"
	"reflect"
	"regexp"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"github.com/caddyserver/caddy/v2"
)

// celExpr is a CEL expression that computes a zone's key (a string) or cost
// (an int) from a request's placeholders. Boolean match expressions reuse
// Caddy's own expression matcher instead.
//
// Placeholders are written as in Caddy's expression matcher: {path} becomes
// ph(req, "path"). The environment deliberately has none of Caddy's matcher
// functions: they assume Caddy's private request type.
type celExpr struct {
	source string
	prg    cel.Program
}

// compileCEL compiles source and checks that it returns want (or dyn, which
// is checked again at run time).
func compileCEL(source string, want *cel.Type) (*celExpr, error) {
	expanded := placeholderRegexp.ReplaceAllString(source, placeholderExpansion)
	expanded = escapedPlaceholderRegexp.ReplaceAllString(expanded, escapedPlaceholderExpansion)
	env, err := celEnvironment()
	if err != nil {
		return nil, err
	}
	checked, issues := env.Compile(expanded)
	if issues.Err() != nil {
		return nil, fmt.Errorf("compiling CEL expression %q: %w", source, issues.Err())
	}
	out := checked.OutputType()
	if !out.IsExactType(want) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("CEL expression %q returns %s, want %s", source, out, want)
	}
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("building CEL program %q: %w", source, err)
	}
	return &celExpr{source: source, prg: prg}, nil
}

// evalString evaluates a string expression against the request's replacer.
func (e *celExpr) evalString(repl *caddy.Replacer) (string, error) {
	v, _, err := e.prg.Eval(celRequest{repl})
	if err != nil {
		return "", err
	}
	s, ok := v.Value().(string)
	if !ok {
		return "", fmt.Errorf("expression returned %s, not a string", v.Type().TypeName())
	}
	return s, nil
}

// evalInt evaluates an int expression against the request's replacer.
func (e *celExpr) evalInt(repl *caddy.Replacer) (int64, error) {
	v, _, err := e.prg.Eval(celRequest{repl})
	if err != nil {
		return 0, err
	}
	switch n := v.Value().(type) {
	case int64:
		return n, nil
	case uint64:
		if n > 1<<62 {
			return 0, fmt.Errorf("expression returned %d, too large", n)
		}
		return int64(n), nil
	}
	return 0, fmt.Errorf("expression returned %s, not an int", v.Type().TypeName())
}

func celEnvironment() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("req", celRequestType),
		cel.Function("ph",
			cel.Overload("ph_ratewarden_request_string",
				[]*cel.Type{celRequestType, cel.StringType}, cel.DynType,
				cel.BinaryBinding(placeholderValue))),
		ext.Strings(),
		ext.Math(),
	)
}

// placeholderValue implements ph(req, name).
func placeholderValue(lhs, rhs ref.Val) ref.Val {
	req, ok := lhs.(celRequest)
	if !ok {
		return types.NewErr("ph: first argument must be req")
	}
	name, ok := rhs.(types.String)
	if !ok {
		return types.NewErr("ph: placeholder name must be a string")
	}
	v, _ := req.repl.Get(string(name))
	if v == nil {
		return types.String("")
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

var celRequestType = cel.ObjectType("ratewarden.request")

// celRequest carries a request's replacer into a CEL evaluation. It is both
// the value of the req variable and the activation that resolves it, so an
// evaluation needs no map.
type celRequest struct{ repl *caddy.Replacer }

func (r celRequest) ResolveName(name string) (any, bool) {
	if name == "req" {
		return r, true
	}
	return nil, false
}
func (celRequest) Parent() interpreter.Activation { return nil }
func (r celRequest) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("req cannot be converted to a native value")
}
func (celRequest) ConvertToType(ref.Type) ref.Val { return types.NewErr("req cannot be converted") }
func (r celRequest) Equal(other ref.Val) ref.Val {
	o, ok := other.(celRequest)
	return types.Bool(ok && o.repl == r.repl)
}
func (celRequest) Type() ref.Type { return celRequestType }
func (r celRequest) Value() any   { return r }

// The same placeholder sugar as Caddy's expression matcher: {name} becomes
// ph(req, "name"), and \{name} stays a literal {name}.
var (
	placeholderRegexp           = regexp.MustCompile(`([^\\]|^){([a-zA-Z][\w.-]+)}`)
	placeholderExpansion        = `${1}ph(req, "${2}")`
	escapedPlaceholderRegexp    = regexp.MustCompile(`\\{([a-zA-Z][\w.-]+)}`)
	escapedPlaceholderExpansion = `{${1}}`
)

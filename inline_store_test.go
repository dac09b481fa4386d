package ratewarden

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestCaddyfileInlineStore(t *testing.T) {
	t.Parallel()
	h, err := parseDirective(`rate_limit {
	store memory {
		max_keys 50
	}
	zone z {
		limit 1 1m
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	if h.Store != "" {
		t.Errorf("an inline store set the store name %q", h.Store)
	}
	wantJSON(t, h.StoreConfig, `{"backend":"memory","max_keys":50}`)

	h, err = parseDirective("rate_limit {\n\tstore shared\n\tzone z {\n\t\tlimit 1 1m\n\t}\n}")
	if err != nil || h.Store != "shared" || len(h.StoreConfig) != 0 {
		t.Errorf("store <name>: %q %s %v", h.Store, h.StoreConfig, err)
	}

	for _, tc := range []struct{ name, src, msg string }{
		{"name and block", "rate_limit {\n\tstore memory mine {\n\t}\n}", "wrong argument count"},
		{"no argument", "rate_limit {\n\tstore\n}", "wrong argument count"},
		{"twice", "rate_limit {\n\tstore a\n\tstore memory {\n\t}\n}", "store specified more than once"},
		{"unknown backend", "rate_limit {\n\tstore etcd {\n\t}\n}", `unknown store backend "etcd"`},
		{"bad block", "rate_limit {\n\tstore memory {\n\t\tmax_keys lots\n\t}\n}", "max_keys"},
	} {
		if _, err := parseDirective(tc.src); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.msg)
		}
	}
}

// Two handlers with the same inline store share it; it is one of the
// app's stores, under a name that hides its settings.
func TestInlineStoreIsSharedAndListed(t *testing.T) {
	t.Parallel()
	ctx := newTestContext(t, "")
	zone := uniq("inline")
	js := `{"store_config":{"backend":"memory","max_keys":77},"rate_limits":{"` + zone + `":{"max_events":2,"window":"1m"}}}`
	var hs [2]*Handler
	for i := range hs {
		hs[i] = new(Handler)
		if err := unmarshalStrict(js, hs[i]); err != nil {
			t.Fatal(err)
		}
		if err := hs[i].Provision(ctx); err != nil {
			t.Fatalf("provisioning handler %d: %v", i, err)
		}
	}
	if hs[0].store != hs[1].store {
		t.Error("two handlers with the same inline store got different stores")
	}
	name := hs[0].Store
	if !strings.HasPrefix(name, inlineStorePrefix) || strings.Contains(name, "77") {
		t.Errorf("inline store named %q", name)
	}
	app, err := ctx.App("rate_limit")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := app.(*App).Store(name); err != nil || st != hs[0].store {
		t.Errorf("the app does not list the inline store %q: %v", name, err)
	}
	// Shared counters: the limit of 2 holds across both handlers.
	c := call{}
	if got := c.admitted(t, hs[0], 1) + c.admitted(t, hs[1], 3); got != 2 {
		t.Errorf("admitted %d across two handlers sharing a store, limit 2", got)
	}

	both := new(Handler)
	if err := unmarshalStrict(`{"store":"default","store_config":{"backend":"memory"}}`, both); err != nil {
		t.Fatal(err)
	}
	if err := both.Provision(ctx); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("store and store_config together: %v", err)
	}
}

func unmarshalStrict(js string, h *Handler) error {
	return caddy.StrictUnmarshalJSON([]byte(js), h)
}

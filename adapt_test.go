package ratewarden

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite golden files")

// adaptCaddyfile adapts a Caddyfile to indented JSON.
func adaptCaddyfile(t *testing.T, name string, src []byte) ([]byte, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, _, err := adapter.Adapt(src, map[string]any{"filename": name})
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return json.MarshalIndent(v, "", "\t")
}

// TestGoldenAdapt adapts every Caddyfile under examples/ and compares it
// with the .json golden file beside it (go test -run TestGoldenAdapt -update
// rewrites them).
func TestGoldenAdapt(t *testing.T) {
	files, _ := filepath.Glob("examples/*Caddyfile*")
	more, _ := filepath.Glob("examples/*/*Caddyfile*")
	files = append(files, more...)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".json") {
			continue
		}
		n++
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := adaptCaddyfile(t, f, src)
			if err != nil {
				t.Fatalf("adapting %s: %v", f, err)
			}
			golden := f + ".json"
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("missing golden file (run with -update): %v", err)
			}
			if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
				t.Errorf("%s adapts differently from %s:\n%s", f, golden, got)
			}
		})
	}
	if n == 0 {
		t.Fatal("no example Caddyfiles found")
	}
}

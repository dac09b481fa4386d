package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// documentJSON is an export document, already pretty-printed as the CLI
// writes it.
const documentJSON = `{
  "version": 1,
  "exported_at": "2025-06-01T12:00:00Z",
  "api_keys": [
    {
      "id": "7f3aK9mQ2xLp",
      "name": "ci-bot",
      "created_at": "2025-05-01T12:00:00Z",
      "secrets": [
        {
          "hash": "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
        }
      ]
    }
  ],
  "zone_overrides": [
    {
      "zone": "login",
      "enabled": false,
      "updated_at": "2025-06-01T11:00:00Z"
    }
  ],
  "key_overrides": []
}
`

// importResultJSON is POST /import's answer.
const importResultJSON = `{"created":1,"updated":1,"unchanged":0}`

func TestExportImport(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "ratewarden.json")
	if err := os.WriteFile(file, []byte(documentJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	runAPICases(t, []apiCase{
		{
			name:   "export to the standard output",
			args:   []string{"export"},
			reply:  reply{Body: documentJSON},
			want:   request{Method: "GET", Path: "/rate_limit/v1/export"},
			stdout: documentJSON,
		},
		{
			name:   "import a file",
			args:   []string{"import", file},
			reply:  reply{Body: importResultJSON},
			want:   request{Method: "POST", Path: "/rate_limit/v1/import", Body: documentJSON},
			stdout: "Imported " + file + ": 1 created, 1 updated, 0 unchanged.\n",
		},
		{
			name:   "import the standard input",
			args:   []string{"import", "-"},
			stdin:  documentJSON,
			reply:  reply{Body: importResultJSON},
			want:   request{Method: "POST", Path: "/rate_limit/v1/import", Body: documentJSON},
			stdout: "Imported standard input: 1 created, 1 updated, 0 unchanged.\n",
		},
	})
}

func TestExportToFile(t *testing.T) {
	t.Parallel()
	f := newFakeAdmin(t, reply{Body: `{"version":1,"exported_at":"2025-06-01T12:00:00Z","api_keys":[{"id":"7f3aK9mQ2xLp","name":"ci-bot",` +
		`"created_at":"2025-05-01T12:00:00Z","secrets":[{"hash":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"}]}],` +
		`"zone_overrides":[{"zone":"login","enabled":false,"updated_at":"2025-06-01T11:00:00Z"}],"key_overrides":[]}`})
	for _, tc := range []struct {
		flags  []string
		stdout string
	}{
		{nil, "Exported 1 API key, 1 zone override and 0 key overrides to %s.\n"},
		{[]string{"--json"}, ""},
	} {
		file := filepath.Join(t.TempDir(), "export.json")
		res := runCLI("", append([]string{"--address", f.addr(), "export", "-o", file}, tc.flags...)...)
		if res.err != nil {
			t.Fatalf("%v: %v (%s)", tc.flags, res.err, res.stderr)
		}
		if want := strings.ReplaceAll(tc.stdout, "%s", file); res.stdout != want {
			t.Errorf("%v: stdout %q, want %q", tc.flags, res.stdout, want)
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != documentJSON {
			t.Errorf("%v: file:\n%s\nwant:\n%s", tc.flags, got, documentJSON)
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%v: file mode %v, %v; want 0600", tc.flags, fi.Mode(), err)
		}
	}
}

func TestImportRejectsWhatIsNotADocument(t *testing.T) {
	t.Parallel()
	f := newFakeAdmin(t, reply{Body: importResultJSON})
	dir := t.TempDir()
	notDoc := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(notDoc, []byte(`{"apps":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arg, stdin, want string
	}{
		{notDoc, "", notDoc + " is not an export document"},
		{"-", "not json", "standard input is not an export document"},
		{filepath.Join(dir, "missing.json"), "", "reading the document: open "},
	} {
		res := runCLI(tc.stdin, "--address", f.addr(), "import", tc.arg)
		if res.err == nil || !strings.HasPrefix(res.stderr, "error: "+tc.want) {
			t.Errorf("%s: stderr %q, want it to start %q", tc.arg, res.stderr, "error: "+tc.want)
		}
	}
	if reqs, _ := f.requests(); len(reqs) != 0 {
		t.Errorf("sent %+v, want nothing", reqs)
	}
}

// TestImportProblem shows the admin API's refusal of a document.
func TestImportProblem(t *testing.T) {
	t.Parallel()
	f := newFakeAdmin(t, reply{http.StatusBadRequest,
		`{"title":"Invalid document","status":400,"detail":"unsupported version 9","field":"/version"}`})
	res := runCLI(`{"version":9}`, "--address", f.addr(), "import", "-")
	want := "error: importing standard input: Invalid document: unsupported version 9 (field /version)\n"
	if res.err == nil || res.stderr != want {
		t.Errorf("stderr %q, want %q", res.stderr, want)
	}
}

// Package ui is the admin API's live dashboard: one page whose script and
// stylesheet are embedded in the binary. The page polls the admin API every
// two seconds with same-origin relative fetches ("../zones" from
// /rate_limit/v1/ui/), so it works under any prefix and only through the
// admin endpoint, whose Host and Origin checks it goes through like any
// other client.
//
// Caddy's admin endpoint refuses browser requests in "no-cors" mode, which
// is how a plain <script src> or <link rel=stylesheet> is fetched; the page
// therefore loads its script as a module and its stylesheet with
// crossorigin, which makes both "cors" requests. The endpoint also wants an
// Origin or a Referer on every browser request, so the responses ask for a
// same-origin referrer and never suppress it.
package ui

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every asset: the page runs only its own
// script and stylesheet (nothing inline), fetches only from its own origin,
// and cannot be framed.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"

// Problem types of the errors the handler sends: the admin API's own
// (docs/problems.md).
const (
	problemBase          = "https://github.com/ratewarden/ratewarden/blob/main/docs/problems.md#"
	typeNotFound         = problemBase + "admin-not-found"
	typeMethodNotAllowed = problemBase + "admin-method-not-allowed"
)

// contentTypes maps an asset's extension to its Content-Type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// file is one embedded asset, ready to send.
type file struct {
	body        []byte
	contentType string
}

// handler serves the embedded assets by file name.
type handler struct {
	files map[string]file
}

// Handler serves the dashboard: a path ending in /ui/ is the page
// (index.html) and /ui/<name> one of its files; a path ending in /ui
// redirects to /ui/. Anything else, or a name that is not an asset, is a
// problem+json 404. Only GET and HEAD are allowed.
func Handler() http.Handler {
	h := handler{files: make(map[string]file)}
	entries, _ := fs.ReadDir(assets, "assets")
	for _, e := range entries {
		ct, ok := contentTypes[path.Ext(e.Name())]
		if !ok || e.IsDir() {
			continue
		}
		body, err := assets.ReadFile("assets/" + e.Name())
		if err != nil {
			continue
		}
		h.files[e.Name()] = file{body: body, contentType: ct}
	}
	return h
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		writeProblem(w, http.StatusMethodNotAllowed, typeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	p := r.URL.Path
	if strings.HasSuffix(p, "/ui") {
		// Relative to the request's path: it holds under any prefix.
		http.Redirect(w, r, "ui/", http.StatusMovedPermanently)
		return
	}
	name, ok := assetName(p)
	f, found := h.files[name]
	if !ok || !found {
		writeProblem(w, http.StatusNotFound, typeNotFound, "no dashboard file at "+p)
		return
	}
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.body)
	}
}

// assetName maps a request path to an asset name: ".../ui/" is the page,
// ".../ui/<name>" a file of it. Nothing deeper is served.
func assetName(p string) (string, bool) {
	dir, name := path.Split(p)
	if !strings.HasSuffix(dir, "/ui/") {
		return "", false
	}
	if name == "" {
		return "index.html", true
	}
	return name, true
}

// problem is an application/problem+json body (RFC 9457), shaped like the
// admin API's.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, typ, detail string) {
	body, _ := json.Marshal(problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

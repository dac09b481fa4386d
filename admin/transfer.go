package admin

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ratewarden/ratewarden/control"
)

// documentVersion is the export document format.
const documentVersion = 1

// maxZoneBytes bounds a zone name in bytes, as control stores it.
const maxZoneBytes = 120

// serveExport answers the export document. It holds key hashes, so it is
// not cached.
func serveExport(c *call) {
	keys, ok := c.apiKeys()
	if !ok {
		return
	}
	ovs, ok := c.overrides()
	if !ok {
		return
	}
	zones, keyOvs := ovs.List()
	c.w.Header().Set("Cache-Control", "no-store")
	c.reply(http.StatusOK, control.Document{
		Version:       documentVersion,
		ExportedAt:    c.b.Now().UTC(),
		APIKeys:       orEmpty(keys.Export()),
		ZoneOverrides: orEmpty(zones),
		KeyOverrides:  orEmpty(keyOvs),
	})
}

// importCounts is the import's audit record.
type importCounts struct {
	APIKeys   control.ImportResult `json:"api_keys"`
	Overrides control.ImportResult `json:"overrides"`
}

// serveImport loads a document. The schema and checkDocument validate all
// of it before anything is written; API keys are written first, then
// overrides.
func serveImport(c *call) {
	var doc control.Document
	if !c.decode(&doc) {
		return
	}
	if fields := checkDocument(&doc); len(fields) > 0 {
		c.fail(invalidProblem(fields))
		return
	}
	keys, ok := c.apiKeys()
	if !ok {
		return
	}
	ovs, ok := c.overrides()
	if !ok {
		return
	}
	var counts importCounts
	var err error
	if counts.APIKeys, err = keys.Import(c.r.Context(), doc.APIKeys); err != nil {
		c.failErr(err, "the document's API keys")
		return
	}
	if counts.Overrides, err = ovs.Import(c.r.Context(), doc.ZoneOverrides, doc.KeyOverrides); err != nil {
		c.audit(control.ActionImport, "import", nil, counts)
		c.failErr(err, "the document's overrides")
		return
	}
	c.audit(control.ActionImport, "import", nil, counts)
	c.reply(http.StatusOK, control.ImportResult{
		Created:   counts.APIKeys.Created + counts.Overrides.Created,
		Updated:   counts.APIKeys.Updated + counts.Overrides.Updated,
		Unchanged: counts.APIKeys.Unchanged + counts.Overrides.Unchanged,
	})
}

// checkDocument finds what the schema cannot say: the same object twice,
// and zone names longer than the store allows in bytes.
func checkDocument(doc *control.Document) []fieldProblem {
	var out []fieldProblem
	dup := func(seen map[string]string, key, ptr string) {
		if first, ok := seen[key]; ok {
			out = append(out, fieldProblem{Field: ptrString(ptr), Detail: "duplicates " + first})
			return
		}
		seen[key] = ptr
	}
	zoneLen := func(zone, ptr string) {
		if len(zone) > maxZoneBytes {
			out = append(out, fieldProblem{Field: ptrString(ptr), Detail: "must be at most " + strconv.Itoa(maxZoneBytes) + " bytes"})
		}
	}
	seen := map[string]string{}
	for i, k := range doc.APIKeys {
		dup(seen, k.ID, "/api_keys/"+strconv.Itoa(i)+"/id")
	}
	seen = map[string]string{}
	for i, z := range doc.ZoneOverrides {
		ptr := "/zone_overrides/" + strconv.Itoa(i) + "/zone"
		zoneLen(z.Zone, ptr)
		dup(seen, z.Zone, ptr)
	}
	seen = map[string]string{}
	for i, k := range doc.KeyOverrides {
		ptr := "/key_overrides/" + strconv.Itoa(i)
		zoneLen(k.Zone, ptr+"/zone")
		dup(seen, k.Zone+"\x00"+strings.ToLower(k.KeyHash), ptr+"/key_hash")
	}
	return out
}

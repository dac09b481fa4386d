package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ratewarden/ratewarden/control"
)

func serveHealth(c *call) {
	h := c.b.Health(c.r.Context())
	if h.Stores == nil {
		h.Stores = map[string]control.StoreHealth{}
	}
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	c.reply(status, h)
}

func serveZones(c *call) {
	zones := c.b.Zones()
	if zones == nil {
		zones = []control.ZoneInfo{}
	}
	for i := range zones {
		zones[i] = normalizeZone(zones[i])
	}
	c.reply(http.StatusOK, zones)
}

func serveZone(c *call) {
	name := c.r.PathValue("zone")
	z, err := c.b.Zone(name)
	if err != nil {
		c.failErr(err, zoneWhat(name))
		return
	}
	c.reply(http.StatusOK, normalizeZone(z))
}

func normalizeZone(z control.ZoneInfo) control.ZoneInfo {
	if z.Servers == nil {
		z.Servers = []string{}
	}
	return z
}

func zoneWhat(name string) string { return "zone " + strconv.Quote(name) }

// zoneOverrideRequest is the body of PUT /zones/{zone}/override.
type zoneOverrideRequest struct {
	Limit     *int64     `json:"limit"`
	Burst     *int64     `json:"burst"`
	Mode      string     `json:"mode"`
	Enabled   *bool      `json:"enabled"`
	TTL       string     `json:"ttl"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func serveSetZoneOverride(c *call) {
	name := c.r.PathValue("zone")
	var req zoneOverrideRequest
	if !c.decode(&req) {
		return
	}
	expires, ok := c.expiry(req.TTL, req.ExpiresAt)
	if !ok {
		return
	}
	if _, err := c.b.Zone(name); err != nil {
		c.failErr(err, zoneWhat(name))
		return
	}
	ovs, ok := c.overrides()
	if !ok {
		return
	}
	before, after, err := ovs.SetZone(c.r.Context(), control.ZoneOverride{
		Zone:      name,
		Limit:     req.Limit,
		Burst:     req.Burst,
		Mode:      req.Mode,
		Enabled:   req.Enabled,
		ExpiresAt: expires,
	})
	if err != nil {
		c.failErr(err, "override of "+zoneWhat(name))
		return
	}
	c.audit(control.ActionOverrideSet, "zone_override:"+name, before, after)
	c.reply(http.StatusOK, after)
}

func serveRemoveZoneOverride(c *call) {
	name := c.r.PathValue("zone")
	ovs, ok := c.overrides()
	if !ok {
		return
	}
	before, err := ovs.RemoveZone(c.r.Context(), name)
	if err != nil {
		c.failErr(err, "override of "+zoneWhat(name))
		return
	}
	c.audit(control.ActionOverrideRemoved, "zone_override:"+name, before, nil)
	c.w.WriteHeader(http.StatusNoContent)
}

// expiry turns a ttl (from the backend's clock) or an expires_at into the
// override's expiry; nil means never.
func (c *call) expiry(ttl string, at *time.Time) (*time.Time, bool) {
	if ttl == "" {
		return at, true
	}
	d, err := time.ParseDuration(ttl)
	if err != nil || d <= 0 {
		c.fail(invalidProblem([]fieldProblem{{Field: ptrString("/ttl"), Detail: "must be a positive duration no longer than 290 years"}}))
		return nil, false
	}
	t := c.b.Now().Add(d).UTC()
	return &t, true
}

// keyRef reads the key of /zones/{zone}/keys: ?key=RAW or ?key_hash=HASH,
// exactly one of them.
func (c *call) keyRef() (control.KeyRef, bool) {
	q := c.r.URL.Query()
	ref := control.KeyRef{Raw: q.Get("key"), Hash: q.Get("key_hash")}
	if (ref.Raw == "") == (ref.Hash == "") {
		c.fail(invalidProblem([]fieldProblem{{Parameter: "key", Detail: "give exactly one of the key and key_hash query parameters"}}))
		return ref, false
	}
	return ref, true
}

func serveInspect(c *call) {
	name := c.r.PathValue("zone")
	key, ok := c.keyRef()
	if !ok {
		return
	}
	st, err := c.b.Inspect(c.r.Context(), name, key)
	if err != nil {
		c.failErr(err, zoneWhat(name)+" or its key")
		return
	}
	c.reply(http.StatusOK, st)
}

// serveReset answers 200 with the key's state before the reset, so that
// the operator sees what was forgotten.
func serveReset(c *call) {
	name := c.r.PathValue("zone")
	key, ok := c.keyRef()
	if !ok {
		return
	}
	before, err := c.b.Reset(c.r.Context(), name, key)
	if err != nil {
		c.failErr(err, zoneWhat(name)+" or its key")
		return
	}
	c.audit(control.ActionKeyReset, "key:"+name+"/"+before.KeyHash, before, nil)
	c.reply(http.StatusOK, before)
}

// keyOverrideRequest is the body of PUT /zones/{zone}/keys/override. The
// raw key is in the body or in the key query parameter.
type keyOverrideRequest struct {
	Key        string     `json:"key"`
	Limit      *int64     `json:"limit"`
	Multiplier *float64   `json:"multiplier"`
	Burst      *int64     `json:"burst"`
	TTL        string     `json:"ttl"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

func serveSetKeyOverride(c *call) {
	name := c.r.PathValue("zone")
	var req keyOverrideRequest
	if !c.decode(&req) {
		return
	}
	key, ok := c.rawKey(req.Key)
	if !ok {
		return
	}
	expires, ok := c.expiry(req.TTL, req.ExpiresAt)
	if !ok {
		return
	}
	hash, err := c.b.KeyHash(name, key)
	if err != nil {
		c.failErr(err, zoneWhat(name))
		return
	}
	ovs, ok := c.overrides()
	if !ok {
		return
	}
	before, after, err := ovs.SetKey(c.r.Context(), control.KeyOverride{
		Zone:       name,
		KeyHash:    hash,
		Limit:      req.Limit,
		Multiplier: req.Multiplier,
		Burst:      req.Burst,
		ExpiresAt:  expires,
	})
	if err != nil {
		c.failErr(err, "key override in "+zoneWhat(name))
		return
	}
	c.audit(control.ActionOverrideSet, "key_override:"+name+"/"+hash, before, after)
	c.reply(http.StatusOK, after)
}

// rawKey is the raw key of a key override: from the body or from the key
// query parameter, exactly one of them.
func (c *call) rawKey(fromBody string) (string, bool) {
	q := c.r.URL.Query()
	switch {
	case fromBody != "" && q.Has("key"):
		c.fail(invalidProblem([]fieldProblem{{Field: ptrString("/key"), Detail: "give the key in the body or in the key query parameter, not both"}}))
		return "", false
	case fromBody != "":
		return fromBody, true
	case q.Get("key") != "":
		return q.Get("key"), true
	}
	c.fail(invalidProblem([]fieldProblem{{Field: ptrString("/key"), Detail: "required (in the body or in the key query parameter)"}}))
	return "", false
}

func serveRemoveKeyOverride(c *call) {
	name := c.r.PathValue("zone")
	key, ok := c.keyRef()
	if !ok {
		return
	}
	hash := key.Hash
	if hash == "" {
		var err error
		if hash, err = c.b.KeyHash(name, key.Raw); err != nil {
			c.failErr(err, zoneWhat(name))
			return
		}
	}
	ovs, ok := c.overrides()
	if !ok {
		return
	}
	before, err := ovs.RemoveKey(c.r.Context(), name, hash)
	if err != nil {
		c.failErr(err, "key override in "+zoneWhat(name))
		return
	}
	c.audit(control.ActionOverrideRemoved, "key_override:"+name+"/"+hash, before, nil)
	c.w.WriteHeader(http.StatusNoContent)
}

// overrideList is GET /overrides's body.
type overrideList struct {
	ZoneOverrides []control.ZoneOverride `json:"zone_overrides"`
	KeyOverrides  []control.KeyOverride  `json:"key_overrides"`
}

func serveOverrides(c *call) {
	ovs, ok := c.overrides()
	if !ok {
		return
	}
	zones, keys := ovs.List()
	c.reply(http.StatusOK, overrideList{ZoneOverrides: orEmpty(zones), KeyOverrides: orEmpty(keys)})
}

func serveExplain(c *call) {
	var req control.ExplainRequest
	if !c.decode(&req) {
		return
	}
	ex, err := c.b.Explain(c.r.Context(), req)
	if err != nil {
		c.failErr(err, "the explained request")
		return
	}
	if ex.Zones == nil {
		ex.Zones = []control.ZoneExplain{}
	}
	c.reply(http.StatusOK, ex)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// serveTop answers a zone's most-denied keys, ?n= of them (default 10).
func serveTop(c *call) {
	name := c.r.PathValue("zone")
	n := 10
	if v := c.r.URL.Query().Get("n"); v != "" {
		n, _ = strconv.Atoi(v) // the OpenAPI document checked it: 1 to 64
	}
	top, err := c.b.Top(name, n)
	if err != nil {
		c.failErr(err, zoneWhat(name))
		return
	}
	top.Keys = orEmpty(top.Keys)
	c.reply(http.StatusOK, top)
}

// apiKeys is the API key registry, or false after answering the error.
func (c *call) apiKeys() (*control.Keys, bool) {
	keys, err := c.b.APIKeys()
	if err != nil {
		c.failErr(err, "API keys")
		return nil, false
	}
	return keys, true
}

// overrides is the override registry, or false after answering the error.
func (c *call) overrides() (*control.Overrides, bool) {
	ovs, err := c.b.Overrides()
	if err != nil {
		c.failErr(err, "overrides")
		return nil, false
	}
	return ovs, true
}

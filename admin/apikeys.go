package admin

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ratewarden/ratewarden/control"
)

// defaultGrace is how long a rotated key's old secret keeps working when
// the rotate request gives no grace.
const defaultGrace = 24 * time.Hour

// issuedKey is the answer to create and rotate: the only responses that
// ever hold a secret.
type issuedKey struct {
	Secret string          `json:"secret"`
	Key    control.KeyInfo `json:"key"`
}

func keyWhat(id string) string { return "API key " + strconv.Quote(id) }

func serveListKeys(c *call) {
	keys, ok := c.apiKeys()
	if !ok {
		return
	}
	c.reply(http.StatusOK, orEmpty(keys.List()))
}

func serveKey(c *call) {
	id := c.r.PathValue("id")
	keys, ok := c.apiKeys()
	if !ok {
		return
	}
	info, err := keys.Info(id)
	if err != nil {
		c.failErr(err, keyWhat(id))
		return
	}
	c.reply(http.StatusOK, info)
}

func serveCreateKey(c *call) {
	var spec control.KeySpec
	if !c.decode(&spec) {
		return
	}
	keys, ok := c.apiKeys()
	if !ok {
		return
	}
	secret, info, err := keys.Create(c.r.Context(), spec)
	if err != nil {
		c.failErr(err, "the new API key")
		return
	}
	c.audit(control.ActionKeyCreated, "api_key:"+info.ID, nil, info)
	c.w.Header().Set("Location", basePath+"/keys/"+url.PathEscape(info.ID))
	c.w.Header().Set("Cache-Control", "no-store")
	c.reply(http.StatusCreated, issuedKey{Secret: secret, Key: info})
}

// rotateRequest is the body of POST /keys/{id}/rotate.
type rotateRequest struct {
	Grace string `json:"grace"`
}

func serveRotateKey(c *call) {
	id := c.r.PathValue("id")
	var req rotateRequest
	if !c.decode(&req) {
		return
	}
	grace := defaultGrace
	if req.Grace != "" {
		d, err := time.ParseDuration(req.Grace)
		if err != nil {
			c.fail(invalidProblem([]fieldProblem{{Field: ptrString("/grace"), Detail: "must be a duration no longer than 290 years"}}))
			return
		}
		grace = d
	}
	keys, ok := c.apiKeys()
	if !ok {
		return
	}
	secret, before, after, err := keys.Rotate(c.r.Context(), id, grace)
	if err != nil {
		c.failErr(err, keyWhat(id))
		return
	}
	c.audit(control.ActionKeyRotated, "api_key:"+id, before, after)
	c.w.Header().Set("Cache-Control", "no-store")
	c.reply(http.StatusOK, issuedKey{Secret: secret, Key: after})
}

// EventKeyRevoked is the Caddy event emitted when an API key is revoked
// through the admin API.
const EventKeyRevoked = "rate_limit_key_revoked"

func serveRevokeKey(c *call) {
	id := c.r.PathValue("id")
	keys, ok := c.apiKeys()
	if !ok {
		return
	}
	before, after, err := keys.Revoke(c.r.Context(), id)
	if err != nil {
		c.failErr(err, keyWhat(id))
		return
	}
	c.audit(control.ActionKeyRevoked, "api_key:"+id, before, after)
	c.b.Emit(EventKeyRevoked, keyEventData(after))
	c.reply(http.StatusOK, after)
}

// EventKeyDeleted is the Caddy event emitted when an API key is deleted
// through the admin API.
const EventKeyDeleted = "rate_limit_key_deleted"

// serveDeleteKey removes a revoked or expired key's record for good; a key
// that still works is 409 (revoke it first).
func serveDeleteKey(c *call) {
	id := c.r.PathValue("id")
	keys, ok := c.apiKeys()
	if !ok {
		return
	}
	before, err := keys.Delete(c.r.Context(), id)
	if err != nil {
		c.failErr(err, keyWhat(id))
		return
	}
	c.audit(control.ActionKeyDeleted, "api_key:"+id, before, nil)
	c.b.Emit(EventKeyDeleted, keyEventData(before))
	c.w.WriteHeader(http.StatusNoContent)
}

// keyEventData is the data of a key's Caddy events: its public identity.
func keyEventData(k control.KeyInfo) map[string]any {
	return map[string]any{"key_id": k.ID, "name": k.Name, "owner": k.Owner, "tier": k.Tier}
}

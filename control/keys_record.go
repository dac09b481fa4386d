package control

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on an API key's metadata.
const (
	maxNameLen = 200 // characters, also for owner and tier
	maxLabels  = 64
)

// Key statuses in KeyInfo.Status.
const (
	StatusActive  = "active"
	StatusExpired = "expired"
	StatusRevoked = "revoked"
)

// validateSpec checks what a client gives to create a key.
func validateSpec(spec KeySpec, now time.Time) error {
	if err := checkText("/name", spec.Name, true); err != nil {
		return err
	}
	if err := checkText("/owner", spec.Owner, false); err != nil {
		return err
	}
	if err := checkText("/tier", spec.Tier, false); err != nil {
		return err
	}
	if len(spec.Labels) > maxLabels {
		return &FieldError{Field: "/labels", Reason: "at most " + strconv.Itoa(maxLabels) + " labels"}
	}
	if spec.ExpiresAt != nil && !spec.ExpiresAt.After(now) {
		return &FieldError{Field: "/expires_at", Reason: "must be in the future"}
	}
	return nil
}

// checkText checks a name-like field: at most maxNameLen characters of valid
// UTF-8, and not blank when required.
func checkText(field, s string, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return &FieldError{Field: field, Reason: "required"}
	case !utf8.ValidString(s):
		return &FieldError{Field: field, Reason: "not valid UTF-8"}
	case utf8.RuneCountInString(s) > maxNameLen:
		return &FieldError{Field: field, Reason: "longer than " + strconv.Itoa(maxNameLen) + " characters"}
	}
	return nil
}

// validateKeyRecord checks a stored or imported record. ptr is the JSON
// pointer of the record ("" for a stored one). The reasons never quote a
// hash.
func validateKeyRecord(rec *APIKey, ptr string) error {
	if !validKeyID(rec.ID) {
		return &FieldError{Field: ptr + "/id", Reason: "not a key id (12 base62 characters)"}
	}
	if err := checkText(ptr+"/name", rec.Name, true); err != nil {
		return err
	}
	if len(rec.Secrets) == 0 {
		return &FieldError{Field: ptr + "/secrets", Reason: "at least one secret hash is required"}
	}
	for i, s := range rec.Secrets {
		if len(s.Hash) != 64 {
			return &FieldError{Field: ptr + "/secrets/" + strconv.Itoa(i) + "/hash", Reason: "must be 64 hex characters"}
		}
		if _, err := hex.DecodeString(s.Hash); err != nil {
			return &FieldError{Field: ptr + "/secrets/" + strconv.Itoa(i) + "/hash", Reason: "must be 64 hex characters"}
		}
	}
	return nil
}

// decodeKeyRecord is the key mirror's decoder.
func decodeKeyRecord(_, id string, raw []byte) (*keyEntry, error) {
	var rec APIKey
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("decoding API key: %w", err)
	}
	if err := validateKeyRecord(&rec, ""); err != nil {
		return nil, fmt.Errorf("invalid API key: %w", err)
	}
	if rec.ID != id {
		return nil, fmt.Errorf("invalid API key: %w", &FieldError{Field: "/id", Reason: "differs from the record id"})
	}
	e := &keyEntry{rec: rec, hashes: make([][32]byte, len(rec.Secrets)), raw: raw}
	for i, s := range rec.Secrets {
		hex.Decode(e.hashes[i][:], []byte(s.Hash)) // checked by validateKeyRecord
	}
	e.ident = &Identity{
		ID: rec.ID, Name: rec.Name, Tier: rec.Tier, Owner: rec.Owner,
		Values: [4]any{rec.ID, rec.Name, rec.Tier, rec.Owner},
	}
	return e, nil
}

// buildKeyIndex is the key mirror's index builder.
func buildKeyIndex(entries map[ref]*keyEntry) *keyIndex {
	idx := &keyIndex{byID: make(map[string]*keyEntry, len(entries))}
	for r, e := range entries {
		idx.byID[r.id] = e
	}
	return idx
}

// keyInfo is rec's public view at now.
func keyInfo(rec *APIKey, now time.Time) KeyInfo {
	info := KeyInfo{
		ID:        rec.ID,
		Name:      rec.Name,
		Owner:     rec.Owner,
		Tier:      rec.Tier,
		Labels:    cloneLabels(rec.Labels),
		CreatedAt: rec.CreatedAt,
		ExpiresAt: clonePtr(rec.ExpiresAt),
		RotatedAt: clonePtr(rec.RotatedAt),
		RevokedAt: clonePtr(rec.RevokedAt),
		Status:    statusOf(rec, now),
	}
	if info.Status == StatusActive {
		for _, s := range rec.Secrets[min(1, len(rec.Secrets)):] {
			if s.ExpiresAt != nil && s.ExpiresAt.After(now) &&
				(info.GraceUntil == nil || s.ExpiresAt.After(*info.GraceUntil)) {
				info.GraceUntil = clonePtr(s.ExpiresAt)
			}
		}
	}
	return info
}

// statusOf is rec's status at now: revoked, expired or active.
func statusOf(rec *APIKey, now time.Time) string {
	switch {
	case rec.RevokedAt != nil:
		return StatusRevoked
	case passed(rec.ExpiresAt, now):
		return StatusExpired
	}
	return StatusActive
}

// cloneKey deep-copies rec, so a change to the copy never reaches the
// shared snapshot.
func cloneKey(rec APIKey) APIKey {
	rec.Labels = cloneLabels(rec.Labels)
	rec.ExpiresAt = clonePtr(rec.ExpiresAt)
	rec.RotatedAt = clonePtr(rec.RotatedAt)
	rec.RevokedAt = clonePtr(rec.RevokedAt)
	secrets := make([]SecretHash, len(rec.Secrets))
	for i, s := range rec.Secrets {
		secrets[i] = SecretHash{Hash: s.Hash, ExpiresAt: clonePtr(s.ExpiresAt)}
	}
	rec.Secrets = secrets
	return rec
}

func cloneLabels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Import writes key records (hashes and metadata, as Export returns them).
// Every record is validated before anything is written: an invalid one
// gives a *FieldError whose field points into the export document
// ("/api_keys/3/secrets/0/hash"). Only records that differ from the current
// ones are written, so importing the same document twice changes nothing
// the second time (all Unchanged).
func (k *Keys) Import(ctx context.Context, keys []APIKey) (ImportResult, error) {
	seen := make(map[string]int, len(keys))
	for i := range keys {
		ptr := "/api_keys/" + strconv.Itoa(i)
		if err := validateKeyRecord(&keys[i], ptr); err != nil {
			return ImportResult{}, fmt.Errorf("importing API keys: %w", err)
		}
		if j, dup := seen[keys[i].ID]; dup {
			return ImportResult{}, fmt.Errorf("importing API keys: %w",
				&FieldError{Field: ptr + "/id", Reason: "same id as /api_keys/" + strconv.Itoa(j)})
		}
		seen[keys[i].ID] = i
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	idx := k.m.load()
	var res ImportResult
	var ops []op
	for i := range keys {
		raw, err := json.Marshal(keys[i])
		if err != nil {
			return ImportResult{}, fmt.Errorf("importing API key %s: encoding record: %w", keys[i].ID, err)
		}
		cur := idx.byID[keys[i].ID]
		if cur == nil {
			res.Created++
		} else if old, err := json.Marshal(cur.rec); err == nil && bytes.Equal(old, raw) {
			res.Unchanged++
			continue
		} else {
			res.Updated++
		}
		ops = append(ops, op{ref: ref{KindAPIKeys, keys[i].ID}, raw: raw})
	}
	if err := k.m.write(ctx, ops...); err != nil {
		return ImportResult{}, fmt.Errorf("importing API keys: %w", err)
	}
	return res, nil
}

package control

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeyImportIsIdempotent(t *testing.T) {
	t.Parallel()
	c := newClock()
	src := testKeys(t, newFakeRecords(), c, nil)
	tokA, a := mustCreate(t, src, KeySpec{Name: "a", Labels: map[string]string{"env": "prod"}})
	later := c.Now().Add(time.Hour)
	_, b := mustCreate(t, src, KeySpec{Name: "b", ExpiresAt: &later})
	tokB := mustRotate(t, src, b.ID, time.Minute)
	_, cc := mustCreate(t, src, KeySpec{Name: "c"})
	if _, _, err := src.Revoke(bg, cc.ID); err != nil {
		t.Fatal(err)
	}

	// The document goes through JSON, as it does over the admin API.
	raw, _ := json.Marshal(Document{Version: 1, APIKeys: src.Export()})
	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}

	f := newFakeRecords()
	dst := testKeys(t, f, c, nil)
	res, err := dst.Import(bg, doc.APIKeys)
	if err != nil || res != (ImportResult{Created: 3}) {
		t.Fatalf("first import: %+v, %v", res, err)
	}
	for _, tok := range []string{tokA, tokB} {
		if _, r := dst.Lookup(tok); r != LookupOK {
			t.Fatalf("imported key: Lookup = %v", r)
		}
	}
	if got, _ := dst.Info(cc.ID); got.Status != StatusRevoked {
		t.Fatalf("imported revoked key: %+v", got)
	}

	before, _ := f.get(KindAPIKeys, a.ID)
	res, err = dst.Import(bg, doc.APIKeys)
	if err != nil || res != (ImportResult{Unchanged: 3}) {
		t.Fatalf("second import: %+v, %v", res, err)
	}
	if after, _ := f.get(KindAPIKeys, a.ID); string(after) != string(before) {
		t.Fatal("an unchanged import rewrote a record")
	}
	if res, err := src.Import(bg, doc.APIKeys); err != nil || res != (ImportResult{Unchanged: 3}) {
		t.Fatalf("import into the exporting registry: %+v, %v", res, err)
	}

	for i := range doc.APIKeys {
		if doc.APIKeys[i].ID == a.ID {
			doc.APIKeys[i].Name = "renamed"
		}
	}
	res, err = dst.Import(bg, doc.APIKeys)
	if err != nil || res != (ImportResult{Updated: 1, Unchanged: 2}) {
		t.Fatalf("import with one change: %+v, %v", res, err)
	}
	if got, _ := dst.Info(a.ID); got.Name != "renamed" {
		t.Fatalf("renamed key: %+v", got)
	}
}

func TestKeyImportValidatesEverythingFirst(t *testing.T) {
	t.Parallel()
	good := APIKey{ID: "goodkey00001", Name: "good", Secrets: []SecretHash{{Hash: strings.Repeat("0f", 32)}}}
	with := func(change func(*APIKey)) APIKey {
		k := cloneKey(good)
		k.ID = "otherkey0001"
		change(&k)
		return k
	}
	cases := []struct {
		name  string
		bad   APIKey
		field string
	}{
		{"id must be a key id", with(func(k *APIKey) { k.ID = "short" }), "/api_keys/1/id"},
		{"id must be base62", with(func(k *APIKey) { k.ID = "has:colon:12" }), "/api_keys/1/id"},
		{"name is required", with(func(k *APIKey) { k.Name = "" }), "/api_keys/1/name"},
		{"a secret hash is required", with(func(k *APIKey) { k.Secrets = nil }), "/api_keys/1/secrets"},
		{"hash is 64 characters", with(func(k *APIKey) { k.Secrets[0].Hash = "abcd" }), "/api_keys/1/secrets/0/hash"},
		{"hash is hex", with(func(k *APIKey) { k.Secrets[0].Hash = strings.Repeat("zz", 32) }), "/api_keys/1/secrets/0/hash"},
		{"ids are unique", with(func(k *APIKey) { k.ID = good.ID }), "/api_keys/1/id"},
	}
	for _, tc := range cases {
		f := newFakeRecords()
		k := testKeys(t, f, newClock(), nil)
		_, err := k.Import(bg, []APIKey{good, tc.bad})
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError on %s", tc.name, err, tc.field)
		}
		if n := f.count(KindAPIKeys); n != 0 {
			t.Errorf("%s: %d records written before the invalid one was found", tc.name, n)
		}
	}
}

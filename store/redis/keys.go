package redis

import (
	"encoding/hex"
	"strings"

	"github.com/ratewarden/ratewarden/store"
)

// Key names. A counter lives under
//
//	<prefix>{<zone>:<hex key>}:<algorithm>
//
// for example "rw:{api:0f1e...}:gcra". The braces are a Redis hash tag: on
// Cluster (and in a go-redis Ring) only the part inside decides the slot, so
// all of one counter's keys share a slot and each single-zone Take is one
// script call on one node. The algorithm suffix keeps two algorithms from
// reading each other's state when a reload changes a zone's algorithm: the
// zone starts afresh instead.
//
// A prefix must not contain braces, or it would become the hash tag and put
// every key in one slot. A zone name with braces still gives every counter
// one fixed slot, because the tag is computed the way Redis computes it
// (hashTag); at worst the zone's keys share a slot.

// keyName returns the Redis key of a counter.
func keyName(prefix, zone string, k store.Key, id algID) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(zone) + 2*len(k) + 4 + len(algNames[id]))
	b.WriteString(prefix)
	b.WriteByte('{')
	b.WriteString(zone)
	b.WriteByte(':')
	var buf [2 * len(store.Key{})]byte
	hex.Encode(buf[:], k[:])
	b.Write(buf[:])
	b.WriteString("}:")
	b.WriteString(algNames[id])
	return b.String()
}

// hashTag returns the part of key that Redis Cluster hashes to pick a slot:
// the text between the first '{' and the first '}' after it, when that is
// not empty, and otherwise the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

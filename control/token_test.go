package control

import (
	"hash/crc32"
	"regexp"
	"strings"
	"testing"
)

// forgeToken builds a token for id with the given secret digits and a
// correct checksum: well-formed, but not one the registry issued.
func forgeToken(id, secret string) string {
	body := tokenPrefix + id + "_" + secret
	return body + encodeChecksum(crc32.ChecksumIEEE([]byte(body)))
}

// typo changes the character at i to another base62 character.
func typo(tok string, i int) string {
	b := []byte(tok)
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^rwk_[0-9a-zA-Z]{12}_[0-9a-zA-Z]{49}$`)
	seen := map[string]bool{}
	for range 200 {
		id, err := newKeyID()
		if err != nil {
			t.Fatal(err)
		}
		if !validKeyID(id) {
			t.Fatalf("newKeyID gave an invalid id %q", id)
		}
		tok, err := newToken(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != tokenLen || !shape.MatchString(tok) {
			t.Fatalf("token %q does not have the documented shape", tok)
		}
		got, ok := parseToken(tok)
		if !ok || got != id {
			t.Fatalf("parseToken(%q) = %q, %v; want %q, true", tok, got, ok, id)
		}
		if seen[tok] {
			t.Fatal("two tokens are equal")
		}
		seen[tok] = true
	}
}

func TestTokenChecksumIsCRC32OfTheBody(t *testing.T) {
	t.Parallel()
	tok, _ := newToken("abcdefghijkl")
	body := tok[:tokenLen-checksumLen]
	if want := encodeChecksum(crc32.ChecksumIEEE([]byte(body))); tok[tokenLen-checksumLen:] != want {
		t.Fatalf("checksum %q, want %q", tok[tokenLen-checksumLen:], want)
	}
	if crc32String(body) != crc32.ChecksumIEEE([]byte(body)) {
		t.Fatal("crc32String differs from hash/crc32")
	}
	// The largest CRC still fits the 6 digits.
	if got := encodeChecksum(^uint32(0)); len(got) != checksumLen || got == "000000" {
		t.Fatalf("encodeChecksum(max) = %q", got)
	}
}

func TestParseTokenRejects(t *testing.T) {
	t.Parallel()
	good, _ := newToken("abcdefghijkl")
	flip := func(i int) string { return typo(good, i) }
	cases := map[string]string{
		"empty":                     "",
		"too short":                 good[:tokenLen-1],
		"too long":                  good + "0",
		"other prefix":              "ghp_" + good[4:],
		"no separator after the id": good[:idEnd] + "x" + good[idEnd+1:],
		"non-base62 character":      good[:20] + "-" + good[21:],
		"typo in the secret":        flip(30),
		"typo in the id":            flip(5),
		"typo in the checksum":      flip(tokenLen - 1),
		"surrounding space":         " " + good[:tokenLen-1],
		"lower-case prefix changed": strings.ToUpper(good[:4]) + good[4:],
	}
	for name, tok := range cases {
		if id, ok := parseToken(tok); ok {
			t.Errorf("%s: parseToken accepted %q (id %q)", name, tok, id)
		}
	}
	if _, ok := parseToken(good); !ok {
		t.Fatal("the unmodified token was rejected")
	}
}

func TestHashTokenMatchesStoredHash(t *testing.T) {
	t.Parallel()
	tok, _ := newToken("abcdefghijkl")
	sum := hashToken(tok)
	var want [32]byte
	h := tokenHashHex(tok)
	for i := range want {
		want[i] = byte(base16(h[2*i])<<4 | base16(h[2*i+1]))
	}
	if sum != want {
		t.Fatal("hashToken and tokenHashHex disagree")
	}
}

func base16(c byte) int { return strings.IndexByte("0123456789abcdef", c) }

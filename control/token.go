package control

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math/big"
	"strings"
)

// The token format is documented on Keys: "rwk_", a 12-character base62
// key id, "_", the 32-byte secret as 43 base62 characters, and a
// 6-character base62 CRC-32 of everything before it: 66 characters.
const (
	tokenPrefix = "rwk_"
	keyIDLen    = 12
	secretLen   = 43
	checksumLen = 6
	// idEnd is the index of the '_' after the key id.
	idEnd    = len(tokenPrefix) + keyIDLen
	tokenLen = idEnd + 1 + secretLen + checksumLen
)

const base62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// crcTable is the IEEE CRC-32 table. The checksum is computed over the
// string directly (not through crc32.ChecksumIEEE, whose indirect call makes
// its argument escape), so that Lookup does not allocate.
var crcTable = crc32.MakeTable(crc32.IEEE)

func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crcTable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// base62Val returns c's value in the base62 alphabet, or -1.
func base62Val(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 36
	}
	return -1
}

// encodeChecksum writes crc as checksumLen base62 digits.
func encodeChecksum(crc uint32) string {
	var b [checksumLen]byte
	v := uint64(crc)
	for i := checksumLen - 1; i >= 0; i-- {
		b[i] = base62[v%62]
		v /= 62
	}
	return string(b[:])
}

// parseToken checks a token's shape and checksum and returns its key id
// (a substring of token: no allocation). ok is false for anything that is
// not a well-formed Ratewarden token.
func parseToken(token string) (id string, ok bool) {
	if len(token) != tokenLen || token[:len(tokenPrefix)] != tokenPrefix || token[idEnd] != '_' {
		return "", false
	}
	for i := len(tokenPrefix); i < tokenLen; i++ {
		if i != idEnd && base62Val(token[i]) < 0 {
			return "", false
		}
	}
	var sum uint64
	for i := tokenLen - checksumLen; i < tokenLen; i++ {
		sum = sum*62 + uint64(base62Val(token[i]))
	}
	if sum != uint64(crc32String(token[:tokenLen-checksumLen])) {
		return "", false
	}
	return token[len(tokenPrefix):idEnd], true
}

// validKeyID reports whether id has the form of a key id.
func validKeyID(id string) bool {
	if len(id) != keyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if base62Val(id[i]) < 0 {
			return false
		}
	}
	return true
}

// newKeyID returns a random key id.
func newKeyID() (string, error) {
	var b [keyIDLen]byte
	var buf [32]byte
	n := 0
	for n < keyIDLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("reading randomness: %w", err)
		}
		for _, c := range buf {
			// 248 = 4*62: reject the rest so every digit is equally likely.
			if c < 248 && n < keyIDLen {
				b[n] = base62[c%62]
				n++
			}
		}
	}
	return string(b[:]), nil
}

// newToken returns a fresh token for key id.
func newToken(id string) (string, error) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	digits := new(big.Int).SetBytes(secret[:]).Text(62)
	var sb strings.Builder
	sb.Grow(tokenLen)
	sb.WriteString(tokenPrefix)
	sb.WriteString(id)
	sb.WriteByte('_')
	sb.WriteString(strings.Repeat("0", secretLen-len(digits)))
	sb.WriteString(digits)
	body := sb.String()
	return body + encodeChecksum(crc32String(body)), nil
}

// hashToken returns the SHA-256 of a well-formed token without allocating.
func hashToken(token string) [sha256.Size]byte {
	var b [tokenLen]byte
	copy(b[:], token)
	return sha256.Sum256(b[:len(token)])
}

// tokenHashHex is the stored form of a token's hash.
func tokenHashHex(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

package admin

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/ratewarden/ratewarden/control"
)

// maxRequestIDLen bounds an X-Request-ID the client sends.
const maxRequestIDLen = 128

// requestID is the request's X-Request-ID when it is 1 to 128 visible
// ASCII characters, else a new random id.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-ID"); validRequestID(id) {
		return id
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// actor is who made the request, for the audit log.
func actor(r *http.Request) control.Actor {
	return control.Actor{RemoteAddr: r.RemoteAddr, TLSIdentity: tlsIdentity(r)}
}

// tlsIdentity is the admin client certificate's subject and subject
// alternative names, such as "CN=ops,O=Example (DNS:ops.example.com)", or
// "" without a client certificate.
func tlsIdentity(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	cert := r.TLS.PeerCertificates[0]
	var sans []string
	for _, n := range cert.DNSNames {
		sans = append(sans, "DNS:"+n)
	}
	for _, e := range cert.EmailAddresses {
		sans = append(sans, "email:"+e)
	}
	for _, ip := range cert.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	for _, u := range cert.URIs {
		sans = append(sans, "URI:"+u.String())
	}
	subject := cert.Subject.String()
	switch {
	case len(sans) == 0:
		return subject
	case subject == "":
		return strings.Join(sans, ", ")
	}
	return subject + " (" + strings.Join(sans, ", ") + ")"
}

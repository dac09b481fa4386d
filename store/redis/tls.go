package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLS configures TLS to Redis. A tls block, even an empty one, turns TLS
// on; so does a rediss:// URL. With Sentinel, the sentinels are reached
// with the same settings as the servers.
type TLS struct {
	// CA is a PEM file of the certificate authorities that Redis's server
	// certificate must chain to. Default: the system's roots.
	// Example: "/etc/redis/ca.pem".
	CA string `json:"ca,omitempty"`

	// Cert and Key are PEM files of a client certificate and its private
	// key, for a server that authenticates clients (tls-auth-clients).
	// Give both or neither. Default: none.
	// Example: "/etc/caddy/redis-client.pem", "/etc/caddy/redis-client.key".
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`

	// ServerName is the name the server certificate must carry, when it is
	// not the host of the address. Default: the host of each address.
	// Example: "redis.internal".
	ServerName string `json:"server_name,omitempty"`

	// InsecureSkipVerify accepts any server certificate. The connection is
	// then encrypted but not authenticated: use it only for tests.
	// Default: false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// validate reports a half-given client certificate.
func (t *TLS) validate() error {
	if (t.Cert == "") != (t.Key == "") {
		return errors.New("tls: give both cert and key, or neither")
	}
	return nil
}

// config returns the *tls.Config for t, applied over base when base is not
// nil (a rediss:// URL's). Errors name the files, never their contents.
func (t *TLS) config(base *tls.Config) (*tls.Config, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
		if cfg.MinVersion < tls.VersionTLS12 {
			cfg.MinVersion = tls.VersionTLS12
		}
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("reading tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %q holds no PEM certificate", t.CA)
		}
		cfg.RootCAs = pool
	}
	if t.Cert != "" {
		// X509KeyPair's errors describe the PEM blocks, not their bytes.
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("loading tls client certificate %q and key %q: %w", t.Cert, t.Key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if t.ServerName != "" {
		cfg.ServerName = t.ServerName
	}
	cfg.InsecureSkipVerify = t.InsecureSkipVerify
	return cfg, nil
}

// files returns the files t reads, for the pool key: a rotated
// certificate then builds a new client at the next config load.
func (t *TLS) files() []string {
	if t == nil {
		return nil
	}
	return []string{t.CA, t.Cert, t.Key}
}

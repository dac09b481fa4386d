package redis

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in a temporary directory.
type testPKI struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
	pool                                             *x509.CertPool
}

func newTestPKI(tb testing.TB) *testPKI {
	tb.Helper()
	dir := tb.TempDir()
	p := &testPKI{
		CA: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key"),
		pool: x509.NewCertPool(),
	}
	caKey := newKey(tb)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ratewarden test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.pool.AddCert(ca)
	writePEM(tb, p.CA, "CERTIFICATE", caDER)

	issue := func(serial int64, usage x509.ExtKeyUsage, certFile, keyFile string) {
		k := newKey(tb)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			tb.Fatal(err)
		}
		writePEM(tb, certFile, "CERTIFICATE", der)
		kDER, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		writePEM(tb, keyFile, "EC PRIVATE KEY", kDER)
	}
	issue(2, x509.ExtKeyUsageServerAuth, p.ServerCert, p.ServerKey)
	issue(3, x509.ExtKeyUsageClientAuth, p.ClientCert, p.ClientKey)
	return p
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func writePEM(tb testing.TB, file, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// startTLSServer starts a redis-server that speaks only TLS and requires
// a client certificate and password, stopped when the test ends.
func startTLSServer(tb testing.TB, p *testPKI, password string) *server {
	tb.Helper()
	client, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		tb.Fatal(err)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ready := func() error {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr,
				&tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{client}})
			if err != nil {
				return err
			}
			return pingOver(conn)
		}
		srv, err := startRedisProcess(addr, ready,
			"--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--tls-cert-file", p.ServerCert, "--tls-key-file", p.ServerKey, "--tls-ca-cert-file", p.CA,
			"--tls-auth-clients", "yes", "--requirepass", password,
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "")
		if err == nil {
			tb.Cleanup(srv.stop)
			return srv
		}
		lastErr = err
	}
	tb.Fatalf("starting redis-server with TLS: %v", lastErr)
	return nil
}

func TestTLSConnectsWithTheCAAndFailsClearlyWithout(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	p := newTestPKI(t)
	srv := startTLSServer(t, p, secret)
	good := &TLS{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey}
	r := req(lookup(t, "gcra"), "z", key("tls"), 2, time.Hour, 1)

	decide := func(opts Options) error {
		c, err := NewClient(opts)
		if err != nil {
			return err
		}
		defer c.Close()
		s := New(c, Options{KeyPrefix: fmt.Sprintf("tls%d:", storeSeq.Add(1)), Timeout: caddy.Duration(5 * time.Second)})
		_, err = takeOne(context.Background(), s, r)
		return err
	}

	tests := []struct {
		name string
		opts Options
		want string // a part of the error, or "" for success
	}{
		{"the ca and a client certificate", Options{Addresses: []string{srv.Addr}, Password: secret, TLS: good}, ""},
		{"a rediss url with the tls block", Options{URL: "rediss://:" + secret + "@" + srv.Addr, TLS: good}, ""},
		{"a server name the certificate lacks", Options{Addresses: []string{srv.Addr}, Password: secret,
			TLS: &TLS{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey, ServerName: "redis.internal"}}, "redis.internal"},
		{"without the ca", Options{Addresses: []string{srv.Addr}, Password: secret,
			TLS: &TLS{Cert: p.ClientCert, Key: p.ClientKey}}, "certificate signed by unknown authority"},
		{"insecure_skip_verify without the ca", Options{Addresses: []string{srv.Addr}, Password: secret,
			TLS: &TLS{Cert: p.ClientCert, Key: p.ClientKey, InsecureSkipVerify: true}}, ""},
		{"without tls", Options{Addresses: []string{srv.Addr}, Password: secret}, "taking from redis store"},
		{"a missing ca file", Options{Addresses: []string{srv.Addr}, Password: secret,
			TLS: &TLS{CA: p.CA + ".missing"}}, p.CA + ".missing"},
		{"a ca file that is no certificate", Options{Addresses: []string{srv.Addr}, Password: secret,
			TLS: &TLS{CA: p.ClientKey}}, p.ClientKey + `" holds no PEM certificate`},
		{"a key that is not the certificate's", Options{Addresses: []string{srv.Addr}, Password: secret,
			TLS: &TLS{CA: p.CA, Cert: p.ClientCert, Key: p.ServerKey}}, p.ClientCert},
	}
	keyPEM, _ := os.ReadFile(p.ServerKey)
	for _, tc := range tests {
		err := decide(tc.opts)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		case err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), string(keyPEM[30:60]))):
			t.Errorf("%s: the error holds a secret: %v", tc.name, err)
		}
	}
}

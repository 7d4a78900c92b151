package devcluster

import (
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
	"time"
)

// TLSFiles are the PEM files of a throw-away PKI for a Consul with TLS on:
// a CA, a server certificate for Consul, and a client certificate signed by
// the same CA (what CONSUL_CACERT, CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY
// point to).
type TLSFiles struct {
	Dir        string // the directory holding them all
	CACert     string // the CA's certificate
	CAKey      string // the CA's private key (to sign more certificates)
	ServerCert string // Consul's: 127.0.0.1, ::1, localhost, server.dc1.consul
	ServerKey  string
	ClientCert string // a client's (fleetd, fleetctl), signed by the CA
	ClientKey  string
}

// GenerateTLS writes a new CA, a server certificate and a client certificate
// into dir, with crypto/x509 alone (no openssl needed). The server
// certificate is valid for 127.0.0.1, ::1, localhost and server.dc1.consul
// (the name Consul's verify_server_hostname checks); the certificates last
// a day.
func GenerateTLS(dir string) (*TLSFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f := &TLSFiles{
		Dir:        dir,
		CACert:     filepath.Join(dir, "ca.pem"),
		CAKey:      filepath.Join(dir, "ca-key.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now().Add(-time.Hour) // some slack for clocks
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "fleet test CA"},
		NotBefore:             now,
		NotAfter:              now.Add(25 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := createCert(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	if err := writePEM(f.CACert, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(f.CAKey, caKey); err != nil {
		return nil, err
	}
	leaves := []struct {
		cert, key string
		tmpl      *x509.Certificate
	}{
		{f.ServerCert, f.ServerKey, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "server.dc1.consul"},
			DNSNames:    []string{"server.dc1.consul", "localhost"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			// Servers dial each other's RPC port too: client auth as well.
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}},
		{f.ClientCert, f.ClientKey, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "fleet client"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	for _, l := range leaves {
		if err := issue(l.cert, l.key, l.tmpl, ca, caKey); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// IssueMachine writes a certificate for a fleet machine, signed by the CA,
// into name.pem and name-key.pem beside the others, and returns their
// paths. Like the one "consul tls cert create -client -additional-ipaddress"
// makes, it serves as a client's toward Consul and as a server's for
// fleetctl (fleetd's --api-addr): it names localhost, 127.0.0.1 and ips.
func (f *TLSFiles) IssueMachine(name string, ips ...net.IP) (cert, key string, err error) {
	ca, caKey, err := f.loadCA()
	if err != nil {
		return "", "", err
	}
	cert, key = filepath.Join(f.Dir, name+".pem"), filepath.Join(f.Dir, name+"-key.pem")
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		DNSNames:    []string{"localhost"},
		IPAddresses: append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	return cert, key, issue(cert, key, tmpl, ca, caKey)
}

// loadCA reads the CA's certificate and key back.
func (f *TLSFiles) loadCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(f.CACert, f.CAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("load the CA of %s: %w", f.Dir, err)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("the CA key %s is not ECDSA", f.CAKey)
	}
	return ca, key, nil
}

// issue signs tmpl with the CA for a new key, valid from an hour ago for
// a day, and writes the certificate and the key.
func issue(certPath, keyPath string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.NotBefore = time.Now().Add(-time.Hour) // some slack for clocks
	tmpl.NotAfter = tmpl.NotBefore.Add(25 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := createCert(tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(keyPath, key)
}

func createCert(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// tlsHCL is the Consul configuration serving the HTTP API on HTTPS only,
// requiring a client certificate signed by the CA on every interface.
func (f *TLSFiles) tlsHCL() string {
	return fmt.Sprintf(`tls {
  defaults { ca_file = %q, cert_file = %q, key_file = %q, verify_incoming = true, verify_outgoing = true }
  internal_rpc { verify_server_hostname = true }
}`, f.CACert, f.ServerCert, f.ServerKey)
}

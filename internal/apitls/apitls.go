package apitls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
)

// SchemeMeta is the meta key of a machine's fleet-agent service that holds
// the scheme of its --api-addr: "https", or "http" (also when absent).
const SchemeMeta = "api-scheme"

// ErrNotServed marks a ServerConfig error that turns the TCP endpoints off
// rather than stopping fleetd: Consul is reached over TLS and the
// certificate fleetd would serve by default, Consul's client certificate,
// is missing or would not pass fleetctl's check. A machine upgraded onto
// such a configuration keeps running its units; what fleetd cannot serve
// safely it does not serve at all. A certificate given with --api-cert-file
// is never excused: a mistake there stops fleetd.
var ErrNotServed = errors.New("fleetd serves neither --api-addr (fleetctl status and journal) nor --fleet-api-addr on this machine, which runs its units all the same")

// NotServedScheme is SchemeMeta's value on a machine whose fleetd serves no
// status and journal (ErrNotServed).
const NotServedScheme = "none"

// ServerOptions is what ServerConfig settles TLS from.
type ServerOptions struct {
	Endpoint string // fleetd's Consul endpoint (--endpoint; "" for CONSUL_HTTP_ADDR)
	CertFile string // --api-cert-file
	KeyFile  string // --api-key-file
	PublicIP string // --public-ip, the address fleetctl reaches the machine on
}

// ServerConfig is the TLS configuration fleetd serves its TCP endpoints
// with, nil for plain HTTP (Consul reached over plain HTTP and no
// certificate given).
//
// # Errors
//
// A certificate needed but not given, one that does not load, or one
// fleetctl could not verify: each error says what to set.
func ServerConfig(o ServerOptions) (*tls.Config, error) {
	consul, consulTLS := registry.ConsulTLS(o.Endpoint)
	certFile, keyFile, from := o.CertFile, o.KeyFile, "--api-cert-file and --api-key-file"
	switch {
	case (certFile == "") != (keyFile == ""):
		return nil, errors.New("--api-cert-file and --api-key-file go together: set both, or neither")
	case certFile == "" && !consulTLS:
		return nil, nil
	case certFile == "":
		certFile, keyFile, from = consul.CertFile, consul.KeyFile, "CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY"
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: it reaches Consul over TLS, so it serves them over TLS only, and has no certificate for them: "+
			"set --api-cert-file and --api-key-file (or CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY) to a certificate naming this machine's --public-ip %s, "+
			"signed by the CA fleetctl trusts (CONSUL_CACERT)", ErrNotServed, o.PublicIP)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		err = verifyServed(pair, consul, o.PublicIP)
		if err != nil {
			err = fmt.Errorf("the certificate fleetd serves on --api-addr and --fleet-api-addr (%s: %s) would not pass fleetctl's check: %w; "+
				"it must name this machine's --public-ip, allow server authentication, and be signed by the CA in CONSUL_CACERT when one is set "+
				"(consul tls cert create -client -additional-ipaddress %s makes one), or set --api-cert-file and --api-key-file to one that does",
				from, certFile, err, o.PublicIP)
		}
	} else {
		err = fmt.Errorf("load the certificate fleetd serves on --api-addr and --fleet-api-addr (%s: %s, %s): %w", from, certFile, keyFile, err)
	}
	switch {
	case err != nil && o.CertFile == "":
		return nil, fmt.Errorf("%w: %w", ErrNotServed, err)
	case err != nil:
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// verifyServed checks pair as fleetctl will: for the machine's IP, for
// server authentication, and against the CA fleetd trusts for Consul when
// it names one (CONSUL_CACERT, CONSUL_CAPATH; without one, which CA
// fleetctl trusts is not known here).
func verifyServed(pair tls.Certificate, consul api.TLSConfig, ip string) error {
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	roots, err := rootCAs(consul)
	if err != nil {
		return err
	}
	if roots == nil {
		if err := leaf.VerifyHostname(ip); err != nil {
			return err
		}
		if len(leaf.ExtKeyUsage) > 0 && !slices.ContainsFunc(leaf.ExtKeyUsage, func(u x509.ExtKeyUsage) bool {
			return u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny
		}) {
			return errors.New("x509: certificate specifies an incompatible key usage: it does not allow server authentication")
		}
		return nil
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: ip, Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

// rootCAs is the CA pool of Consul's TLS settings (CONSUL_CACERT,
// CONSUL_CAPATH); nil, the system's, when they name none.
func rootCAs(consul api.TLSConfig) (*x509.CertPool, error) {
	cfg, err := api.SetupTLSConfig(&api.TLSConfig{CAFile: consul.CAFile, CAPath: consul.CAPath, CAPem: consul.CAPem})
	if err != nil {
		return nil, fmt.Errorf("load the CA (CONSUL_CACERT, CONSUL_CAPATH): %w", err)
	}
	return cfg.RootCAs, nil
}

// URL is where a machine's fleet-agent service instance s answers
// fleetctl status and journal, with the scheme the machine publishes
// (never NotServedScheme's machine: ask Served first).
func URL(s *api.CatalogService) string {
	addr := s.ServiceAddress
	if addr == "" {
		addr = s.Address
	}
	scheme := "http"
	if s.ServiceMeta[SchemeMeta] == "https" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(addr, strconv.Itoa(s.ServicePort))
}

// Served reports whether the machine of fleet-agent service instance s
// serves status and journal (ErrNotServed).
func Served(s *api.CatalogService) bool { return s.ServiceMeta[SchemeMeta] != NotServedScheme }

// ErrClearText refuses to send a token over plain HTTP.
var ErrClearText = errors.New("refusing to send your Consul token in clear text")

// Client is the HTTP client fleetctl reaches a machine's endpoint u
// with, given the Consul endpoint it uses (its --endpoint, "" for
// CONSUL_HTTP_ADDR) and whether it sends a token.
//
// # Errors
//
// ErrClearText (wrapped, with what to do) when u is plain HTTP, a token
// would be sent, and fleetctl reaches Consul over TLS; the CA files failing
// to load.
func Client(u, endpoint string, withToken bool) (*http.Client, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	consul, consulTLS := registry.ConsulTLS(endpoint)
	// A redirect would carry the token header along, perhaps to http://.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if pu.Scheme != "https" {
		if consulTLS && withToken {
			return nil, fmt.Errorf("%w: the machine at %s serves status and journal over plain HTTP while fleetctl reaches Consul over TLS; "+
				"that machine's fleetd serves TLS when it reaches Consul over TLS, or when given --api-cert-file and --api-key-file", ErrClearText, u)
		}
		return &http.Client{CheckRedirect: noRedirect}, nil
	}
	roots, err := rootCAs(consul)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	t.TLSHandshakeTimeout = 10 * time.Second
	return &http.Client{Transport: t, CheckRedirect: noRedirect}, nil
}

// VerifyErr says what to set when err is fleetctl failing to verify the
// certificate of the machine at u (nothing was sent then: verifying comes
// before the request), and is nil for any other error.
func VerifyErr(u string, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("cannot verify the TLS certificate of the machine at %s (%v), so fleetctl sent it nothing: "+
			"set CONSUL_CACERT (or CONSUL_CAPATH) to the CA certificate that signed it", u, unknownCA)
	case errors.As(err, &hostname):
		return fmt.Errorf("the TLS certificate of the machine at %s does not name its address (%v), so fleetctl sent it nothing: "+
			"that machine's fleetd must serve a certificate naming its --public-ip", u, hostname)
	case errors.As(err, &verify):
		return fmt.Errorf("cannot verify the TLS certificate of the machine at %s (%v), so fleetctl sent it nothing: "+
			"check its certificate and CONSUL_CACERT", u, verify.Err)
	}
	return nil
}

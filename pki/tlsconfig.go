package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// HostTLS is one meshd's TLS material: the mesh CA and the host's own
// certificate, whose name is the host's.
type HostTLS struct {
	Name string
	// cert is swapped by Reload (meshd's SIGHUP, a renewed certificate):
	// every configuration below hands it out per handshake, so connections
	// opened after a reload present the new one.
	cert atomic.Pointer[tls.Certificate]
	pool *x509.CertPool
}

// LoadHostTLS reads meshd's --ca-file, --cert-file and --key-file and
// checks what a wrong file would otherwise only show at the first
// handshake: the certificate is a host certificate, chains to the CA, is
// valid now, and the key is its key.
func LoadHostTLS(caFile, certFile, keyFile string) (*HostTLS, error) {
	cas, err := readCerts(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--cert-file %s / --key-file %s: %w", certFile, keyFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	return newHostTLS(pool, pair)
}

// NewHostTLS is LoadHostTLS from memory (tests and in-process meshes).
func NewHostTLS(ca *x509.Certificate, kp *KeyPair) (*HostTLS, error) {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return newHostTLS(pool, kp.TLSCertificate())
}

func newHostTLS(pool *x509.CertPool, pair tls.Certificate) (*HostTLS, error) {
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("host certificate: %w", err)
	}
	pair.Leaf = leaf
	name, ok := HostNameOf(leaf)
	if !ok {
		return nil, fmt.Errorf("certificate %q is not a host certificate (create one with: meshctl tls cert create --host NAME)", leaf.Subject.CommonName)
	}
	if _, err := verify(pool, []*x509.Certificate{leaf}, x509.ExtKeyUsageServerAuth, time.Now()); err != nil {
		return nil, fmt.Errorf("host certificate %s: %w", name, err)
	}
	h := &HostTLS{Name: name, pool: pool}
	h.cert.Store(&pair)
	return h, nil
}

// Reload reads the host's certificate and key again (a renewal) and uses
// them for the handshakes that follow. The new pair must pass the checks
// of LoadHostTLS and name the same host; otherwise the running one stays.
// The CA is not reloaded: trusting another CA is a restart.
func (h *HostTLS) Reload(certFile, keyFile string) (*x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--cert-file %s / --key-file %s: %w", certFile, keyFile, err)
	}
	n, err := newHostTLS(h.pool, pair)
	if err != nil {
		return nil, err
	}
	if n.Name != h.Name {
		return nil, fmt.Errorf("%s is host %q's certificate, this host is %q", certFile, n.Name, h.Name)
	}
	c := n.cert.Load()
	h.cert.Store(c)
	return c.Leaf, nil
}

func (h *HostTLS) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

func (h *HostTLS) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

// Pool is the mesh CA as a certificate pool.
func (h *HostTLS) Pool() *x509.CertPool { return h.pool }

// Certificate is the host's own certificate and key.
func (h *HostTLS) Certificate() tls.Certificate { return *h.cert.Load() }

// APIServerConfig serves the HTTP API: a client certificate is optional
// (operators authenticate with tokens), but one that is given must verify
// against the mesh CA, or the handshake fails. Handlers of host-only routes
// read the verified certificate (HostNameOf on VerifiedChains[0][0]).
func (h *HostTLS) APIServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: h.getCertificate,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      h.pool,
	}
}

// PeerServerConfig serves a host-only listener (Raft): the handshake
// itself refuses a peer without a certificate, with one of another CA,
// an expired one, or an operator's.
func (h *HostTLS) PeerServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: h.getCertificate,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      h.pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := PeerHost(cs)
			return err
		},
	}
}

// DialHost is the client side of a connection to another host: it
// presents this host's certificate and accepts only a host certificate of
// the mesh CA named want (any host when want is empty).
func (h *HostTLS) DialHost(want string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: h.getClientCertificate,
		// The standard check matches the dialed address against the
		// certificate's SANs; a host is verified by its name instead (below),
		// so peers may be dialed at any address they gossip.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			name, err := verify(h.pool, cs.PeerCertificates, x509.ExtKeyUsageServerAuth, time.Now())
			if err != nil {
				return err
			}
			if want != "" && name != want {
				return fmt.Errorf("peer is host %q, want %q", name, want)
			}
			return nil
		},
	}
}

// ErrNotHost is the error of a verified peer that is not a mesh host.
var ErrNotHost = errors.New("not a host certificate")

// PeerHost is the verified host at the other end of a server-side
// connection, or an error saying why there is none.
func PeerHost(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("no verified certificate: %w", ErrNotHost)
	}
	leaf := cs.VerifiedChains[0][0]
	name, ok := HostNameOf(leaf)
	if !ok {
		return "", fmt.Errorf("certificate %q: %w", leaf.Subject.CommonName, ErrNotHost)
	}
	return name, nil
}

// verify checks a presented chain against the mesh CA for usage, and that
// its leaf is a host certificate; it returns the host's name.
func verify(pool *x509.CertPool, chain []*x509.Certificate, usage x509.ExtKeyUsage, now time.Time) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now}); err != nil {
		return "", fmt.Errorf("certificate %q: %w", chain[0].Subject.CommonName, err)
	}
	name, ok := HostNameOf(chain[0])
	if !ok {
		return "", fmt.Errorf("certificate %q: %w", chain[0].Subject.CommonName, ErrNotHost)
	}
	return name, nil
}

// ClientConfig is an operator's or a tool's TLS: it verifies the server
// against the CA in caFile (and the dialed name or address against the
// server's SANs, as every HTTPS client does) and presents a client
// certificate when certFile and keyFile are given.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	if caFile != "" {
		cas, err := readCerts(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		for _, c := range cas {
			cfg.RootCAs.AddCert(c)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// ReadCAFile reads the certificates of a CA file (for callers that build
// their own pools).
func ReadCAFile(path string) ([]*x509.Certificate, error) { return readCerts(path) }

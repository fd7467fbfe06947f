package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"time"
)

// CertValidity is how long a host or client certificate is valid: one
// year, consul's default.
const CertValidity = 365 * 24 * time.Hour

// The DNS suffixes that name a certificate's role.
const (
	HostDomain   = "host.hostmesh"
	ClientDomain = "client.hostmesh"
)

// CertSpec describes a certificate to issue.
type CertSpec struct {
	// Name is the host's name (meshd --name) or the operator's.
	Name string
	// IPs and DNS are extra subject alternative names of a host
	// certificate: the addresses peers dial it at.
	IPs []net.IP
	DNS []string
	// NotBefore and NotAfter default to a minute ago (clock skew between
	// hosts) and CertValidity after now; tests set them to make expired or
	// not yet valid certificates.
	NotBefore, NotAfter time.Time
}

// KeyPair is an issued certificate and its private key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// HostCert issues a host certificate: it serves (API, Raft) and dials
// (Raft, forwarding, sim peers), so it carries ServerAuth and ClientAuth.
func (ca *CA) HostCert(spec CertSpec) (*KeyPair, error) {
	if err := ValidName(spec.Name); err != nil {
		return nil, fmt.Errorf("host certificate: %w", err)
	}
	dns := []string{spec.Name, spec.Name + "." + HostDomain, "localhost"}
	for _, d := range spec.DNS {
		if d == "" {
			return nil, fmt.Errorf("host certificate %s: empty DNS name", spec.Name)
		}
		if !slices.Contains(dns, d) {
			dns = append(dns, d)
		}
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, ip := range spec.IPs {
		if ip == nil {
			return nil, fmt.Errorf("host certificate %s: empty IP address", spec.Name)
		}
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	return ca.issue(spec, dns, ips, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

// ClientCert issues an operator's client certificate: ClientAuth only, so
// it can never serve, nor pass for a host (see HostNameOf).
func (ca *CA) ClientCert(spec CertSpec) (*KeyPair, error) {
	if err := ValidName(spec.Name); err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	if len(spec.IPs) > 0 || len(spec.DNS) > 0 {
		return nil, fmt.Errorf("client certificate %s: extra IP or DNS names are for host certificates", spec.Name)
	}
	return ca.issue(spec, []string{spec.Name + "." + ClientDomain}, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

func (ca *CA) issue(spec CertSpec, dns []string, ips []net.IP, usage []x509.ExtKeyUsage) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("key for %s: %w", spec.Name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if spec.NotBefore.IsZero() {
		spec.NotBefore = now.Add(-time.Minute)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = now.Add(CertValidity)
	}
	if !spec.NotAfter.After(spec.NotBefore) {
		return nil, fmt.Errorf("certificate %s: NotAfter %s is not after NotBefore %s", spec.Name, spec.NotAfter, spec.NotBefore)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: spec.Name},
		NotBefore:    spec.NotBefore,
		NotAfter:     spec.NotAfter,
		DNSNames:     dns,
		IPAddresses:  ips,
		ExtKeyUsage:  usage,
		// KeyEncipherment means nothing to an ECDSA key, but libvirt (and
		// GnuTLS in QEMU) refuse a certificate whose critical key usage
		// lacks it, and the lab's libvirt PKI is issued here too.
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", spec.Name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", spec.Name, err)
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// CertPEM is the certificate, PEM-encoded.
func (kp *KeyPair) CertPEM() []byte { return certPEM(kp.Cert) }

// KeyPEM is the private key, PEM-encoded (SEC 1, "EC PRIVATE KEY", which
// Go, OpenSSL and GnuTLS all read).
func (kp *KeyPair) KeyPEM() ([]byte, error) { return keyPEM(kp.Key) }

// TLSCertificate is the pair as crypto/tls uses it.
func (kp *KeyPair) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key, Leaf: kp.Cert}
}

// Save writes NAME.pem (0644) and NAME-key.pem (0600) into dir, creating
// dir; it refuses when either file exists.
func (kp *KeyPair) Save(dir string) (certPath, keyPath string, err error) {
	name := kp.Cert.Subject.CommonName
	k, err := kp.KeyPEM()
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := writePair(dir, certPath, kp.CertPEM(), keyPath, k); err != nil {
		return "", "", fmt.Errorf("save certificate %s: %w", name, err)
	}
	return certPath, keyPath, nil
}

package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// File names of the CA, as consul names its own (consul-agent-ca.pem).
const (
	CAFile    = "hostmesh-ca.pem"
	CAKeyFile = "hostmesh-ca-key.pem"
)

// CAName is the Subject CN of every mesh CA.
const CAName = "hostmesh CA"

// CAValidity is how long a new CA is valid: five years, consul's default.
const CAValidity = 5 * 365 * 24 * time.Hour

// CA is a mesh's certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA creates a CA valid from a minute ago (clock skew between hosts)
// for validity (CAValidity when zero).
func NewCA(validity time.Duration) (*CA, error) {
	if validity == 0 {
		validity = CAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: CAName},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		// A CA signs certificates only; MaxPathLenZero: no intermediate CAs.
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertPEM is the CA certificate, PEM-encoded: what every host and operator
// is given to verify the mesh with (--ca-file, MESH_CACERT).
func (ca *CA) CertPEM() []byte { return certPEM(ca.Cert) }

// Save writes hostmesh-ca.pem (0644) and hostmesh-ca-key.pem (0600) into
// dir, creating dir; it refuses when either file exists.
func (ca *CA) Save(dir string) (certPath, keyPath string, err error) {
	keyPEM, err := keyPEM(ca.Key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if err := writePair(dir, certPath, ca.CertPEM(), keyPath, keyPEM); err != nil {
		return "", "", fmt.Errorf("save CA: %w", err)
	}
	return certPath, keyPath, nil
}

// LoadCA reads a CA certificate and its key, as Save wrote them.
func LoadCA(certPath, keyPath string) (*CA, error) {
	certs, err := readCerts(certPath)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %s: not a CA certificate", certPath)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("CA key %s does not belong to the certificate %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// newSerial is a random 128-bit serial number (RFC 5280 allows up to 20
// octets; random serials keep two CAs' certificates apart).
func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return s, nil
}

package pki

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
)

// ValidName checks a host or operator name for a certificate: DNS labels
// (letters, digits, inner hyphens) joined by dots, at most 253 characters.
// The name becomes a DNS SAN and a file name, so nothing else is allowed.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > 253 {
		return fmt.Errorf("name %.20q…: longer than 253 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if !validLabel(label) {
			return fmt.Errorf("name %q: %q is not a DNS label (letters, digits, inner hyphens, 1-63 characters)", name, label)
		}
	}
	return nil
}

func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// HostNameOf tells a host certificate and its host's name: CN NAME, the
// DNS SAN NAME.host.hostmesh, and both ServerAuth and ClientAuth usages.
// It reads the certificate only: call it on a leaf whose chain to the
// mesh CA was verified (tls.ConnectionState.VerifiedChains[0][0]).
func HostNameOf(cert *x509.Certificate) (string, bool) {
	if cert == nil || cert.IsCA {
		return "", false
	}
	name := cert.Subject.CommonName
	if ValidName(name) != nil || !slices.Contains(cert.DNSNames, name+"."+HostDomain) {
		return "", false
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", false
	}
	return name, true
}

// ClientNameOf tells an operator's client certificate and its name: CN
// NAME, the DNS SAN NAME.client.hostmesh, ClientAuth without ServerAuth.
// Like HostNameOf, it trusts a chain verified beforehand.
func ClientNameOf(cert *x509.Certificate) (string, bool) {
	if cert == nil || cert.IsCA {
		return "", false
	}
	name := cert.Subject.CommonName
	if ValidName(name) != nil || !slices.Contains(cert.DNSNames, name+"."+ClientDomain) {
		return "", false
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return "", false
	}
	return name, true
}

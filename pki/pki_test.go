package pki

import (
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func hostCert(t *testing.T, ca *CA, spec CertSpec) *KeyPair {
	t.Helper()
	kp, err := ca.HostCert(spec)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestCAIsP256FiveYearsNamedHostmeshCA(t *testing.T) {
	ca := newCA(t)
	c := ca.Cert
	if c.Subject.CommonName != "hostmesh CA" || !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero {
		t.Fatalf("CA subject %q IsCA %v", c.Subject.CommonName, c.IsCA)
	}
	if ca.Key.Curve != elliptic.P256() || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA key %v %v, want ECDSA P-256", c.PublicKeyAlgorithm, ca.Key.Curve.Params().Name)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < CAValidity || got > CAValidity+2*time.Minute {
		t.Fatalf("CA valid for %s, want 5 years", got)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatal("CA cannot sign certificates")
	}
}

func TestHostCertificateNamesAndUsages(t *testing.T) {
	ca := newCA(t)
	kp := hostCert(t, ca, CertSpec{Name: "h2", IPs: []net.IP{net.ParseIP("10.0.0.12"), net.ParseIP("127.0.0.1")},
		DNS: []string{"h2.example.org", "h2"}})
	c := kp.Cert
	if c.Subject.CommonName != "h2" {
		t.Fatalf("CN %q", c.Subject.CommonName)
	}
	if want := []string{"h2", "h2.host.hostmesh", "localhost", "h2.example.org"}; !slices.Equal(c.DNSNames, want) {
		t.Fatalf("DNS SANs %v, want %v", c.DNSNames, want)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "10.0.0.12"}; !slices.Equal(ips, want) {
		t.Fatalf("IP SANs %v, want %v", ips, want)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("ExtKeyUsage %v", c.ExtKeyUsage)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < CertValidity || got > CertValidity+2*time.Minute {
		t.Fatalf("host certificate valid for %s, want a year", got)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA || kp.Key.Curve != elliptic.P256() {
		t.Fatalf("host key %v", c.PublicKeyAlgorithm)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSName: "h2.host.hostmesh"}); err != nil {
		t.Fatalf("host certificate does not verify against its CA: %v", err)
	}
	if name, ok := HostNameOf(c); !ok || name != "h2" {
		t.Fatalf("HostNameOf = %q %v, want h2 true", name, ok)
	}
	if _, ok := ClientNameOf(c); ok {
		t.Fatal("a host certificate passed for a client certificate")
	}
}

func TestClientCertificateIsNotAHostCertificate(t *testing.T) {
	ca := newCA(t)
	kp, err := ca.ClientCert(CertSpec{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	c := kp.Cert
	if !slices.Equal(c.DNSNames, []string{"alice.client.hostmesh"}) || len(c.IPAddresses) != 0 {
		t.Fatalf("client SANs %v %v", c.DNSNames, c.IPAddresses)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("client ExtKeyUsage %v, want ClientAuth only", c.ExtKeyUsage)
	}
	if name, ok := HostNameOf(c); ok {
		t.Fatalf("client certificate passed for host %q", name)
	}
	if name, ok := ClientNameOf(c); !ok || name != "alice" {
		t.Fatalf("ClientNameOf = %q %v", name, ok)
	}
	// Named like a host, it still is not one: no ServerAuth, no .host.hostmesh.
	kp, err = ca.ClientCert(CertSpec{Name: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := HostNameOf(kp.Cert); ok {
		t.Fatal("a client certificate named h1 passed for host h1")
	}
	if _, err := ca.ClientCert(CertSpec{Name: "bob", IPs: []net.IP{net.ParseIP("10.0.0.1")}}); err == nil {
		t.Fatal("client certificate with an IP SAN accepted")
	}
	if _, ok := HostNameOf(ca.Cert); ok {
		t.Fatal("the CA certificate passed for a host")
	}
}

func TestNamesAreDNSLabels(t *testing.T) {
	ca := newCA(t)
	for _, bad := range []string{"", "a/b", "../etc", "h 1", "-h", "h-", "a..b", "h_1", strings.Repeat("a", 64), "é"} {
		if _, err := ca.HostCert(CertSpec{Name: bad}); err == nil {
			t.Errorf("host name %q accepted", bad)
		}
		if _, err := ca.ClientCert(CertSpec{Name: bad}); err == nil {
			t.Errorf("client name %q accepted", bad)
		}
	}
	for _, good := range []string{"h1", "node-7", "hv3.dc1.example.org", "H1"} {
		if err := ValidName(good); err != nil {
			t.Errorf("name %q refused: %v", good, err)
		}
	}
}

func TestFilesModesAndNoOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	ca := newCA(t)
	certPath, keyPath, err := ca.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(certPath) != "hostmesh-ca.pem" || filepath.Base(keyPath) != "hostmesh-ca-key.pem" {
		t.Fatalf("CA files %s %s", certPath, keyPath)
	}
	mode(t, certPath, 0o644)
	mode(t, keyPath, 0o600)
	before, _ := os.ReadFile(keyPath)
	if _, _, err := newCA(t).Save(dir); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second CA in the same dir: %v", err)
	}
	if after, _ := os.ReadFile(keyPath); string(after) != string(before) {
		t.Fatal("the CA key was overwritten")
	}

	loaded, err := LoadCA(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !loaded.Key.Equal(ca.Key) {
		t.Fatal("LoadCA read another CA back")
	}
	kp := hostCert(t, loaded, CertSpec{Name: "h1"})
	hc, hk, err := kp.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(hc) != "h1.pem" || filepath.Base(hk) != "h1-key.pem" {
		t.Fatalf("host files %s %s", hc, hk)
	}
	mode(t, hc, 0o644)
	mode(t, hk, 0o600)
	if _, _, err := hostCert(t, loaded, CertSpec{Name: "h1"}).Save(dir); err == nil {
		t.Fatal("a second h1 certificate overwrote the first")
	}
	// Only the key exists: still refused, and no certificate is left alone.
	os.Remove(hc)
	if _, _, err := hostCert(t, loaded, CertSpec{Name: "h1"}).Save(dir); err == nil {
		t.Fatal("saved over an existing key")
	}
	if _, err := os.Stat(hc); err == nil {
		t.Fatal("a certificate was written next to another pair's key")
	}

	// The files work as meshd reads them.
	h2 := hostCert(t, loaded, CertSpec{Name: "h2"})
	c2, k2, err := h2.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	ht, err := LoadHostTLS(certPath, c2, k2)
	if err != nil || ht.Name != "h2" {
		t.Fatalf("LoadHostTLS: %v %+v", err, ht)
	}
	if _, err := LoadCA(certPath, k2); err == nil {
		t.Fatal("LoadCA took h2's key as the CA key")
	}
	if _, err := LoadCA(c2, k2); err == nil {
		t.Fatal("LoadCA took a host certificate as a CA")
	}
}

func mode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Fatalf("%s has mode %o, want %o", path, fi.Mode().Perm(), want)
	}
}

func TestLoadHostTLSRefusesWrongFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	caPath, _, err := ca.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	other := newCA(t)
	save := func(kp *KeyPair, sub string) (string, string) {
		c, k, err := kp.Save(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	client, _ := ca.ClientCert(CertSpec{Name: "alice"})
	expired := hostCert(t, ca, CertSpec{Name: "h1", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	for _, c := range []struct {
		what string
		kp   *KeyPair
		want string
	}{
		{"an operator's certificate", client, "not a host certificate"},
		{"a host certificate of another CA", hostCert(t, other, CertSpec{Name: "h1"}), "unknown authority"},
		{"an expired host certificate", expired, "expired"},
	} {
		cp, kp := save(c.kp, strings.ReplaceAll(c.what, " ", "-"))
		if _, err := LoadHostTLS(caPath, cp, kp); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: LoadHostTLS error %v, want %q", c.what, err, c.want)
		}
	}
	good := hostCert(t, ca, CertSpec{Name: "h1"})
	cp, _ := save(good, "good")
	_, otherKey := save(hostCert(t, ca, CertSpec{Name: "h1"}), "other-key")
	if _, err := LoadHostTLS(caPath, cp, otherKey); err == nil {
		t.Fatal("a certificate with another certificate's key loaded")
	}
}

func pool(ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

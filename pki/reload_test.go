package pki

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestReloadSwapsTheCertificate: a renewed certificate of the same host
// is served from the next handshake on; another host's, or a broken pair,
// is refused and the running certificate stays.
func TestReloadSwapsTheCertificate(t *testing.T) {
	m, err := NewMeshFiles(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := m.Host(CertSpec{Name: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := LoadHostTLS(m.CAFile, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	old := h.Certificate().Leaf.SerialNumber
	renewed, err := m.CA.HostCert(CertSpec{Name: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	rcert, rkey, err := renewed.Save(filepath.Join(t.TempDir(), "renewed"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := h.Reload(rcert, rkey)
	if err != nil {
		t.Fatalf("reload a renewed certificate: %v", err)
	}
	served, _ := h.APIServerConfig().GetCertificate(nil)
	presented, _ := h.DialHost("h2").GetClientCertificate(nil)
	if leaf.SerialNumber.Cmp(old) == 0 || served.Leaf.SerialNumber.Cmp(leaf.SerialNumber) != 0 ||
		presented.Leaf.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("after reload: serial %v, served %v, presented %v, want the renewed one (old %v)", leaf.SerialNumber, served.Leaf.SerialNumber, presented.Leaf.SerialNumber, old)
	}
	other, okey, err := m.Host(CertSpec{Name: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reload(other, okey); err == nil || !strings.Contains(err.Error(), `"h2"`) {
		t.Errorf("reload another host's certificate: %v, want refused naming h2", err)
	}
	if _, err := h.Reload(rcert, okey); err == nil {
		t.Error("reload a certificate with another key: accepted")
	}
	if got := h.Certificate().Leaf.SerialNumber; got.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("refused reloads changed the certificate to %v", got)
	}
}

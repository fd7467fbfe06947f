package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/migrate/virt/pkipath"
	"github.com/hostmesh/hostmesh/pki"
)

// pkiDir holds the lab's mesh CA (root-namespace path under Lab.Dir). One CA
// serves meshd and libvirt alike, as it would on real hosts.
const pkiDir = "pki"

// etcPKI is the system directory each host gets its own copy of, filled in
// libvirt's and QEMU's layout (see pkipath.LibvirtCACert and the rest).
const etcPKI = "/etc/pki"

// issuePKI creates the lab's CA and, for every host, a host certificate
// (CN = host name, IP SANs of its management and migration addresses, so
// libvirt's qemu+tls://MGMT and QEMU's TLS stream to MIG both verify), saved
// for meshd (Host.CACert/Cert/Key) and installed in the host's private
// /etc/pki tree for libvirtd and QEMU.
func (l *Lab) issuePKI() error {
	ca, err := pki.NewCA(0)
	if err != nil {
		return fmt.Errorf("lab CA: %w", err)
	}
	if l.CACert, l.CAKey, err = ca.Save(filepath.Join(l.Dir, pkiDir)); err != nil {
		return fmt.Errorf("lab CA: %w", err)
	}
	l.GossipKeyFile = filepath.Join(l.Dir, pkiDir, "gossip.key")
	if err := os.WriteFile(l.GossipKeyFile, []byte(gossip.GenerateKey()+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab gossip key: %w", err)
	}
	// The management token every meshd starts with (meshd
	// --initial-management-token-file) and Meshctl sends.
	l.TokenFile = filepath.Join(l.Dir, pkiDir, "management.token")
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return fmt.Errorf("lab management token: %w", err)
	}
	if err := os.WriteFile(l.TokenFile, []byte(hex.EncodeToString(tok)+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab management token: %w", err)
	}
	client, err := l.issueClientPKI(ca)
	if err != nil {
		return err
	}
	for _, h := range l.Hosts {
		if err := h.issueCert(ca); err != nil {
			return err
		}
		h.ClientURI = h.LibvirtURI + "?pkipath=" + client
		h.TokenFile = l.TokenFile
	}
	return nil
}

// clientName is the operator certificate root-namespace libvirt clients
// (the driver's lab tests, virsh by hand) present to the hosts' libvirtd.
const clientName = "lab-operator"

// issueClientPKI writes a client certificate in the layout libvirt's
// pkipath URI parameter reads (cacert.pem, clientcert.pem, clientkey.pem):
// the root namespace has no /etc/pki of the lab's, the hosts do.
func (l *Lab) issueClientPKI(ca *pki.CA) (string, error) {
	kp, err := ca.ClientCert(pki.CertSpec{Name: clientName})
	if err != nil {
		return "", fmt.Errorf("lab client certificate: %w", err)
	}
	keyPEM, err := kp.KeyPEM()
	if err != nil {
		return "", fmt.Errorf("lab client certificate: %w", err)
	}
	dir := filepath.Join(l.Dir, pkiDir, "client")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for name, f := range map[string]struct {
		data []byte
		mode os.FileMode
	}{
		pkipath.ClientDirCACert: {ca.CertPEM(), 0o644},
		pkipath.ClientDirCert:   {kp.CertPEM(), 0o644},
		pkipath.ClientDirKey:    {keyPEM, 0o600},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), f.data, f.mode); err != nil {
			return "", fmt.Errorf("lab client certificate: %w", err)
		}
	}
	return dir, nil
}

func (h *Host) issueCert(ca *pki.CA) error {
	kp, err := ca.HostCert(pki.CertSpec{Name: h.Name, IPs: []net.IP{net.ParseIP(h.MgmtIP), net.ParseIP(h.MigIP)}})
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	h.CACert = filepath.Join(h.StateDir, "tls", pki.CAFile)
	if h.Cert, h.Key, err = kp.Save(filepath.Join(h.StateDir, "tls")); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	caPEM := ca.CertPEM()
	if err := os.WriteFile(h.CACert, caPEM, 0o644); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	keyPEM, err := kp.KeyPEM()
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	// One certificate fills every slot: it carries ServerAuth and ClientAuth,
	// so libvirtd serves and dials peers with it, and QEMU's migration
	// streams (server on the destination, client on the source) use it too.
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{pkipath.LibvirtCACert, caPEM, 0o644},
		{pkipath.LibvirtServerCert, kp.CertPEM(), 0o644},
		{pkipath.LibvirtClientCert, kp.CertPEM(), 0o644},
		{pkipath.LibvirtServerKey, keyPEM, 0o600},
		{pkipath.LibvirtClientKey, keyPEM, 0o600},
		{pkipath.QEMUCACert, caPEM, 0o644},
		{pkipath.QEMUServerCert, kp.CertPEM(), 0o644},
		{pkipath.QEMUClientCert, kp.CertPEM(), 0o644},
		{pkipath.QEMUServerKey, keyPEM, 0o600},
		{pkipath.QEMUClientKey, keyPEM, 0o600},
	}
	for _, f := range files {
		rel, err := filepath.Rel(etcPKI, f.path)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		dst := filepath.Join(h.StateDir, "pki", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		if err := os.WriteFile(dst, f.data, f.mode); err != nil {
			return fmt.Errorf("host %s: install %s: %w", h.Name, f.path, err)
		}
	}
	return nil
}

// MeshdSecurityFlags are the flags meshd on h runs with, as on a real host:
// the mesh CA, h's certificate and key, the gossip key file and the
// initial management token.
func (l *Lab) MeshdSecurityFlags(h *Host) []string {
	return []string{"--ca-file", h.CACert, "--cert-file", h.Cert, "--key-file", h.Key, "--gossip-key-file", l.GossipKeyFile,
		"--initial-management-token-file", l.TokenFile}
}

package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate/virt/pkipath"
)

// TestLibvirtdServesTLSOnly: every host has the lab CA's certificate in
// libvirt's and QEMU's places; its libvirtd answers only with TLS, proves
// its name and management address with that certificate, refuses a client
// without one, and keeps the unauthenticated tcp port closed; a root-
// namespace client reaches it through ClientURI.
func TestLibvirtdServesTLSOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := startLab(t, ctx, 2)
	caPEM, err := os.ReadFile(l.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("lab CA %s: no certificate", l.CACert)
	}
	for _, h := range l.Hosts {
		cert, err := os.ReadFile(h.Cert)
		if err != nil {
			t.Fatal(err)
		}
		for path, want := range map[string][]byte{
			pkipath.LibvirtCACert: caPEM, pkipath.LibvirtServerCert: cert, pkipath.LibvirtClientCert: cert,
			pkipath.QEMUCACert: caPEM, pkipath.QEMUServerCert: cert, pkipath.QEMUClientCert: cert,
		} {
			got, err := h.Run(ctx, "cat", path)
			if err != nil || got != strings.TrimSpace(string(want)) {
				t.Errorf("%s in %s: %v; want the lab's certificate there", path, h.Name, err)
			}
		}
		for _, key := range []string{pkipath.LibvirtServerKey, pkipath.LibvirtClientKey, pkipath.QEMUServerKey, pkipath.QEMUClientKey} {
			if mode, err := h.Run(ctx, "stat", "-c", "%a", key); err != nil || mode != "600" {
				t.Errorf("key %s in %s: mode %q, %v; want 600", key, h.Name, mode, err)
			}
		}
		if _, err := os.Stat("/etc/pki/libvirt/servercert.pem"); err == nil {
			t.Errorf("the root namespace sees a libvirt server certificate: the hosts' /etc/pki must stay theirs")
		}

		if c, err := net.DialTimeout("tcp", h.MgmtIP+":16509", 5*time.Second); err == nil {
			c.Close()
			t.Errorf("%s: libvirtd's unauthenticated tcp port 16509 is open", h.Name)
		}
		pair, err := tls.LoadX509KeyPair(h.Cert, h.Key)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.MgmtIP+":16514",
			&tls.Config{RootCAs: roots, ServerName: h.MgmtIP, Certificates: []tls.Certificate{pair}})
		if err != nil {
			t.Errorf("%s: TLS to libvirtd with the host's certificate, verifying its address: %v", h.Name, err)
		} else {
			if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != h.Name {
				t.Errorf("%s: libvirtd presents CN %q", h.Name, cn)
			}
			conn.Close()
		}
		// Without a client certificate the handshake fails; in TLS 1.3 the
		// server's refusal arrives with the first read.
		anon, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.MgmtIP+":16514",
			&tls.Config{RootCAs: roots, ServerName: h.MgmtIP})
		if err == nil {
			_ = anon.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = anon.Read(make([]byte, 1))
			anon.Close()
		}
		if err == nil || strings.Contains(err.Error(), "timeout") {
			t.Errorf("%s: libvirtd accepted a client without a certificate (%v)", h.Name, err)
		}
	}
	// The root namespace has no /etc/pki of the lab's; ClientURI brings the
	// lab's operator certificate.
	out, err := run(ctx, "virsh", "-c", l.Hosts[1].ClientURI, "hostname")
	if err != nil || out != l.Hosts[1].Name {
		t.Errorf("virsh -c %s hostname from the root namespace: %q, %v", l.Hosts[1].ClientURI, out, err)
	}
}

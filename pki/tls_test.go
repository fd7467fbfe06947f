package pki

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// handshake runs a real TLS 1.3 handshake over loopback TCP and one byte
// from the server, so that a refusal by either side surfaces (in TLS 1.3
// the client finishes before the server has checked its certificate).
// (net.Pipe would deadlock: a side that refuses writes its alert while the
// other is still writing its flight.)
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	done := make(chan error, 1)
	go func() {
		a, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer a.Close()
		_ = a.SetDeadline(deadline)
		s := tls.Server(a, server)
		if err := s.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = s.Write([]byte{1})
		done <- err
	}()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = b.SetDeadline(deadline)
	c := tls.Client(b, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		buf := make([]byte, 1)
		_, clientErr = c.Read(buf)
	}
	b.Close()
	return <-done, clientErr
}

type mesh struct {
	ca    *CA
	hosts map[string]*HostTLS
}

func newMesh(t *testing.T, names ...string) *mesh {
	t.Helper()
	m := &mesh{ca: newCA(t), hosts: map[string]*HostTLS{}}
	for _, n := range names {
		m.hosts[n] = m.host(t, CertSpec{Name: n})
	}
	return m
}

func (m *mesh) host(t *testing.T, spec CertSpec) *HostTLS {
	t.Helper()
	ht, err := NewHostTLS(m.ca.Cert, hostCert(t, m.ca, spec))
	if err != nil {
		t.Fatal(err)
	}
	return ht
}

// clientWith is a client config presenting kp (none when nil) and
// trusting any server, to probe what the server side accepts.
func clientWith(kp *KeyPair) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	if kp != nil {
		c.Certificates = []tls.Certificate{kp.TLSCertificate()}
	}
	return c
}

func TestPeerListenerAcceptsOnlyHostsOfTheMesh(t *testing.T) {
	m := newMesh(t, "h1", "h2")
	other := newCA(t)
	client, _ := m.ca.ClientCert(CertSpec{Name: "alice"})
	now := time.Now()
	raft := m.hosts["h1"].PeerServerConfig()

	if s, c := handshake(t, raft, m.hosts["h2"].DialHost("h1")); s != nil || c != nil {
		t.Fatalf("h2 → h1: server %v, client %v", s, c)
	}
	for _, c := range []struct {
		what string
		kp   *KeyPair
	}{
		{"no certificate", nil},
		{"a host certificate of another CA", hostCert(t, other, CertSpec{Name: "h2"})},
		{"an operator's client certificate", client},
		{"an expired host certificate", hostCert(t, m.ca, CertSpec{Name: "h2", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})},
		{"a host certificate not yet valid", hostCert(t, m.ca, CertSpec{Name: "h2", NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)})},
	} {
		serverErr, clientErr := handshake(t, raft, clientWith(c.kp))
		if serverErr == nil || clientErr == nil {
			t.Errorf("%s: accepted by the Raft listener (server %v, client %v)", c.what, serverErr, clientErr)
		}
	}
}

func TestDialHostVerifiesTheCAAndTheName(t *testing.T) {
	m := newMesh(t, "h1", "h2", "h3")
	other := newMesh(t, "h1")
	if s, c := handshake(t, m.hosts["h1"].APIServerConfig(), m.hosts["h2"].DialHost("h1")); s != nil || c != nil {
		t.Fatalf("h2 dialing h1: server %v, client %v", s, c)
	}
	if s, c := handshake(t, m.hosts["h1"].APIServerConfig(), m.hosts["h2"].DialHost("")); s != nil || c != nil {
		t.Fatalf("h2 dialing any host: server %v, client %v", s, c)
	}
	// h3 answering where h1 was expected: a host of the mesh, the wrong one.
	if _, c := handshake(t, m.hosts["h3"].APIServerConfig(), m.hosts["h2"].DialHost("h1")); c == nil || !strings.Contains(c.Error(), `want "h1"`) {
		t.Fatalf("h3 passed for h1: %v", c)
	}
	// A server of another mesh named h1.
	if _, c := handshake(t, other.hosts["h1"].APIServerConfig(), m.hosts["h2"].DialHost("h1")); c == nil || !strings.Contains(c.Error(), "unknown authority") {
		t.Fatalf("another CA's h1 accepted: %v", c)
	}
	// A server presenting an operator's certificate (no ServerAuth).
	client, _ := m.ca.ClientCert(CertSpec{Name: "h1"})
	fake := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{client.TLSCertificate()}}
	if _, c := handshake(t, fake, m.hosts["h2"].DialHost("h1")); c == nil {
		t.Fatal("a client certificate served as host h1")
	}
	// An expired h1.
	now := time.Now()
	old := hostCert(t, m.ca, CertSpec{Name: "h1", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	expired := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{old.TLSCertificate()}}
	if _, c := handshake(t, expired, m.hosts["h2"].DialHost("h1")); c == nil || !strings.Contains(c.Error(), "expired") {
		t.Fatalf("an expired h1 accepted: %v", c)
	}
}

func TestAPIListenerTakesOperatorsWithOrWithoutACertificate(t *testing.T) {
	m := newMesh(t, "h1")
	api := m.hosts["h1"].APIServerConfig()
	dir := t.TempDir()
	caPath, _, err := m.ca.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := m.ca.ClientCert(CertSpec{Name: "alice"})
	aliceCert, aliceKey, err := alice.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	anon, err := ClientConfig(caPath, "", "")
	if err != nil {
		t.Fatal(err)
	}
	anon.ServerName = "127.0.0.1"
	if s, c := handshake(t, api, anon); s != nil || c != nil {
		t.Fatalf("operator without a certificate: server %v, client %v", s, c)
	}
	withCert, err := ClientConfig(caPath, aliceCert, aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	withCert.ServerName = "localhost"
	if s, c := handshake(t, api, withCert); s != nil || c != nil {
		t.Fatalf("operator with a client certificate: server %v, client %v", s, c)
	}
	// A certificate of another CA is refused at the handshake.
	stranger, _ := newCA(t).ClientCert(CertSpec{Name: "alice"})
	if s, _ := handshake(t, api, clientWith(stranger)); s == nil {
		t.Fatal("the API accepted a client certificate of another CA")
	}
	// The operator verifies the server: an address not in its SANs, or a
	// server of another CA, is refused.
	anon.ServerName = "10.9.9.9"
	if _, c := handshake(t, api, anon); c == nil {
		t.Fatal("the client accepted a server certificate without the dialed address")
	}
	anon.ServerName = "localhost"
	if _, c := handshake(t, newMesh(t, "h1").hosts["h1"].APIServerConfig(), anon); c == nil {
		t.Fatal("the client accepted a server of another CA")
	}
	// PeerHost tells hosts from operators on an API connection.
	var state tls.ConnectionState
	probe := api.Clone()
	probe.VerifyConnection = func(cs tls.ConnectionState) error { state = cs; return nil }
	if s, _ := handshake(t, probe, withCert); s != nil {
		t.Fatal(s)
	}
	if _, err := PeerHost(state); !errors.Is(err, ErrNotHost) {
		t.Fatalf("PeerHost of an operator: %v", err)
	}
	h2 := m.host(t, CertSpec{Name: "h2"})
	if s, _ := handshake(t, probe, h2.DialHost("h1")); s != nil {
		t.Fatal(s)
	}
	if name, err := PeerHost(state); err != nil || name != "h2" {
		t.Fatalf("PeerHost of h2: %q %v", name, err)
	}
}

func TestClientConfigNeedsBothCertAndKey(t *testing.T) {
	if _, err := ClientConfig("", "c.pem", ""); err == nil {
		t.Fatal("a certificate without its key accepted")
	}
	if _, err := ClientConfig(filepath.Join(t.TempDir(), "none.pem"), "", ""); err == nil {
		t.Fatal("a missing CA file accepted")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "junk.pem")
	_ = os.WriteFile(p, []byte("not pem"), 0o644)
	if _, err := ClientConfig(p, "", ""); err == nil || !strings.Contains(err.Error(), "no CERTIFICATE") {
		t.Fatalf("junk CA file: %v", err)
	}
}

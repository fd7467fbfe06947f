package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/pki"
)

// meshTLS issues host certificates of one CA.
type meshTLS struct {
	t  *testing.T
	ca *pki.CA
}

func (m meshTLS) host(name string) *pki.HostTLS {
	m.t.Helper()
	kp, err := m.ca.HostCert(pki.CertSpec{Name: name})
	if err != nil {
		m.t.Fatal(err)
	}
	ht, err := pki.NewHostTLS(m.ca.Cert, kp)
	if err != nil {
		m.t.Fatal(err)
	}
	return ht
}

// clientAs presents host's certificate and accepts only dest's.
func (m meshTLS) clientAs(host string) func(dest string) (*http.Client, error) {
	ht := m.host(host)
	return func(dest string) (*http.Client, error) {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: ht.DialHost(dest)}}, nil
	}
}

// TestPeerEndpointsOverTLSTakeOnlyTheRightHosts: a destination behind
// HTTPS (as meshd mounts it) is reached with the source's host certificate
// and must itself be the host the source expects; a reserve whose source is
// not the calling host, a commit by a host other than the one that
// reserved, and a caller without a certificate are refused.
func TestPeerEndpointsOverTLSTakeOnlyTheRightHosts(t *testing.T) {
	ca, err := pki.NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	m := meshTLS{t: t, ca: ca}
	far := NewRegistry(Config{Clock: NewManualClock()})
	t.Cleanup(far.Close)
	dest, err := far.AddHost(HostSpec{Name: "far", MemTotalMiB: 8192, CPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.StripPrefix("/v1/sim", Handler(dest)))
	far1 := m.host("far")
	srv.TLS = far1.APIServerConfig()
	// httptest adds its own certificate to a config without Certificates,
	// and Go serves it ahead of GetCertificate to a client without SNI.
	srv.TLS.Certificates = []tls.Certificate{far1.Certificate()}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	uri := "sim+" + srv.URL + "/v1/sim"

	source := func(certName string) (*Host, *Clock) {
		c := NewManualClock()
		r := NewRegistry(Config{Clock: c, PeerClient: m.clientAs(certName)})
		t.Cleanup(r.Close)
		h, err := r.AddHost(HostSpec{Name: "a", MemTotalMiB: 8192, CPUs: 4})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Define(VMSpec{Name: "web", MemoryMiB: 1024, VCPUs: 1}); err != nil {
			t.Fatal(err)
		}
		return h, c
	}
	params := migrate.Params{DestURI: uri, DestHost: "far", BandwidthMiB: 500, MaxDowntime: 100 * time.Millisecond}

	// Host a, with a's certificate, to far: it moves.
	a, clk := source("a")
	j, err := a.Migrate(context.Background(), "web", params)
	if err != nil {
		t.Fatalf("a → far over TLS: %v", err)
	}
	if !runUntilDone(t, clk, j, time.Minute) || j.Err() != nil {
		t.Fatalf("a → far over TLS: %v", j.Err())
	}

	// Host a calling with b's certificate: its reserve names another source.
	a2, _ := source("b")
	if _, err := a2.Migrate(context.Background(), "web", params); err == nil || !strings.Contains(err.Error(), "a host reserves for itself") {
		t.Fatalf("reserve for a by host b: %v", err)
	}
	// The destination is not the host the source expects.
	wrong := params
	wrong.DestHost = "near"
	if _, err := a2.Migrate(context.Background(), "web", wrong); err == nil || !strings.Contains(err.Error(), `want "near"`) {
		t.Fatalf("far passed for near: %v", err)
	}

	// A reservation of a's, committed by b: refused, the reservation stays.
	post := func(as, op, body string) *http.Response {
		t.Helper()
		cl, _ := m.clientAs(as)("far")
		resp, err := cl.Post(srv.URL+"/v1/sim/"+op, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("a", "reserve", `{"id":"x1","source":"a","vm":{"Name":"db","MemoryMiB":512}}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("a's reserve: %s", resp.Status)
	}
	if resp := post("b", "commit", `{"id":"x1"}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("b committing a's reservation: %s", resp.Status)
	}
	if resp := post("b", "release", `{"id":"x1"}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("b releasing a's reservation: %s", resp.Status)
	}
	if dest.Incoming() != 1 {
		t.Fatalf("far holds %d reservations, want a's one", dest.Incoming())
	}
	if resp := post("a", "release", `{"id":"x1"}`); resp.StatusCode != http.StatusOK || dest.Incoming() != 0 {
		t.Fatalf("a's release: %s, %d reservations left", resp.Status, dest.Incoming())
	}

	// No client certificate at all.
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13,
		ServerName: "far.host.hostmesh", RootCAs: roots}}}
	resp, err := anon.Post(srv.URL+"/v1/sim/reserve", "application/json", strings.NewReader(`{"id":"x2","source":"a","vm":{"name":"db","memory_mib":512}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || dest.Incoming() != 0 {
		t.Fatalf("a reserve without a certificate: %s, %d reservations", resp.Status, dest.Incoming())
	}
}

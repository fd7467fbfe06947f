package testcluster

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/pki"
)

// keyringList runs meshctl keyring list --json against a host.
func keyringList(t *testing.T, c *Cluster, addr string) api.KeyringResponse {
	t.Helper()
	code, out, errOut := c.meshctl(t, addr, "keyring", "list", "--json")
	var r api.KeyringResponse
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("keyring list: exit %d\n%s%s", code, out, errOut)
	}
	return r
}

// TestKeyringRotationOnLiveMesh rotates a live 3-host mesh to a new gossip
// key with meshctl, through one host that fans each step out to all: install,
// use, remove the old key. Gossip still converges after (a member's new
// facts reach every host), the refusals hold (use of a key not installed,
// removal of the primary), and a host restarted after the rotation, still
// configured with the old key, rejoins with its persisted keyring.
func TestKeyringRotationOnLiveMesh(t *testing.T) {
	logs := NewLogCapture()
	c := New(t, Options{Hosts: 3, Logger: slog.New(logs)})
	c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "3 hosts Up everywhere", allHostsUp(c, 3))
	addr := c.Node(1).APIAddr()
	oldKey := c.opts.GossipKey
	oldFP := gossip.KeyFingerprint(oldKey)
	newB64 := gossip.GenerateKey()
	newKey, _ := gossip.KeyFromString(newB64)
	newFP := gossip.KeyFingerprint(newKey)
	oldB64 := encodeB64(oldKey)

	r := keyringList(t, c, addr)
	if r.Asked != 3 || r.Failed != 0 || !reflect.DeepEqual(r.Keys, []api.KeyCount{{Key: oldFP, Installed: 3, Primary: 3}}) {
		t.Fatalf("keyring before the rotation: %+v", r)
	}

	// The per-host route is for the mesh's hosts only, on the host port: an
	// operator, with or without a certificate, is refused at the TLS
	// handshake there, the API port does not serve it, and nothing is
	// installed; a host certificate is served.
	ctx := context.Background()
	hostAddr := c.Node(1).RaftAddr()
	operator, err := c.CA.ClientCert(pki.CertSpec{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		Certificates: []tls.Certificate{operator.TLSCertificate()}}
	withCert, err := api.NewClient(api.Config{Addr: hostAddr, TLS: tc})
	if err != nil {
		t.Fatal(err)
	}
	defer withCert.Close()
	noCert, err := api.NewClient(api.Config{Addr: hostAddr, TLS: &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	for what, cl := range map[string]*api.Client{"no certificate": noCert, "an operator's certificate": withCert} {
		var ce *api.ConnError
		if _, err := cl.InternalKeyring(ctx, http.MethodPost, newB64); !errors.As(err, &ce) {
			t.Fatalf("internal keyring install with %s at the host port: %v, want refused at the handshake", what, err)
		}
	}
	var ae *api.Error
	if _, err := c.Client(addr).InternalKeyring(ctx, http.MethodPost, newB64); !errors.As(err, &ae) || ae.Status != http.StatusNotFound ||
		!strings.Contains(ae.Message, "host port") {
		t.Fatalf("internal keyring install at the API port: %v, want 404 naming the host port", err)
	}
	if h, err := c.HostClient(hostAddr, "h3").InternalKeyring(ctx, http.MethodGet, ""); err != nil || h.Host != "h2" ||
		!reflect.DeepEqual(h.Keys, []string{oldFP}) {
		t.Fatalf("internal keyring list with h3's certificate: %+v, %v", h, err)
	}

	// Refusals: nothing changes on any host.
	code, _, errOut := c.meshctl(t, addr, "keyring", "use", newB64)
	if code != 1 || !strings.Contains(errOut, "not installed on h1, h2, h3") {
		t.Fatalf("use of a key not installed: exit %d %s", code, errOut)
	}
	code, _, errOut = c.meshctl(t, addr, "keyring", "remove", oldB64)
	if code != 1 || !strings.Contains(errOut, "primary key of h1, h2, h3") {
		t.Fatalf("remove of the primary: exit %d %s", code, errOut)
	}
	if code, _, errOut = c.meshctl(t, addr, "keyring", "install", "bm90IGEga2V5"); code != 2 {
		t.Fatalf("install of a bad key: exit %d %s", code, errOut)
	}

	step := func(op, key string, want []api.KeyCount) time.Duration {
		t.Helper()
		start := time.Now()
		code, out, errOut := c.meshctl(t, addr, "keyring", op, key)
		took := time.Since(start)
		if code != 0 || !strings.Contains(out, "done on 3 of 3 hosts") {
			t.Fatalf("keyring %s: exit %d\n%s%s", op, code, out, errOut)
		}
		if got := keyringList(t, c, c.Node(2).APIAddr()); !reflect.DeepEqual(got.Keys, want) {
			t.Fatalf("after %s: keys %+v, want %+v", op, got.Keys, want)
		}
		return took
	}
	tInstall := step("install", newB64, []api.KeyCount{{Key: oldFP, Installed: 3, Primary: 3}, {Key: newFP, Installed: 3}})
	tUse := step("use", newB64, []api.KeyCount{{Key: newFP, Installed: 3, Primary: 3}, {Key: oldFP, Installed: 3}})
	tRemove := step("remove", oldB64, []api.KeyCount{{Key: newFP, Installed: 3, Primary: 3}})
	t.Logf("rotation of 3 hosts through meshctl: install %v, use %v, remove %v", tInstall, tUse, tRemove)

	// Gossip still converges: h3's new facts reach every host.
	c.defineOn(t, "h3", 1, 1024)
	var want uint64
	c.WaitFor(10*time.Second, "h3's own facts to change", func() bool {
		m, _ := c.Node(2).Gossip().Member("h3")
		want = m.Version
		return m.Version > 1 && m.Facts.MemFreeMiB < 16384
	})
	start := time.Now()
	c.WaitFor(10*time.Second, "h3's new facts on every host", func() bool {
		for _, n := range c.Nodes() {
			if m, _ := n.Gossip().Member("h3"); m.Version < want {
				return false
			}
		}
		return true
	})
	t.Logf("after the rotation, h3's update reached every host in %v", time.Since(start))

	// h2 restarts, configured with the old key: its persisted keyring wins.
	c.Kill(1)
	c.WaitFor(20*time.Second, "h2 dead in gossip", func() bool {
		m, _ := c.Node(0).Gossip().Member("h2")
		return m.Status == gossip.StatusDead
	})
	c.Restart(1)
	start = time.Now()
	c.WaitFor(30*time.Second, "h2 back alive everywhere, 3 hosts Up", func() bool {
		for _, n := range c.Nodes() {
			for _, h := range []string{"h1", "h2", "h3"} {
				if m, ok := n.Gossip().Member(h); !ok || m.Status != gossip.StatusAlive {
					return false
				}
			}
		}
		return allHostsUp(c, 3)()
	})
	t.Logf("h2 restarted with the rotated keyring rejoined in %v", time.Since(start))
	if l := logs.Lines(slog.LevelWarn, "not the keyring's primary key", "node", "h2"); len(l) == 0 {
		t.Error("h2 did not warn that its configured key is not the persisted keyring's primary")
	}
	if r := keyringList(t, c, c.Node(1).APIAddr()); r.Asked != 3 || r.Failed != 0 ||
		!reflect.DeepEqual(r.Keys, []api.KeyCount{{Key: newFP, Installed: 3, Primary: 3}}) {
		t.Fatalf("keyring after h2's restart: %+v", r)
	}
}

func encodeB64(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// capturedMove is one migration watched by a capture on the source's
// migration interface.
type capturedMove struct {
	mv        moved
	transport string
	stats     lab.CaptureStats
	ifaceTx   uint64 // the interface's own transmit counter, same window
}

// migrateCaptured moves vm from src to dst with meshctl while capturing on
// src's migration interface, searching every frame for the markers.
func (m *mesh) migrateCaptured(t *testing.T, ctx context.Context, vm, transport string, src, dst *lab.Host, markers ...[]byte) capturedMove {
	t.Helper()
	_, tx0, err := src.IfaceBytes(lab.MigIface)
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.Capture(lab.MigIface, markers...)
	if err != nil {
		t.Fatal(err)
	}
	mv := m.migrateWait(t, ctx, vm, "--to", dst.Name)
	st, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	_, tx1, err := src.IfaceBytes(lab.MigIface)
	if err != nil {
		t.Fatal(err)
	}
	cm := capturedMove{mv: mv, transport: transport, stats: st, ifaceTx: tx1 - tx0}
	t.Logf("%s: %s → %s in %s, downtime %s; capture on %s's %s: %d frames out (%.1f MiB; interface counter %.1f MiB), %d dropped, memory marker in %d frames, disk marker in %d",
		transport, src.Name, dst.Name, mv.total, mv.downtime, src.Name, lab.MigIface, st.OutFrames, mib(st.OutBytes), mib(cm.ifaceTx), st.Drops, st.Hits[0], st.Hits[1])
	return cm
}

// randomMarker is prefix followed by random hex up to 32 ASCII bytes.
func randomMarker(t *testing.T, prefix string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return (prefix + hex.EncodeToString(b))[:32]
}

// TestMigrationStreamEncrypted: with the cluster's default transport the
// guest's memory and its local disk cross the migration network encrypted:
// a capture on the source's migration interface sees the migration's bytes
// but never the marker the guest filled its memory with, nor the one on its
// disk. Set to plain on purpose, the same capture finds the memory marker,
// and the source's meshd logs a warning for that migration. Total time and
// downtime of both are logged side by side.
func TestMigrationStreamEncrypted(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h1, h2 := m.lab.Hosts[0], m.lab.Hosts[1]
	for _, h := range []*lab.Host{h1, h2} {
		if uri := m.host(t, ctx, h.Name).HypervisorURI; uri != "qemu+tls://"+h.MgmtIP+"/system" {
			t.Errorf("meshctl hosts: %s's hypervisor URI %q, want meshd's default qemu+tls://%s/system (libvirtd has its certificate)", h.Name, uri, h.MgmtIP)
		}
	}
	if r := m.ctl(ctx, "cluster", "c1"); r.code != 0 || !strings.Contains(r.stdout, "migration transport tls") {
		t.Fatalf("cluster c1 must migrate over TLS unless set otherwise: %s", r)
	}
	memMarker := randomMarker(t, "hostmesh-memory-")
	diskMarker := randomMarker(t, "hostmesh-disk-")
	spec := lab.GuestSpec{Name: "sealed", MemoryMiB: 256, FillMiB: 128, FillMarker: memMarker, Disk: lab.DiskLocal}
	g := m.bootGuest(t, ctx, h1, spec)
	waitHTTP(t, ctx, g, 30*time.Second)
	if err := g.WriteDisk(ctx, diskMarker); err != nil {
		t.Fatalf("write disk marker: %v", err)
	}
	markers := [][]byte{[]byte(memMarker), []byte(diskMarker)}

	sealed := m.migrateCaptured(t, ctx, "sealed", "tls", h1, h2, markers...)

	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if r := m.ctl(cctx, "cluster", "c1", "--migration-transport", "tls"); r.code != 0 {
			t.Errorf("restore the cluster's TLS transport: %s", r)
		}
	})
	if r := m.ctl(ctx, "cluster", "c1", "--migration-transport", "plain"); r.code != 0 || !strings.Contains(r.stdout, "plain (unencrypted)") {
		t.Fatalf("set transport plain: %s", r)
	}
	open := m.migrateCaptured(t, ctx, "sealed", "plain", h2, h1, markers...)
	if r := m.ctl(ctx, "cluster", "c1", "--migration-transport", "tls"); r.code != 0 {
		t.Fatalf("restore transport tls: %s", r)
	}

	fill := uint64(spec.FillMiB) << 20
	for _, c := range []capturedMove{sealed, open} {
		// "Not found" means something only if the capture saw the stream.
		if c.stats.OutBytes < fill {
			t.Errorf("%s: the capture saw %.1f MiB leave the source, less than the guest's %d MiB fill", c.transport, mib(c.stats.OutBytes), spec.FillMiB)
		}
		if c.stats.OutBytes < c.ifaceTx*95/100 {
			t.Errorf("%s: the capture saw %.1f MiB of the %.1f MiB the interface sent (%d frames dropped)", c.transport, mib(c.stats.OutBytes), mib(c.ifaceTx), c.stats.Drops)
		}
	}
	if sealed.stats.Hits[0] != 0 || sealed.stats.Hits[1] != 0 {
		t.Errorf("tls: the guest's memory marker is readable in %d frames and its disk marker in %d on the migration network", sealed.stats.Hits[0], sealed.stats.Hits[1])
	}
	if open.stats.Hits[0] == 0 {
		t.Errorf("plain: the memory marker is in none of %d frames: the capture does not see what it should", open.stats.OutFrames)
	}

	// The source of the plain migration said so; the TLS one did not.
	warned := func(h *lab.Host, id string) bool {
		b, err := os.ReadFile(m.meshdLog(h))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "unencrypted") && strings.Contains(line, "migration="+id+" ") {
				return true
			}
		}
		return false
	}
	if !warned(h2, open.mv.id) {
		t.Errorf("meshd on %s logged no WARN line for plain migration %s", h2.Name, open.mv.id)
	}
	if warned(h1, sealed.mv.id) {
		t.Errorf("meshd on %s warned about TLS migration %s as unencrypted", h1.Name, sealed.mv.id)
	}
	waitHTTP(t, ctx, g, 10*time.Second)
	if got, err := g.ReadDisk(ctx); err != nil || got != diskMarker {
		t.Errorf("disk after both migrations: %q, %v; want %q", got, err, diskMarker)
	}
	t.Log(fmt.Sprintf("TLS vs plain: total %s vs %s (%.2f×), downtime %s vs %s",
		sealed.mv.total, open.mv.total, sealed.mv.total.Seconds()/open.mv.total.Seconds(), sealed.mv.downtime, open.mv.downtime))
}

package lab

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHostsAreSeparate checks what makes the lab's hosts distinct machines
// to libvirt and meshd: own hostname, own libvirtd identity, own local
// storage behind one path, shared storage seen by all, management IPs
// reachable from the root namespace, and daemons started in the host's
// namespaces.
func TestHostsAreSeparate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	l, err := Start(ctx, Config{Hosts: 3, Dir: labDir(), Clusters: []string{"east", "east"}, Logf: t.Logf})
	if err != nil {
		t.Fatalf("lab.Start: %v", err)
	}
	t.Logf("lab with 3 hosts up in %s", time.Since(start).Round(time.Millisecond))
	defer func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if got := []string{l.Hosts[0].Cluster, l.Hosts[1].Cluster, l.Hosts[2].Cluster}; strings.Join(got, ",") != "east,east,default" {
		t.Errorf("clusters = %v", got)
	}
	uuids := map[string]string{}
	for _, h := range l.Hosts {
		if name, err := h.Run(ctx, "hostname"); err != nil || name != h.Name {
			t.Errorf("hostname in %s = %q, %v", h.Name, name, err)
		}
		caps, err := h.Virsh(ctx, "capabilities")
		if err != nil {
			t.Fatal(err)
		}
		uuid := between(caps, "<uuid>", "</uuid>")
		if other, dup := uuids[uuid]; dup || uuid == "" {
			t.Errorf("host %s libvirt uuid %q (also %s): migration needs distinct host UUIDs", h.Name, uuid, other)
		}
		uuids[uuid] = h.Name
		// Root namespace reaches the libvirtd on the management network
		// (its TLS port; tls_test.go checks what it accepts there).
		c, err := net.DialTimeout("tcp", h.MgmtIP+":16514", 5*time.Second)
		if err != nil {
			t.Errorf("root namespace to %s libvirtd: %v", h.Name, err)
		} else {
			c.Close()
		}
		// Local storage: same path, own contents.
		if _, err := h.Run(ctx, "sh", "-c", "echo "+h.Name+" > "+filepath.Join(h.LocalDir, "whoami")); err != nil {
			t.Fatal(err)
		}
		// Shared storage: one directory for all.
		if _, err := h.Run(ctx, "sh", "-c", "echo "+h.Name+" > "+filepath.Join(l.SharedDir, "from-"+h.Name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range l.Hosts {
		b, err := os.ReadFile(filepath.Join(h.LocalBacking, "whoami"))
		if err != nil || strings.TrimSpace(string(b)) != h.Name {
			t.Errorf("local storage of %s holds %q, %v", h.Name, b, err)
		}
		if _, err := os.Stat(filepath.Join(l.SharedDir, "from-"+h.Name)); err != nil {
			t.Errorf("shared storage misses the file %s wrote: %v", h.Name, err)
		}
		for _, iface := range []string{MgmtIface, MigIface, VMBridge} {
			if _, _, err := h.IfaceBytes(iface); err != nil {
				t.Errorf("counters: %v", err)
			}
		}
	}

	// A daemon runs in the host's namespaces and survives its start context.
	h := l.Hosts[1]
	dctx, dcancel := context.WithCancel(ctx)
	p, err := h.StartDaemon(dctx, filepath.Join(h.StateDir, "sleep.log"), "sleep", "600")
	dcancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"net", "mnt", "uts"} {
		want, _ := os.Readlink("/proc/" + itoa(h.HolderPID) + "/ns/" + ns)
		err := poll(ctx, 20*time.Millisecond, "daemon in "+ns+" namespace", func() (bool, error) {
			got, err := os.Readlink("/proc/" + itoa(p.Pid) + "/ns/" + ns)
			return got == want, err
		})
		if err != nil {
			t.Errorf("daemon of %s: %v", h.Name, err)
		}
	}
}

// TestStartClearsLeftovers simulates a crashed test (lab never closed, its
// lock released by the dying process) and checks the next Start replaces it
// and Close leaves no namespace or link behind.
func TestStartClearsLeftovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old, err := Start(ctx, Config{Hosts: 2, Dir: labDir()})
	if err != nil {
		t.Fatalf("lab.Start: %v", err)
	}
	oldHolder := old.Hosts[0].HolderPID
	old.owner.Close() // what the kernel does when the owner dies

	l, err := Start(ctx, Config{Hosts: 1, Dir: labDir()})
	if err != nil {
		t.Fatalf("lab.Start over leftovers: %v", err)
	}
	if _, err := os.Stat("/proc/" + itoa(oldHolder)); err == nil && !isZombie(oldHolder) {
		t.Errorf("holder %d of the crashed lab still runs", oldHolder)
	}
	if nss, _ := labNamespaces(ctx); strings.Join(nss, ",") != "hm-h1,hm-sw" && strings.Join(nss, ",") != "hm-sw,hm-h1" {
		t.Errorf("namespaces after restart = %v, want hm-sw and hm-h1", nss)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if nss, _ := labNamespaces(ctx); len(nss) != 0 {
		t.Errorf("namespaces left after Close: %v", nss)
	}
	for _, link := range []string{rootMgmt, rootVM} {
		if _, err := os.Stat("/sys/class/net/" + link); err == nil {
			t.Errorf("link %s left after Close", link)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

package migrate

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

// builder assembles an fsm.State for tests. Defaults describe a healthy,
// uniform cluster c1 in which any VM may move anywhere, so each test states
// only the one fact it is about.
type builder struct{ st *fsm.State }

func newBuilder() *builder { return &builder{st: fsm.NewState()} }

// host adds an Up host of cluster c1 with 32 GiB free of 64, 16 CPUs, the
// networks ovirtmgmt and prod VLAN 100, and storage domain nfs1.
func (b *builder) host(name string, opts ...func(*fsm.Host)) *builder {
	h := &fsm.Host{
		HostFacts: fsm.HostFacts{
			Name: name, Cluster: "c1", Arch: "x86_64", CPUModel: "Skylake",
			CPUFlags:    []string{"vmx", "aes", "avx2"},
			MemTotalMiB: 65536, MemFreeMiB: 32768, CPUs: 16, CPUsFree: 8,
			Networks:       []fsm.Network{{Name: "ovirtmgmt"}, {Name: "prod", VLAN: 100}},
			StorageDomains: []string{"nfs1"},
		},
		State: fsm.HostUp,
	}
	for _, o := range opts {
		o(h)
	}
	b.st.Hosts[name] = h
	return b
}

// vm adds a running 2 GiB, 2-vCPU VM on host with a NIC on prod VLAN 100 and
// a disk on nfs1 with cache none.
func (b *builder) vm(name, host string, opts ...func(*fsm.VM)) *builder {
	v := &fsm.VM{
		Name: name, Host: host, MemoryMiB: 2048, VCPUs: 2, State: fsm.VMRunning,
		CPUFlags: []string{"vmx"},
		NICs:     []fsm.NIC{{MAC: "52:54:00:00:00:01", Network: "prod", VLAN: 100}},
		Disks:    []fsm.Disk{{Target: "vda", Source: "/nfs1/" + name, StorageDomain: "nfs1", Cache: "none"}},
	}
	for _, o := range opts {
		o(v)
	}
	b.st.VMs[name] = v
	return b
}

// queue appends a Queued migration of vm from its current host and marks the
// VM as held by it, as the FSM does on enqueue. It returns the ID.
func (b *builder) queue(vm string, opts ...func(*fsm.Migration)) string {
	b.st.Seq++
	id := fmt.Sprintf("m%d", b.st.Seq)
	v := b.st.VMs[vm]
	m := &fsm.Migration{ID: id, VM: vm, Source: v.Host, Cluster: b.st.Hosts[v.Host].Cluster, State: fsm.MigQueued}
	for _, o := range opts {
		o(m)
	}
	v.Migration = id
	b.st.Migrations[id] = m
	b.st.Queue = append(b.st.Queue, id)
	return id
}

// running appends a migration of vm to dest that already holds its slots.
func (b *builder) running(vm, dest string) string {
	return b.queue(vm, func(m *fsm.Migration) { m.State = fsm.MigRunning; m.Dest = dest })
}

func (b *builder) cluster(c fsm.Cluster) *builder {
	b.st.Clusters[c.Name] = &c
	return b
}

// hosts adds hosts named prefix1..prefixN with the same options.
func (b *builder) hosts(prefix string, n int, opts ...func(*fsm.Host)) *builder {
	for i := 1; i <= n; i++ {
		b.host(fmt.Sprintf("%s%d", prefix, i), opts...)
	}
	return b
}

func memFree(mib uint64) func(*fsm.Host) { return func(h *fsm.Host) { h.MemFreeMiB = mib } }

func inCluster(c string) func(*fsm.Host) { return func(h *fsm.Host) { h.Cluster = c } }

func pinned(dest string) func(*fsm.Migration) {
	return func(m *fsm.Migration) { m.Dest = dest; m.Pinned = true }
}

// apply writes decisions into st the way the leader's Raft commands would:
// grants become Running with their destination and bandwidth, failures leave
// the queue and release the VM.
func apply(t *testing.T, st *fsm.State, ds []Decision) {
	t.Helper()
	for _, d := range ds {
		m := st.Migrations[d.Migration]
		if m == nil || m.State != fsm.MigQueued {
			t.Fatalf("decision for %s, which is not queued: %+v", d.Migration, d)
		}
		if d.Fail != "" {
			finish(st, m, fsm.MigFailed)
			continue
		}
		m.State, m.Dest, m.GrantedMiB, m.PlacementReason = fsm.MigRunning, d.Dest, d.BandwidthMiB, d.Reason
		fsm.ApplyShares(st, d.Reshare)
	}
}

// finish ends m. Success moves the VM and its memory to the destination, as
// the hosts' next gossip would.
func finish(st *fsm.State, m *fsm.Migration, state fsm.MigrationState) {
	m.State = state
	st.Queue = slices.DeleteFunc(st.Queue, func(id string) bool { return id == m.ID })
	v := st.VMs[m.VM]
	if v == nil {
		return
	}
	v.Migration = ""
	if state == fsm.MigSucceeded {
		st.Hosts[m.Source].MemFreeMiB += v.MemoryMiB
		st.Hosts[m.Dest].MemFreeMiB -= v.MemoryMiB
		v.Host = m.Dest
	}
}

// result returns the named check's result, failing the test when absent.
func result(t *testing.T, rs []CheckResult, name string) CheckResult {
	t.Helper()
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no check %q in %v", name, rs)
	return CheckResult{}
}

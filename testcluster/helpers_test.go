package testcluster

import (
	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate/sim"
)

func simVM(name string, memMiB uint64) sim.VMSpec {
	return sim.VMSpec{Name: name, MemoryMiB: memMiB, VCPUs: 1, NICs: []fsm.NIC{{Network: "vmnet"}},
		Disks: []fsm.Disk{{Target: "vda", Source: "/shared/" + name + ".qcow2", Cache: "none"}}}
}

func migrateTo(vm, to string, mib uint64) api.MigrateRequest {
	return api.MigrateRequest{VM: vm, To: to, BandwidthMiB: mib}
}

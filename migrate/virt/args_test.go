package virt

import (
	"reflect"
	"testing"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/migrate"
)

func TestMigrateArgsMinimal(t *testing.T) {
	params, flags := migrateArgs(migrate.Params{DestURI: "qemu+tcp://10.0.0.2/system"})
	if flags != baseFlags {
		t.Errorf("flags %#x, want base %#x", flags, baseFlags)
	}
	if flags&libvirt.MIGRATE_TLS != 0 {
		t.Errorf("flags %#x: TLS without Params.TLS", flags)
	}
	for _, f := range []libvirt.DomainMigrateFlags{libvirt.MIGRATE_LIVE, libvirt.MIGRATE_PEER2PEER,
		libvirt.MIGRATE_PERSIST_DEST, libvirt.MIGRATE_UNDEFINE_SOURCE, libvirt.MIGRATE_ABORT_ON_ERROR} {
		if flags&f == 0 {
			t.Errorf("base flags lack %#x", f)
		}
	}
	if !reflect.DeepEqual(*params, libvirt.DomainMigrateParameters{}) {
		t.Errorf("params %+v, want none set", *params)
	}
}

func TestMigrateArgsFull(t *testing.T) {
	params, flags := migrateArgs(migrate.Params{
		DestURI:       "qemu+tcp://10.0.0.2/system",
		MigrateURI:    "tcp://10.1.0.2",
		BandwidthMiB:  52,
		AutoConverge:  true,
		AllowPostCopy: true,
		CopyStorage:   []string{"vda", "vdb"},
		Unsafe:        true,
		TLS:           true,
	})
	want := baseFlags | libvirt.MIGRATE_AUTO_CONVERGE | libvirt.MIGRATE_POSTCOPY |
		libvirt.MIGRATE_NON_SHARED_DISK | libvirt.MIGRATE_UNSAFE | libvirt.MIGRATE_TLS
	if flags != want {
		t.Errorf("flags %#x, want %#x", flags, want)
	}
	if !params.URISet || params.URI != "tcp://10.1.0.2" {
		t.Errorf("migrate_uri %v %q", params.URISet, params.URI)
	}
	if !params.BandwidthSet || params.Bandwidth != 52 {
		t.Errorf("bandwidth %v %d", params.BandwidthSet, params.Bandwidth)
	}
	if !params.MigrateDisksSet || !reflect.DeepEqual(params.MigrateDisks, []string{"vda", "vdb"}) {
		t.Errorf("migrate_disks %v %v", params.MigrateDisksSet, params.MigrateDisks)
	}
}

func TestMigrateArgsParallel(t *testing.T) {
	params, flags := migrateArgs(migrate.Params{DestURI: "qemu+tls://h2/system", Parallel: 4, TLS: true})
	if flags&libvirt.MIGRATE_PARALLEL == 0 || !params.ParallelConnectionsSet || params.ParallelConnections != 4 {
		t.Errorf("parallel 4: flags %#x, connections %v %d", flags, params.ParallelConnectionsSet, params.ParallelConnections)
	}
	for _, p := range []migrate.Params{{Parallel: 1}, {Parallel: 4, AllowPostCopy: true}} {
		params, flags := migrateArgs(p)
		if flags&libvirt.MIGRATE_PARALLEL != 0 || params.ParallelConnectionsSet {
			t.Errorf("%+v: parallel set (flags %#x)", p, flags)
		}
	}
}

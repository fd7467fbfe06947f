// Package e2e tests hostmesh end to end on real hypervisors: meshd runs in
// every host of the lab (testcluster/lab: libvirtd and QEMU in network and
// mount namespaces), drives real libvirt migrations, and the tests act only
// as an operator would, through the meshctl binary, then check the outcome
// from outside: the guest's serial counter, its network and disk, virsh on
// every host and the hosts' interface counters.
//
// The tests need root, libvirtd and QEMU; one lab runs per machine, so run
// them under the lab lock:
//
//	flock /tmp/hostmesh-lab.lock env GOFLAGS=-tags=libvirt_dlopen \
//	    go test -count=1 -p 1 -timeout 30m ./testcluster/e2e/
package e2e

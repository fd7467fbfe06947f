// Package lab brings up several real libvirt+QEMU "hypervisor hosts" on one
// machine so that live migration can be tested end to end without a rack.
//
// Each host is a network namespace (hm-hN) plus its own mount and UTS
// namespaces, held open by a small holder process, with its own libvirtd
// listening with TLS on the host's management IP (the lab creates a mesh CA
// and gives every host a certificate for libvirtd, QEMU's migration streams
// and meshd alike, see pki.go). A switch namespace (hm-sw) holds one
// bridge per network — management, migration and VM — and every host has a
// veth into each, so traffic of each kind crosses its own interface and can be
// measured apart. The root namespace gets one veth into the management bridge
// and one into the VM bridge so tests, meshctl and HTTP checks of guests run
// from the root namespace.
//
// Guests are real QEMU guests (software emulation: KVM guests hang on this
// kind of machine, see /work/shared/notes/lab.md) booting Debian's cloud
// kernel and an initramfs with busybox and guestagent, a workload that prints
// a counter on the serial console, serves HTTP and TCP echo on the VM network,
// dirties memory at a set rate and reads/writes its disk.
//
// Everything the lab creates is named hm-* or lives under Config.Dir, so Start
// can first remove what a crashed earlier run left behind.
package lab

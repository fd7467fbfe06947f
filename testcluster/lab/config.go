package lab

import "fmt"

// Interface names inside every host's network namespace. They are fixed so
// that tests and meshd configuration can name them without asking the lab.
const (
	// MgmtIface carries gossip, Raft, the meshd API and libvirt control.
	MgmtIface = "mgmt0"
	// MigIface carries migration memory and disk streams.
	MigIface = "mig0"
	// VMBridge is the bridge guest NICs attach to.
	VMBridge = "br-vm"
	// VMUplink is the host's port from VMBridge into the shared VM segment.
	VMUplink = "vm0"
)

// Namespace and link names. Everything starts with "hm-" (or lives inside an
// hm-* namespace) so a later Start can find and remove leftovers.
const (
	nsPrefix   = "hm-"
	switchNS   = "hm-sw"
	rootMgmt   = "hm-mgmt" // root-namespace end of the management veth
	rootVM     = "hm-vm"   // root-namespace end of the VM-network veth
	swBrMgmt   = "mgmt"
	swBrMig    = "mig"
	swBrVM     = "vm"
	defaultDir = "/tmp/hostmesh-lab"
)

// Private subnets of the three networks. Only these addresses are used.
const (
	MgmtPrefix = "10.77.0."
	MigPrefix  = "10.78.0."
	VMPrefix   = "10.79.0."
	// RootMgmtIP and RootVMIP are the root namespace's addresses on the
	// management and VM networks.
	RootMgmtIP = MgmtPrefix + "1"
	RootVMIP   = VMPrefix + "1"
)

// Config chooses the shape of the lab.
type Config struct {
	// Hosts is the number of hypervisor hosts; 0 means 3.
	Hosts int
	// Dir holds all lab state (per-host libvirt dirs, shared and local
	// storage, guest images). Empty means /tmp/hostmesh-lab.
	Dir string
	// Clusters optionally names the cluster of each host (index i is host
	// i+1); hosts without an entry get "default".
	Clusters []string
	// ListenTCP makes every libvirtd also listen on qemu+tcp://MGMT/system
	// without authentication, the lab's link before TLS, for debugging with
	// virsh from the root namespace. Off by default: libvirtd listens only
	// with TLS (qemu+tls, the lab CA's certificates).
	ListenTCP bool
	// TCGWithout gives hosts (by name, "h2") a TCG CPU without the listed
	// features (QEMU's names, "mpx"), so that lab hosts present different
	// CPUs to libvirt (cpu.go).
	TCGWithout map[string][]string
	// Logf, if set, receives progress lines (phases and their durations);
	// tests pass t.Logf, labctl prints them.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() (Config, error) {
	if c.Hosts == 0 {
		c.Hosts = 3
	}
	if c.Hosts < 1 || c.Hosts > 40 {
		return c, fmt.Errorf("lab config: %d hosts: want 1..40", c.Hosts)
	}
	if c.Dir == "" {
		c.Dir = defaultDir
	}
	if len(c.Clusters) > c.Hosts {
		return c, fmt.Errorf("lab config: %d cluster names for %d hosts", len(c.Clusters), c.Hosts)
	}
	if err := validTCGWithout(c); err != nil {
		return c, err
	}
	return c, nil
}

// hostAddr returns the last octet of host i's (1-based) addresses on every network.
func hostOctet(i int) int { return 10 + i }

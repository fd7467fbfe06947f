// Package sim is a pure-Go simulated hypervisor that implements
// migrate.Hypervisor and migrate.Job. It exists so the mesh can be demonstrated
// and tested at a scale no lab of real hypervisors reaches (100 hosts, 5,000
// VMs in one process); it never replaces tests against libvirt itself.
//
// A migration follows the pre-copy model of Clark et al. (NSDI 2005) as QEMU
// implements it: pass 1 sends all guest memory, each later pass sends what the
// guest dirtied during the previous one, and the job switches over when what
// remains fits in bandwidth × allowed downtime. Auto-converge throttles the
// dirty rate as QEMU does (20%, then +10% per step); post-copy moves the guest
// at once and pulls the rest. All time is simulated time from a Clock, which a
// driver advances in fixed steps scaled from real time (or a test advances by
// hand), so results do not depend on scheduling jitter and idle VMs cost
// nothing.
//
// Hosts in one process find each other through a Registry ("sim://NAME");
// hosts in different processes through Handler and "sim+http://HOST:PORT/PREFIX"
// destination URIs.
package sim

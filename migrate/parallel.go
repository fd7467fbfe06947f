package migrate

import "github.com/hostmesh/hostmesh/fsm"

// linkPerConnectionMiB is how much of the migration network one connection
// is given to fill: 10 Gb/s, as oVirt opens about one connection per
// 10 Gb/s of its migration network. One stream is bound by one core
// copying (and, with TLS, encrypting) pages; more connections spread that
// over cores on both ends.
const linkPerConnectionMiB = 10_000_000_000 / 8 / (1 << 20) // 1192 MiB/s

// Connections is the number of connections a migration opens: the one it
// asked for (asked > 0), else the cluster's (MigrationParallel > 0), else
// auto: one per 10 Gb/s of the migration network's capacity (the auto
// mode's network, or the fixed per-migration cap), at least 1, at most the
// VM's vCPUs (each connection's pages are dirtied and sent by threads
// competing with the guest's). Asked and cluster values are taken as set:
// an operator may want more streams than vCPUs on purpose.
func Connections(asked int, cl fsm.Cluster, vcpus int) int {
	if asked > 0 {
		return asked
	}
	if cl.MigrationParallel > 0 {
		return cl.MigrationParallel
	}
	capMiB := cl.BandwidthMiB
	if cl.BandwidthMode == fsm.BandwidthAuto && cl.MigrationNetMiB > 0 {
		capMiB = cl.MigrationNetMiB
	}
	n := int(capMiB / linkPerConnectionMiB)
	if vcpus > 0 {
		n = min(n, vcpus)
	}
	return max(1, n)
}

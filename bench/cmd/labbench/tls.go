package main

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// tlsBandwidths are the caps the TLS comparison runs at: the single
// migration's (the stream is rate-bound and TLS should cost nothing) and a
// cap QEMU never reaches here, where the stream is bound by the CPU and the
// cost of encrypting it shows.
func tlsBandwidths(bw int) []int { return []int{bw, 1000} }

// tlsPart moves one guest back and forth between h1 and h2 with meshctl,
// switching the cluster's migration transport between tls and plain
// (untimed) before each move, alternating which goes first run by run.
func tlsPart(ctx context.Context, m *mesh, runs, bw int) (benchkit.Section, error) {
	bws := tlsBandwidths(bw)
	sec := benchkit.Section{Title: "TLS migration (lab)",
		Setup: fmt.Sprintf("Real libvirt 9.0 + QEMU 7.2 hosts in network namespaces (TCG guests), meshd on each, libvirtd on qemu+tls. "+
			"One idle 256 MiB guest (128 MiB filled with data at boot) moved between h1 and h2 by `meshctl migrate --to DEST --bandwidth BW --wait` "+
			"(policy minimal-downtime), the cluster set by `meshctl cluster c1 --migration-transport tls` (VIR_MIGRATE_TLS: QEMU encrypts the stream) "+
			"or `plain` before each move (untimed); which goes first alternates run by run. BW = %d MiB/s (the single migration's cap) "+
			"and %d MiB/s (more than QEMU reaches here: the stream is bound by the CPU). Total time is meshctl's wall time; downtime is what meshctl reports.",
			bws[0], bws[1])}
	name := "tls-bench"
	h1, h2 := m.host("h1"), m.host("h2")
	if _, err := m.bootGuest(ctx, h1, lab.GuestSpec{Name: name, MemoryMiB: 256, FillMiB: 128}, 2*time.Minute); err != nil {
		return sec, err
	}
	defer m.removeGuest(ctx, name)
	defer m.ctl(ctx, "cluster", "c1", "--migration-transport", "tls")
	if err := m.waitVMsOn(ctx, "h1", name); err != nil {
		return sec, err
	}
	at, other := h1, h2
	for _, b := range bws {
		label := fmt.Sprintf("--bandwidth %d", b)
		total := benchkit.Comparison{Name: "total time, " + label, Goal: "≤ 1.10",
			Subject: benchkit.Series{Name: "tls", Unit: "s"}, Baseline: benchkit.Series{Name: "plain", Unit: "s"}}
		down := benchkit.Comparison{Name: "downtime, " + label,
			Subject: benchkit.Series{Name: "tls", Unit: "ms"}, Baseline: benchkit.Series{Name: "plain", Unit: "ms"}}
		sent := benchkit.Comparison{Name: "bytes sent on the migration network, " + label,
			Subject: benchkit.Series{Name: "tls", Unit: "MiB"}, Baseline: benchkit.Series{Name: "plain", Unit: "MiB"}}
		for r := 0; r < runs; r++ {
			for k := 0; k < 2; k++ {
				transport := "plain"
				if (r+k)%2 == 0 {
					transport = "tls"
				}
				if res := m.ctl(ctx, "cluster", "c1", "--migration-transport", transport); res.code != 0 {
					return sec, fmt.Errorf("meshctl cluster c1 --migration-transport %s: %s", transport, res)
				}
				mv, err := m.meshctlMigrate(ctx, name, at, other, "--bandwidth", strconv.Itoa(b))
				if err != nil {
					return sec, err
				}
				if err := m.waitVMsOn(ctx, other.Name, name); err != nil {
					return sec, err
				}
				side := func(c *benchkit.Comparison) *benchkit.Series {
					if transport == "tls" {
						return &c.Subject
					}
					return &c.Baseline
				}
				side(&total).Values = append(side(&total).Values, mv.wall.Seconds())
				side(&down).Values = append(side(&down).Values, mv.downtime)
				side(&sent).Values = append(side(&sent).Values, mv.sentMiB)
				log.Printf("tls %s run %d: %s %s → %s in %.2f s (reported %.2f s), downtime %.0f ms, %.1f MiB sent",
					label, r+1, transport, at.Name, other.Name, mv.wall.Seconds(), mv.reported.Seconds(), mv.downtime, mv.sentMiB)
				at, other = other, at
			}
		}
		total.Met = benchkit.Bool(total.Ratio() <= 1.10)
		sec.Comparisons = append(sec.Comparisons, total, down, sent)
	}
	return sec, nil
}

package main

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// parallelConns are the connection counts meshctl runs with.
var parallelConns = []int{1, 2, 4}

// parallelPart moves one idle guest back and forth between h1 and h2
// without a bandwidth cap: virsh migrate --live --p2p with its defaults
// (one connection; the lab's TLS, as the mesh's default transport) against
// meshctl migrate --parallel N for each N, round robin so that every side
// sees the same drift of the machine. Ratios are meshctl ÷ virsh.
func parallelPart(ctx context.Context, m *mesh, runs int) (benchkit.Section, error) {
	sec := benchkit.Section{Title: "Parallel connections (lab)",
		Setup: fmt.Sprintf("One idle 256 MiB guest (128 MiB filled at boot) moved between h1 and h2, uncapped: "+
			"`virsh migrate --live --p2p --persistent --undefinesource --unsafe --tls VM qemu+tls://DEST/system tcp://DEST_MIG_IP` "+
			"(libvirt's defaults: one connection, no bandwidth cap; 100 ms allowed downtime) against "+
			"`meshctl migrate --to DEST --bandwidth %d --parallel N --wait` (N = 1, 2, 4; policy minimal-downtime, the cluster's TLS transport), "+
			"in turn, %d rounds. Total time is each command's wall time.", fsm.MaxBandwidthMiB, runs)}
	name := "par-bench"
	h1, h2 := m.host("h1"), m.host("h2")
	if _, err := m.bootGuest(ctx, h1, lab.GuestSpec{Name: name, MemoryMiB: 256, FillMiB: 128}, 2*time.Minute); err != nil {
		return sec, err
	}
	defer m.removeGuest(ctx, name)
	if err := m.waitVMsOn(ctx, "h1", name); err != nil {
		return sec, err
	}
	virshT := benchkit.Series{Name: "virsh migrate --live --p2p (defaults)", Unit: "s"}
	meshT := map[int]*benchkit.Series{}
	reported := map[int]*benchkit.Series{}
	for _, n := range parallelConns {
		meshT[n] = &benchkit.Series{Name: fmt.Sprintf("meshctl --parallel %d", n), Unit: "s"}
		reported[n] = &benchkit.Series{Name: fmt.Sprintf("meshctl --parallel %d: its own reported time (grant → end)", n), Unit: "s"}
	}
	at, other := h1, h2
	for r := 0; r < runs; r++ {
		sides := append([]int{0}, parallelConns...) // 0: virsh
		// rotate the order each round
		sides = append(sides[r%len(sides):], sides[:r%len(sides)]...)
		for _, n := range sides {
			var mv move
			var err error
			if n == 0 {
				mv, err = m.virshMove(ctx, name, at, other, 0)
			} else {
				mv, err = m.meshctlMigrate(ctx, name, at, other, "--bandwidth", strconv.Itoa(fsm.MaxBandwidthMiB), "--parallel", strconv.Itoa(n))
			}
			if err != nil {
				return sec, err
			}
			if err := m.waitVMsOn(ctx, other.Name, name); err != nil {
				return sec, err
			}
			if n == 0 {
				virshT.Values = append(virshT.Values, mv.wall.Seconds())
			} else {
				meshT[n].Values = append(meshT[n].Values, mv.wall.Seconds())
				reported[n].Values = append(reported[n].Values, mv.reported.Seconds())
			}
			log.Printf("parallel run %d: %s %s → %s in %.2f s (reported %.2f s), downtime %.0f ms, %.1f MiB sent",
				r+1, map[bool]string{true: "virsh", false: "meshctl --parallel " + strconv.Itoa(n)}[n == 0], at.Name, other.Name,
				mv.wall.Seconds(), mv.reported.Seconds(), mv.downtime, mv.sentMiB)
			at, other = other, at
		}
	}
	for _, n := range parallelConns {
		sec.Comparisons = append(sec.Comparisons, benchkit.Comparison{Name: fmt.Sprintf("total time, uncapped, %d connection(s)", n),
			Subject: *meshT[n], Baseline: virshT})
		sec.Series = append(sec.Series, *reported[n])
	}
	return sec, nil
}

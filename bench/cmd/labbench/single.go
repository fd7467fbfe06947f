package main

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/cli"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// move is one measured migration of either side.
type move struct {
	wall     time.Duration // the command's wall time: what the operator waits
	reported time.Duration // meshctl's own "in ..." (grant to end); 0 for virsh
	downtime float64       // ms
	sentMiB  float64       // source's migration interface, during the command
}

// meshctlMigrate runs meshctl migrate --wait to dst and parses its closing line.
func (m *mesh) meshctlMigrate(ctx context.Context, name string, src, dst *lab.Host, flags ...string) (move, error) {
	tx0, err := migTx(src)
	if err != nil {
		return move{}, err
	}
	r := m.ctl(ctx, append([]string{"migrate", name, "--to", dst.Name, "--wait"}, flags...)...)
	tx1, _ := migTx(src)
	if r.code != 0 {
		return move{wall: r.took}, fmt.Errorf("meshctl migrate %s → %s: %s", name, dst.Name, r)
	}
	cm, err := cli.ParseMoved(r.stdout)
	if err != nil {
		return move{wall: r.took}, fmt.Errorf("meshctl migrate %s: %w", name, err)
	}
	return move{wall: r.took, reported: cm.Total, downtime: float64(cm.Downtime.Milliseconds()), sentMiB: mib(tx1 - tx0)}, nil
}

// virshMove runs the virsh baseline and reads its job stats on dst.
func (m *mesh) virshMove(ctx context.Context, name string, src, dst *lab.Host, bw int, extra ...string) (move, error) {
	tx0, err := migTx(src)
	if err != nil {
		return move{}, err
	}
	took, err := virshMigrate(ctx, src, dst, name, bw, extra...)
	tx1, _ := migTx(src)
	if err != nil {
		return move{wall: took}, err
	}
	dt, _, err := completedJob(ctx, dst, name)
	if err != nil {
		return move{wall: took}, err
	}
	return move{wall: took, downtime: float64(dt), sentMiB: mib(tx1 - tx0)}, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// singlePart moves one 256 MiB guest back and forth between h1 and h2 with
// meshctl and with virsh, alternating which goes first, idle and dirtying.
func singlePart(ctx context.Context, m *mesh, runs, bw, dirty int) (benchkit.Section, error) {
	sec := benchkit.Section{Title: "Single migration (lab)",
		Setup: fmt.Sprintf("Real libvirt 9.0 + QEMU 7.2 hosts in network namespaces (TCG guests), meshd on each. One 256 MiB guest "+
			"(128 MiB filled with data at boot), idle or dirtying %d MiB/s, moved between h1 and h2 by `meshctl migrate --to DEST --bandwidth %d --wait` "+
			"(policy minimal-downtime: 100 ms allowed downtime, auto-converge; the cluster's default TLS transport) and by `virsh migrate --live --p2p --persistent --undefinesource --unsafe --tls "+
			"--auto-converge --bandwidth %d VM qemu+tls://DEST/system tcp://DEST_MIG_IP` after `virsh migrate-setmaxdowntime VM 100`; "+
			"the order of the two alternates run by run. Total time is each command's wall time.", dirty, bw, bw)}
	for _, w := range []struct {
		label string
		dirty int
	}{{"idle", 0}, {fmt.Sprintf("dirtying %d MiB/s", dirty), dirty}} {
		name := "single-idle"
		if w.dirty > 0 {
			name = "single-dirty"
		}
		h1, h2 := m.host("h1"), m.host("h2")
		if _, err := m.bootGuest(ctx, h1, lab.GuestSpec{Name: name, MemoryMiB: 256, FillMiB: 128, DirtyMiBps: w.dirty}, 2*time.Minute); err != nil {
			return sec, err
		}
		if err := m.waitVMsOn(ctx, "h1", name); err != nil {
			return sec, err
		}
		total := benchkit.Comparison{Name: "total time, " + w.label, Goal: "≤ 1.05",
			Subject: benchkit.Series{Name: "meshctl migrate --wait", Unit: "s"}, Baseline: benchkit.Series{Name: "virsh migrate", Unit: "s"}}
		down := benchkit.Comparison{Name: "downtime, " + w.label, Goal: "≤ 1 (no worse)",
			Subject: benchkit.Series{Name: "meshctl (reported)", Unit: "ms"}, Baseline: benchkit.Series{Name: "virsh (domjobinfo --completed)", Unit: "ms"}}
		sent := benchkit.Comparison{Name: "bytes sent on the migration network, " + w.label,
			Subject: benchkit.Series{Name: "meshctl", Unit: "MiB"}, Baseline: benchkit.Series{Name: "virsh", Unit: "MiB"}}
		reported := benchkit.Series{Name: "meshctl's own reported time (grant → end), " + w.label, Unit: "s"}
		at, other := h1, h2
		for r := 0; r < runs; r++ {
			for k := 0; k < 2; k++ {
				useMesh := (r+k)%2 == 0
				var mv move
				var err error
				if useMesh {
					mv, err = m.meshctlMigrate(ctx, name, at, other, "--bandwidth", strconv.Itoa(bw))
				} else {
					mv, err = m.virshMove(ctx, name, at, other, bw, "--auto-converge")
				}
				if err != nil {
					return sec, err
				}
				if err := m.waitVMsOn(ctx, other.Name, name); err != nil {
					return sec, err
				}
				if useMesh {
					total.Subject.Values = append(total.Subject.Values, mv.wall.Seconds())
					down.Subject.Values = append(down.Subject.Values, mv.downtime)
					sent.Subject.Values = append(sent.Subject.Values, mv.sentMiB)
					reported.Values = append(reported.Values, mv.reported.Seconds())
				} else {
					total.Baseline.Values = append(total.Baseline.Values, mv.wall.Seconds())
					down.Baseline.Values = append(down.Baseline.Values, mv.downtime)
					sent.Baseline.Values = append(sent.Baseline.Values, mv.sentMiB)
				}
				log.Printf("single %s run %d: %s %s → %s in %.2f s (reported %.2f s), downtime %.0f ms, %.1f MiB sent",
					w.label, r+1, map[bool]string{true: "meshctl", false: "virsh"}[useMesh], at.Name, other.Name, mv.wall.Seconds(), mv.reported.Seconds(), mv.downtime, mv.sentMiB)
				at, other = other, at
			}
		}
		total.Met = benchkit.Bool(total.Ratio() <= 1.05)
		down.Met = benchkit.Bool(down.Ratio() <= 1)
		sec.Comparisons = append(sec.Comparisons, total, down, sent)
		sec.Series = append(sec.Series, reported)
		m.removeGuest(ctx, name)
	}
	return sec, nil
}

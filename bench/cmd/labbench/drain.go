package main

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// drainPart drains h1's six guests with meshctl drain --wait in an auto
// cluster sharing a migration network of net MiB/s (two outgoing slots),
// with setups overlapping the end of transfers and without, alternating
// with a serial virsh loop at the same total bandwidth (one migration at a
// time, capped at net). Between runs the guests are brought back to h1,
// untimed.
//
// sides names the sides run ("overlap", "plain", "serial"; all three by
// default): a session short of lab time measures the overlapping drain
// alone. The plain side runs with --setup-overlap plainBy (0: no overlap;
// another window compares two windows run by run in one lab). Each meshctl drain samples h1's migration link every 100 ms and
// splits its time over the physical limit (see linkUse).
func drainPart(ctx context.Context, m *mesh, runs, net, guests, mem, fill int, sides string, overlapBy, plainBy time.Duration) (benchkit.Section, error) {
	plainName := "no overlap"
	if plainBy > 0 {
		plainName = "setups overlapping by " + plainBy.String()
	}
	overlapName := "setups overlapping by " + overlapBy.String()
	h1 := m.host("h1")
	s := benchkit.Section{Title: "Drain (lab)"}
	s.Setup = fmt.Sprintf("%d guests of %d MiB (the size of the single-migration guest; %d MiB filled with data at boot) on h1 of a 3-host lab. "+
		"`meshctl cluster c1 --bandwidth-mode auto --migration-net %d --max-outgoing 2 --setup-overlap %s` (the migration network capped at %d MiB/s, "+
		"shared by the migrations transferring; the next one's setup starts when a transfer is predicted to end within %s), "+
		"then `meshctl drain h1 --wait` (placement spreads them over h2 and h3); the same drain with `--setup-overlap %s`; "+
		"and a serial loop of `virsh migrate --live --p2p --persistent --undefinesource --unsafe --tls --auto-converge --bandwidth %d` "+
		"(downtime 100 ms) over the same guests, alternately to h2 and h3, at the same total bandwidth. The three sides rotate run by run. "+
		"Physical limit = bytes sent on h1's migration interface ÷ %d MiB/s.", guests, mem, fill, net, overlapBy, net, overlapBy, plainBy, net, net)
	if r := m.ctl(ctx, "cluster", "c1", "--bandwidth-mode", "auto", "--migration-net", strconv.Itoa(net), "--max-outgoing", "2"); r.code != 0 {
		return s, fmt.Errorf("meshctl cluster: %s", r)
	}
	var names []string
	for i := 0; i < guests; i++ {
		name := fmt.Sprintf("drain%d", i+1)
		if _, err := m.bootGuest(ctx, h1, lab.GuestSpec{Name: name, MemoryMiB: mem, FillMiB: fill}, 2*time.Minute); err != nil {
			return s, err
		}
		names = append(names, name)
	}
	if err := m.waitVMsOn(ctx, "h1", names...); err != nil {
		return s, err
	}
	serial := benchkit.Series{Name: "serial virsh migrate loop at the same total bandwidth", Unit: "s"}
	overlap := benchkit.Series{Name: "meshctl drain --wait, " + overlapName, Unit: "s"}
	plain := benchkit.Series{Name: "meshctl drain --wait, " + plainName, Unit: "s"}
	c := benchkit.Comparison{Name: fmt.Sprintf("drain of %d guests vs serial virsh", guests), Goal: "≤ 0.40 (≥ 2.5× faster than serial)",
		Subject: overlap, Baseline: serial}
	co := benchkit.Comparison{Name: "drain, " + overlapName + " vs " + plainName, Goal: "< 1", Subject: overlap, Baseline: plain}
	limitO := benchkit.Series{Name: "drain time ÷ physical limit, " + overlapName, Unit: "×", Goal: "≤ 1.10"}
	limitP := benchkit.Series{Name: "drain time ÷ physical limit, " + plainName, Unit: "×", Goal: "≤ 1.10"}
	limitS := benchkit.Series{Name: "serial loop time ÷ physical limit", Unit: "×"}
	sentD := benchkit.Series{Name: "bytes sent by h1 during a drain", Unit: "MiB"}
	fixed := benchkit.Series{Name: "per migration of a drain: time outside libvirt's transfer job", Unit: "s",
		Note: "the mesh's grant to end of each drained VM's migration minus the libvirt job's elapsed time in its last progress report: " +
			"the destination's QEMU starting, the finish on both sides, the last report's age and the mesh's own scheduling"}
	// head, gaps and tail of each meshctl side: [0] overlap, [1] plain
	var head, gaps, tail [2]benchkit.Series
	for i, n := range []string{overlapName, plainName} {
		head[i] = benchkit.Series{Name: "drain, " + n + ": head (start to the link's first bytes: the first wave's setup)", Unit: "s"}
		gaps[i] = benchkit.Series{Name: "drain, " + n + ": gaps (first to last bytes, less bytes ÷ capacity: hand-overs between waves)", Unit: "s"}
		tail[i] = benchkit.Series{Name: "drain, " + n + ": tail (the link's last bytes to meshctl's return)", Unit: "s"}
	}
	overlapFlag := map[bool]string{true: overlapBy.String(), false: plainBy.String()}
	sideNames := []string{"overlap", "plain", "serial"}
	for r := 0; r < runs; r++ {
		for k := 0; k < 3; k++ {
			side := (r + k) % 3 // 0 overlap, 1 no overlap, 2 serial virsh
			if !strings.Contains(sides, sideNames[side]) {
				continue
			}
			tx0, err := migTx(h1)
			if err != nil {
				return s, err
			}
			var took time.Duration
			if side < 2 {
				if r := m.ctl(ctx, "cluster", "c1", "--setup-overlap", overlapFlag[side == 0]); r.code != 0 {
					return s, fmt.Errorf("meshctl cluster --setup-overlap: %s", r)
				}
				link := sampleLink(h1)
				t0 := time.Now()
				res := m.ctl(ctx, "drain", "h1", "--wait")
				t1 := time.Now()
				samples, lerr := link.finish()
				if res.code != 0 {
					return s, fmt.Errorf("meshctl drain h1 --wait: %s", res)
				}
				took = res.took
				if lerr != nil {
					log.Printf("drain run %d: %v", r+1, lerr)
				} else {
					u := analyzeLink(samples, t0, t1, float64(net))
					line := fmt.Sprintf("run %d, %s (%.1f s): %s", r+1, []string{overlapName, plainName}[side], took.Seconds(), u)
					log.Print("drain link: " + line)
					s.Notes = append(s.Notes, "Link timeline, "+line)
					head[side].Values = append(head[side].Values, u.head)
					gaps[side].Values = append(gaps[side].Values, u.gaps)
					tail[side].Values = append(tail[side].Values, u.tail)
				}
				outside, err := m.outsideJob(ctx, names)
				if err != nil {
					return s, err
				}
				fixed.Values = append(fixed.Values, outside...)
			} else {
				start := time.Now()
				for i, name := range names {
					dst := m.lab.Hosts[1+i%2]
					if _, err := virshMigrate(ctx, h1, dst, name, net, "--auto-converge"); err != nil {
						return s, err
					}
				}
				took = time.Since(start)
			}
			tx1, _ := migTx(h1)
			sent := mib(tx1 - tx0)
			lim := sent / float64(net)
			switch side {
			case 0:
				overlap.Values = append(overlap.Values, took.Seconds())
				limitO.Values = append(limitO.Values, took.Seconds()/lim)
				sentD.Values = append(sentD.Values, sent)
			case 1:
				plain.Values = append(plain.Values, took.Seconds())
				limitP.Values = append(limitP.Values, took.Seconds()/lim)
				sentD.Values = append(sentD.Values, sent)
			case 2:
				serial.Values = append(serial.Values, took.Seconds())
				limitS.Values = append(limitS.Values, took.Seconds()/lim)
			}
			log.Printf("drain run %d: %s took %.1f s, h1 sent %.1f MiB (limit %.1f s)", r+1,
				[]string{"meshctl drain, " + overlapName, "meshctl drain, " + plainName, "serial virsh"}[side], took.Seconds(), sent, lim)
			if err := m.bringBack(ctx, names, side < 2); err != nil {
				return s, err
			}
		}
	}
	c.Subject, c.Baseline, co.Subject, co.Baseline = overlap, serial, overlap, plain
	c.Met = benchkit.Bool(c.Ratio() <= 0.40)
	co.Met = benchkit.Bool(co.Ratio() < 1)
	limitO.Met = benchkit.Bool(limitO.Median() <= 1.10)
	if len(limitP.Values) > 0 {
		limitP.Met = benchkit.Bool(limitP.Median() <= 1.10)
	}
	c.Note = fmt.Sprintf("speed-up serial ÷ drain = %.2f×; at the same total bandwidth the serial loop is bounded by the link too, so the speed-up is at most serial ÷ physical limit (%.2f× here)",
		1/c.Ratio(), limitS.Median())
	// a side left out (-drain-sides) leaves its comparisons and series out
	for _, cmp := range []benchkit.Comparison{c, co} {
		if len(cmp.Subject.Values) > 0 && len(cmp.Baseline.Values) > 0 {
			s.Comparisons = append(s.Comparisons, cmp)
		}
	}
	for _, se := range []benchkit.Series{limitO, limitP, limitS, sentD, fixed, head[0], gaps[0], tail[0], head[1], gaps[1], tail[1]} {
		if len(se.Values) > 0 {
			s.Series = append(s.Series, se)
		}
	}
	for _, n := range names {
		m.removeGuest(ctx, n)
	}
	return s, nil
}

// bringBack returns the guests to h1 (untimed): after a drain, activate h1
// and let the mesh bring them back; after the virsh loop, virsh them back.
func (m *mesh) bringBack(ctx context.Context, names []string, afterDrain bool) error {
	h1 := m.host("h1")
	if afterDrain {
		if r := m.ctl(ctx, "activate", "h1", "--return"); r.code != 0 {
			return fmt.Errorf("meshctl activate h1 --return: %s", r)
		}
	} else {
		if err := m.waitVMsOff(ctx, "h1", names...); err != nil {
			return err
		}
		for i, name := range names {
			if _, err := virshMigrate(ctx, m.lab.Hosts[1+i%2], h1, name, 0); err != nil {
				return err
			}
		}
	}
	return m.waitVMsOn(ctx, "h1", names...)
}

// waitVMsOff waits until the mesh lists none of the VMs on host.
func (m *mesh) waitVMsOff(ctx context.Context, host string, names ...string) error {
	_, err := benchkit.Poll(2*time.Minute, 200*time.Millisecond, fmt.Sprintf("%v off %s in the mesh", names, host), func() bool {
		vms, err := m.vmHosts(ctx)
		if err != nil {
			return false
		}
		for _, n := range names {
			if v := vms[n]; v.Host == host || v.Migration != "" {
				return false
			}
		}
		return true
	})
	return err
}

// outsideJob returns, for the latest migration of each named VM, its time
// from the mesh's start to its end minus the libvirt job's elapsed time.
func (m *mesh) outsideJob(ctx context.Context, names []string) ([]float64, error) {
	var migs []api.Migration
	if err := m.ctlJSON(ctx, &migs, "migrations"); err != nil {
		return nil, err
	}
	latest := map[string]api.Migration{}
	for _, mg := range migs {
		if mg.State == api.MigSucceeded && mg.EndedAt.After(latest[mg.VM].EndedAt) {
			latest[mg.VM] = mg
		}
	}
	var out []float64
	for _, n := range names {
		mg, ok := latest[n]
		if !ok {
			return nil, fmt.Errorf("meshctl migrations: no succeeded migration of %s", n)
		}
		whole := mg.EndedAt.Sub(mg.StartedAt)
		out = append(out, (whole - time.Duration(mg.Progress.ElapsedMs)*time.Millisecond).Seconds())
	}
	return out, nil
}

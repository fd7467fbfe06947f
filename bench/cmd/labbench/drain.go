package main

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// drainPart drains h1's six guests with meshctl drain --wait, alternating
// with a serial virsh loop over the same guests, with the same per-migration
// bandwidth cap. Between runs the guests are brought back to h1, untimed.
func drainPart(ctx context.Context, m *mesh, runs, bw, guests, mem, fill int) (benchkit.Section, error) {
	h1 := m.host("h1")
	s := benchkit.Section{Title: "Drain (lab)"}
	s.Setup = fmt.Sprintf("%d guests of %d MiB (the size of the single-migration guest; %d MiB filled with data at boot) on h1 of a 3-host lab. "+
		"`meshctl cluster c1 --bandwidth %d --max-outgoing 2` then `meshctl drain h1 --wait` (placement spreads them over h2 and h3, 2 at a time), "+
		"against a serial loop of the same `virsh migrate --live --p2p --persistent --undefinesource --unsafe --tls --auto-converge --bandwidth %d` "+
		"(downtime 100 ms) over the same guests, alternately to h2 and h3; the two sides alternate run by run. "+
		"Physical limit = bytes sent on h1's migration interface ÷ (%d MiB/s × 2 outgoing slots).", guests, mem, fill, bw, bw, bw)
	if r := m.ctl(ctx, "cluster", "c1", "--bandwidth", strconv.Itoa(bw), "--bandwidth-mode", "fixed", "--max-outgoing", "2"); r.code != 0 {
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
	c := benchkit.Comparison{Name: fmt.Sprintf("drain of %d guests", guests), Goal: "≤ 0.625 (≥ 1.6× faster than serial)",
		Subject:  benchkit.Series{Name: "meshctl drain --wait", Unit: "s"},
		Baseline: benchkit.Series{Name: "serial virsh migrate loop", Unit: "s"}}
	limit := benchkit.Series{Name: "drain time ÷ physical limit", Unit: "×", Goal: "≤ 1.25"}
	limitS := benchkit.Series{Name: "physical limit of the drain (bytes sent ÷ aggregate bandwidth)", Unit: "s"}
	sentD := benchkit.Series{Name: "bytes sent by h1 during the drain", Unit: "MiB"}
	sentS := benchkit.Series{Name: "bytes sent by h1 during the serial loop", Unit: "MiB"}
	fixed := benchkit.Series{Name: "per migration of a drain: time outside libvirt's transfer job", Unit: "s",
		Note: "the mesh's start to end of each drained VM's migration minus the libvirt job's own elapsed time: " +
			"preparing the destination (its QEMU starts), the finish on both sides, and the mesh's own scheduling; " +
			"every migration pays it once, and no bandwidth is used meanwhile, so it is what the drain loses to the physical limit"}
	for r := 0; r < runs; r++ {
		for k := 0; k < 2; k++ {
			tx0, err := migTx(h1)
			if err != nil {
				return s, err
			}
			var took time.Duration
			useMesh := (r+k)%2 == 0
			if useMesh {
				res := m.ctl(ctx, "drain", "h1", "--wait")
				if res.code != 0 {
					return s, fmt.Errorf("meshctl drain h1 --wait: %s", res)
				}
				took = res.took
				outside, err := m.outsideJob(ctx, names)
				if err != nil {
					return s, err
				}
				fixed.Values = append(fixed.Values, outside...)
			} else {
				start := time.Now()
				for i, name := range names {
					dst := m.lab.Hosts[1+i%2]
					if _, err := virshMigrate(ctx, h1, dst, name, bw, "--auto-converge"); err != nil {
						return s, err
					}
				}
				took = time.Since(start)
			}
			tx1, _ := migTx(h1)
			sent := mib(tx1 - tx0)
			if useMesh {
				c.Subject.Values = append(c.Subject.Values, took.Seconds())
				sentD.Values = append(sentD.Values, sent)
				lim := sent / float64(bw*2)
				limitS.Values = append(limitS.Values, lim)
				limit.Values = append(limit.Values, took.Seconds()/lim)
			} else {
				c.Baseline.Values = append(c.Baseline.Values, took.Seconds())
				sentS.Values = append(sentS.Values, sent)
			}
			log.Printf("drain run %d: %s took %.1f s, h1 sent %.1f MiB", r+1, map[bool]string{true: "meshctl drain", false: "serial virsh"}[useMesh], took.Seconds(), sent)
			if err := m.bringBack(ctx, names, useMesh); err != nil {
				return s, err
			}
		}
	}
	c.Met = benchkit.Bool(c.Ratio() <= 0.625)
	limit.Met = benchkit.Bool(limit.Median() <= 1.25)
	c.Note = fmt.Sprintf("speed-up serial ÷ drain = %.2f×", 1/c.Ratio())
	s.Comparisons = append(s.Comparisons, c)
	s.Series = append(s.Series, limit, limitS, sentD, sentS, fixed)
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

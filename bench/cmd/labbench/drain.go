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

// smallestGuest boots probe guests of growing memory on h and returns the
// smallest size whose workload reaches its first counter, and the largest
// fill of data (tried: a third, a sixth of it, none) such a guest survives
// (the workload fills at boot; too much and the guest's OOM killer ends
// it). The drain uses them so six TCG guests fit two cores.
func (m *mesh) smallestGuest(ctx context.Context, h *lab.Host) (mem, fill int, err error) {
	boots := func(mem, fill int) bool {
		name := fmt.Sprintf("probe-%d-%d", mem, fill)
		_, err := m.bootGuest(ctx, h, lab.GuestSpec{Name: name, MemoryMiB: mem, FillMiB: fill}, 45*time.Second)
		m.removeGuest(ctx, name)
		if err != nil {
			log.Printf("drain: a %d MiB guest filling %d MiB does not boot: %v", mem, fill, err)
		}
		return err == nil
	}
	for _, mem := range []int{64, 96, 128, 192, 256} {
		if !boots(mem, 0) {
			continue
		}
		for _, fill := range []int{mem / 3, mem / 6} {
			if fill > 0 && fill < mem-64 && boots(mem, fill) {
				return mem, fill, nil
			}
		}
		return mem, 0, nil
	}
	return 0, 0, fmt.Errorf("no guest of 64..256 MiB booted on %s", h.Name)
}

// drainPart drains h1's six guests with meshctl drain --wait, alternating
// with a serial virsh loop over the same guests, with the same per-migration
// bandwidth cap. Between runs the guests are brought back to h1, untimed.
func drainPart(ctx context.Context, m *mesh, runs, bw, guests int) (benchkit.Section, error) {
	h1 := m.host("h1")
	s := benchkit.Section{Title: "Drain (lab)"}
	mem, fill, err := m.smallestGuest(ctx, h1)
	if err != nil {
		return s, err
	}
	s.Setup = fmt.Sprintf("%d guests of %d MiB (the smallest the lab's guest boots with, probed 64/96/128/… MiB; %d MiB filled with data at boot, the most of a third or a sixth of it that such a guest survives) on h1 of a 3-host lab. "+
		"`meshctl cluster c1 --bandwidth %d --max-outgoing 2` then `meshctl drain h1 --wait` (placement spreads them over h2 and h3, 2 at a time), "+
		"against a serial loop of the same `virsh migrate --live --p2p --persistent --undefinesource --unsafe --auto-converge --bandwidth %d` "+
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
	s.Series = append(s.Series, limit, limitS, sentD, sentS)
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

package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/cli"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

var policies = []string{"precopy", "minimal-downtime", "post-copy", "suspend-workload", "auto"}

// failLine is meshctl migrate --wait's last line when the migration failed.
var failLine = regexp.MustCompile(`(m\d+): (\S+) (Failed|Cancelled): (.*) \(VM stays on`)

// convergencePart migrates a guest whose dirty rate exceeds the bandwidth
// cap with each policy in turn (round robin, so every policy sees the same
// drift of the machine), plain pre-copy as the baseline.
func convergencePart(ctx context.Context, m *mesh, runs, bw, dirty, memMiB, fillMiB int, policies []string) (benchkit.Section, error) {
	s := benchkit.Section{Title: "Convergence (lab)",
		Setup: fmt.Sprintf("One %d MiB guest (%d MiB filled) whose workload dirties %d MiB/s, moved between h1 and h2 by "+
			"`meshctl migrate --to DEST --bandwidth %d --policy P --wait` with each policy in turn (round robin, %d rounds). "+
			"The dirty rate is what the guest's workload is asked for; under TCG it may reach less (the job's own dirty-rate samples are in meshctl's progress). "+
			"A failed migration (the policy gave up, or the 64 s completion timeout) leaves the guest on its source and is counted as failed: "+
			"its time is the time until it failed and it has no downtime. "+
			"auto samples the guest's dirty rate for 1 s on the source before the job (virDomainStartDirtyRateCalc) and predicts; "+
			"its prediction is judged against the libvirt job's elapsed time (the transfer it models), and its converges-or-not call against what the job did: "+
			"pre-copy alone completing (no post-copy switch, no suspend) means it converged; a stall of pre-copy (the switch auto makes only on one) means it did not.", memMiB, fillMiB, dirty, bw, runs)}
	name := "conv"
	h1, h2 := m.host("h1"), m.host("h2")
	if _, err := m.bootGuest(ctx, h1, lab.GuestSpec{Name: name, MemoryMiB: memMiB, FillMiB: fillMiB, DirtyMiBps: dirty}, 2*time.Minute); err != nil {
		return s, err
	}
	if err := m.waitVMsOn(ctx, "h1", name); err != nil {
		return s, err
	}
	times := map[string]*benchkit.Series{}
	downs := map[string]*benchkit.Series{}
	fails := map[string][]string{}
	predErr := benchkit.Series{Name: "auto: prediction error of the transfer time ((predicted − measured) ÷ measured)", Unit: "%"}
	var callsRight, calls int
	var predNotes []string
	for _, p := range policies {
		times[p] = &benchkit.Series{Name: p + ": total time", Unit: "s"}
		downs[p] = &benchkit.Series{Name: p + ": downtime", Unit: "ms"}
	}
	at, other := h1, h2
	for r := 0; r < runs; r++ {
		for _, p := range policies {
			res := m.ctl(ctx, "migrate", name, "--to", other.Name, "--bandwidth", strconv.Itoa(bw), "--policy", p, "--wait")
			if cm, err := cli.ParseMoved(res.stdout); res.code == 0 && err == nil {
				dt := float64(cm.Downtime.Milliseconds())
				times[p].Values = append(times[p].Values, res.took.Seconds())
				downs[p].Values = append(downs[p].Values, dt)
				log.Printf("convergence run %d: %s moved %s → %s in %.1f s, downtime %.0f ms", r+1, p, at.Name, other.Name, res.took.Seconds(), dt)
				if p == "auto" {
					if mg, err := m.migration(ctx, cm.ID); err != nil {
						log.Printf("convergence run %d: auto: %v", r+1, err)
					} else if pr := mg.Progress.Prediction; pr != nil {
						measured := float64(mg.Progress.ElapsedMs)
						predErr.Values = append(predErr.Values, 100*(float64(pr.TotalMs)-measured)/measured)
						converged := !mg.Progress.PostCopy && mg.Progress.SuspendedAtMs == 0
						calls++
						if pr.Converges == converged {
							callsRight++
						}
						predNotes = append(predNotes, fmt.Sprintf("run %d: sampled %.1f MiB/s dirty, %.0f MiB to send (from: %s), dirty set %.0f MiB, at %.0f MiB/s, setup %.1f s: %s, predicted %.1f s (converges %v); measured %.1f s (first bytes at %.1f s, first pass %.0f MiB, dirty set %.0f MiB), converged by pre-copy %v",
							r+1, float64(pr.DirtyRateBps)/(1<<20), float64(pr.DataBytes)/(1<<20), pr.DataFrom, float64(pr.DirtySetBytes)/(1<<20), float64(pr.BandwidthBps)/(1<<20), float64(pr.SetupMs)/1000, pr.Choice,
							float64(pr.TotalMs)/1000, pr.Converges, measured/1000, float64(mg.Progress.FirstByteMs)/1000, float64(mg.Progress.FirstPassBytes)/(1<<20), float64(mg.Progress.DirtySetBytes)/(1<<20), converged))
					}
				}
				if err := m.waitVMsOn(ctx, other.Name, name); err != nil {
					return s, err
				}
				at, other = other, at
				continue
			}
			why := strings.TrimSpace(res.stderr + " " + res.stdout)
			if mt := failLine.FindStringSubmatch(res.stdout + res.stderr); mt != nil {
				why = mt[4]
			} else if len(why) > 200 {
				why = why[len(why)-200:]
			}
			fails[p] = append(fails[p], fmt.Sprintf("run %d after %.1f s: %s", r+1, res.took.Seconds(), why))
			times[p].Values = append(times[p].Values, res.took.Seconds())
			downs[p].Values = append(downs[p].Values, math.NaN())
			log.Printf("convergence run %d: %s FAILED after %.1f s: %s", r+1, p, res.took.Seconds(), why)
			if err := m.waitVMsOn(ctx, at.Name, name); err != nil {
				return s, err
			}
		}
	}
	for _, p := range policies {
		ok := len(times[p].Values) - len(fails[p])
		times[p].Note = fmt.Sprintf("%d of %d runs moved the guest", ok, len(times[p].Values))
		if len(fails[p]) > 0 {
			times[p].Note += "; failed: " + strings.Join(fails[p], "; ")
		}
		downs[p].Note = "meshctl's reported downtime; failed runs have none (plotted as gaps, left out of the median)"
		downs[p].Values = dropNaN(downs[p].Values)
		s.Series = append(s.Series, *times[p], *downs[p])
	}
	if calls > 0 {
		predErr.Note = "the prediction of each auto run that moved the guest: " + strings.Join(predNotes, "; ")
		s.Series = append(s.Series, predErr)
		s.Notes = append(s.Notes, fmt.Sprintf("auto's converges-or-not call was right in %d of %d runs.", callsRight, calls))
	}
	m.removeGuest(ctx, name)
	return s, nil
}

func dropNaN(xs []float64) []float64 {
	var out []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out
}

// Command labbench measures single migrations, drains, convergence policies
// and the cost of TLS migration streams on the lab's real libvirt + QEMU hosts (testcluster/lab), with
// meshd on every host driven by meshctl, against virsh doing the same by
// hand. It needs root and owns the machine's one lab: run it under
// `flock /tmp/hostmesh-lab.lock`. Each part writes its JSON as soon as it
// is done, so a later part's failure keeps the earlier figures.
//
//	flock /tmp/hostmesh-lab.lock go run ./bench/cmd/labbench -meshd bin/meshd -meshctl bin/meshctl
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
)

func main() {
	var (
		meshd     = flag.String("meshd", "bin/meshd", "meshd binary")
		meshctl   = flag.String("meshctl", "bin/meshctl", "meshctl binary")
		outDir    = flag.String("out", "bench/results", "directory for the JSON results")
		runs      = flag.Int("runs", 5, "runs of each side (medians)")
		parts     = flag.String("parts", "single,drain,convergence,tls,parallel", "which parts to run")
		bw        = flag.Int("bw", 32, "single: bandwidth cap, MiB/s")
		dirty     = flag.Int("dirty", 8, "single: dirty rate of the dirtying guest, MiB/s")
		drainNet  = flag.Int("drain-net", 32, "drain: the migration network's capacity (auto bandwidth), MiB/s")
		guests    = flag.Int("guests", 6, "drain: guests on the drained host")
		drainMem  = flag.Int("drain-mem", 256, "drain: memory of each guest, MiB")
		drainFill = flag.Int("drain-fill", 64, "drain: data each guest fills at boot, MiB")
		convBW    = flag.Int("conv-bw", 8, "convergence: bandwidth cap, MiB/s")
		convDR    = flag.Int("conv-dirty", 24, "convergence: dirty rate asked of the guest, MiB/s")
		convMem   = flag.Int("conv-mem", 256, "convergence: memory of the guest, MiB")
		convFill  = flag.Int("conv-fill", 64, "convergence: data the guest fills at boot, MiB")
		drainSide = flag.String("drain-sides", "overlap,plain,serial", "drain: the sides run in turn (overlap: setups overlapping; plain: no overlap; serial: the virsh loop)")
		drainOvl  = flag.Duration("drain-overlap", 2*time.Second, "drain: the overlapping side's --setup-overlap")
		drainPOvl = flag.Duration("drain-plain-overlap", 0, "drain: the plain side's --setup-overlap (0: no overlap; another window compares two windows run by run)")
		convPols  = flag.String("conv-policies", strings.Join(policies, ","), "convergence: the policies compared, in turn")
	)
	keepLogs := flag.Bool("keep-logs", false, "keep the meshd logs (their directory is printed) for a timeline of the run")
	trial := flag.Bool("trial", false, "allow fewer than 5 runs, to try a part out (not for RESULTS.md)")
	flag.Parse()
	if *runs < 5 && !*trial {
		log.Fatalf("-runs %d: medians need at least 5", *runs)
	}
	for _, b := range []string{*meshd, *meshctl} {
		if _, err := os.Stat(b); err != nil {
			log.Fatalf("%v (run make build first)", err)
		}
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := startMesh(ctx, abs(*meshd), abs(*meshctl), 3)
	if err != nil {
		log.Fatalf("lab: %v", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; m.close(); os.Exit(130) }()
	log.Printf("lab of 3 hosts with meshd up in %s (host CPU model %q)", time.Since(start).Round(time.Second), m.cpuModel)
	cmd := fmt.Sprintf("flock /tmp/hostmesh-lab.lock go run ./bench/cmd/labbench -meshd bin/meshd -meshctl bin/meshctl -runs %d", *runs)
	type part struct {
		name, file string
		run        func() (benchkit.Section, error)
	}
	all := []part{
		{"single", "lab-single.json", func() (benchkit.Section, error) { return singlePart(ctx, m, *runs, *bw, *dirty) }},
		{"drain", "lab-drain.json", func() (benchkit.Section, error) {
			return drainPart(ctx, m, *runs, *drainNet, *guests, *drainMem, *drainFill, *drainSide, *drainOvl, *drainPOvl)
		}},
		{"convergence", "lab-convergence.json", func() (benchkit.Section, error) {
			return convergencePart(ctx, m, *runs, *convBW, *convDR, *convMem, *convFill, strings.Split(*convPols, ","))
		}},
		{"tls", "lab-tls.json", func() (benchkit.Section, error) { return tlsPart(ctx, m, *runs, *bw) }},
		{"parallel", "lab-parallel.json", func() (benchkit.Section, error) { return parallelPart(ctx, m, *runs) }},
	}
	failed := false
	for _, p := range all {
		if !strings.Contains(*parts, p.name) {
			continue
		}
		t0 := time.Now()
		s, err := p.run()
		s.Command, s.Started, s.Took = cmd+" -parts "+p.name, t0.UTC(), time.Since(t0).Round(time.Second).String()
		s.Notes = append(s.Notes, fmt.Sprintf("Flags: -bw %d -dirty %d -drain-net %d -guests %d -drain-mem %d -drain-fill %d -drain-sides %s -drain-overlap %s -drain-plain-overlap %s -conv-bw %d -conv-dirty %d -conv-mem %d -conv-fill %d -conv-policies %s.", *bw, *dirty, *drainNet, *guests, *drainMem, *drainFill, *drainSide, *drainOvl, *drainPOvl, *convBW, *convDR, *convMem, *convFill, *convPols))
		if err != nil {
			failed = true
			log.Printf("%s: %v (meshd logs in %s)", p.name, err, m.logDir)
			s.Notes = append(s.Notes, "INCOMPLETE: this part stopped with an error: "+err.Error())
		}
		if werr := s.Write(filepath.Join(*outDir, p.file)); werr != nil {
			log.Print(werr)
		}
		log.Printf("%s done in %s", p.name, time.Since(t0).Round(time.Second))
	}
	m.close()
	if failed {
		fmt.Fprintf(os.Stderr, "labbench: some parts failed; meshd logs in %s\n", m.logDir)
		os.Exit(1)
	}
	if *keepLogs {
		fmt.Fprintf(os.Stderr, "labbench: meshd logs kept in %s\n", m.logDir)
		return
	}
	_ = os.RemoveAll(m.logDir)
}

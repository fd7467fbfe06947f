package sim_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/migrate/sim"
)

// Two hosts in one process; a migration watched under the default policy in
// simulated time (here 1000× real time).
func Example() {
	reg := sim.NewRegistry(sim.Config{TimeScale: 1000})
	defer reg.Close()
	a, _ := reg.AddHost(sim.HostSpec{Name: "a", CPUModel: "Skylake", MemTotalMiB: 8192, CPUs: 8})
	b, _ := reg.AddHost(sim.HostSpec{Name: "b", CPUModel: "Skylake", MemTotalMiB: 8192, CPUs: 8})
	_ = a.Define(sim.VMSpec{Name: "web", MemoryMiB: 1024, VCPUs: 2, DirtyMiBps: 5})

	ctx := context.Background()
	pol, _ := migrate.PolicyByName("") // minimal-downtime
	job, err := a.Migrate(ctx, "web", pol.Params(migrate.Params{DestURI: b.URI(), BandwidthMiB: 52}))
	if err != nil {
		fmt.Println(err)
		return
	}
	// the monitor must time the job in the same (simulated) time
	cfg := migrate.MonitorConfig{VM: "web", Clock: reg.Clock().Now, NewTicker: reg.Clock().NewTicker}
	res, err := migrate.Watch(ctx, job, pol, cfg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("on b: %v, on a: %v\n", slices.Contains(b.VMNames(), "web"), slices.Contains(a.VMNames(), "web"))
	fmt.Printf("elapsed %.1fs, downtime %v, %d passes\n", res.Elapsed.Seconds(), res.Downtime, res.MemIteration)
	// Output:
	// on b: true, on a: false
	// elapsed 21.8s, downtime 120ms, 3 passes
}

// Each meshd process serves its sim host; peers migrate to
// "sim+http://HOST:PORT/v1/sim".
func ExampleHandler() {
	reg := sim.NewRegistry(sim.Config{TimeScale: 1})
	defer reg.Close()
	h, _ := reg.AddHost(sim.HostSpec{Name: "host-b", MemTotalMiB: 16384, CPUs: 8})
	mux := http.NewServeMux()
	mux.Handle("/v1/sim/", sim.Handler(h))
	// http.ListenAndServe(apiAddr, mux); other hosts use
	// migrate.Params{DestURI: "sim+http://" + apiAddr + "/v1/sim"}
	_ = mux
}

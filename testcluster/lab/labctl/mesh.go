package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// meshOptions is what `labctl mesh` (make lab) brings up.
type meshOptions struct {
	cfg            lab.Config
	meshd, meshctl string // binaries, built by make
	guests         int    // guests booted on h1
}

// mesh brings up the lab with meshd on every host, boots guests on h1,
// moves one with `meshctl migrate` and then drains h1 with `meshctl drain`,
// printing what an operator would see, and leaves all of it running to be
// tried by hand (make lab-down stops it). Every step waits on a condition
// with a deadline and stops with the reason when one is not met.
func mesh(ctx context.Context, o meshOptions) error {
	if o.cfg.Hosts < 2 {
		return fmt.Errorf("mesh: %d hosts: a migration needs at least 2", o.cfg.Hosts)
	}
	// Absolute: meshd starts inside each host's mount namespace, through
	// nsenter, where a path relative to here means nothing.
	for _, bin := range []*string{&o.meshd, &o.meshctl} {
		abs, err := filepath.Abs(*bin)
		if err != nil {
			return fmt.Errorf("mesh: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("mesh: %w (run make build first)", err)
		}
		*bin = abs
	}
	start := time.Now()
	l, err := lab.Start(ctx, o.cfg)
	if err != nil {
		return err
	}
	if _, _, err := l.GuestImage(ctx); err != nil {
		return fmt.Errorf("guest image: %w", err)
	}
	step("lab of %d libvirt hosts up", len(l.Hosts))
	printHosts(l)

	first := l.Hosts[0]
	ctl := func(args ...string) lab.CtlResult { return lab.Meshctl(ctx, o.meshctl, first, args...) }
	for i, h := range l.Hosts {
		// h1 starts the mesh once (--bootstrap); the others join it.
		join := []string{"--bootstrap"}
		if i > 0 {
			join = []string{"--join", first.MgmtIP + ":7946"}
		}
		logPath := filepath.Join(l.Dir, "meshd-"+h.Name+".log")
		if _, err := h.StartDaemon(ctx, logPath, append(l.MeshdArgs(h, o.meshd), join...)...); err != nil {
			return err
		}
		if i == 0 {
			if err := waitFor(ctx, time.Minute, "h1 to lead the mesh", func() (bool, string) {
				var st api.Status
				if err := ctlJSON(ctl, &st, "status"); err != nil {
					return false, err.Error()
				}
				return st.Leader != "", "no leader yet"
			}); err != nil {
				return fmt.Errorf("%w (log: %s)", err, logPath)
			}
		}
	}
	if err := waitFor(ctx, 2*time.Minute, fmt.Sprintf("%d hosts Up", len(l.Hosts)), func() (bool, string) {
		var hosts []api.HostView
		if err := ctlJSON(ctl, &hosts, "hosts"); err != nil {
			return false, err.Error()
		}
		up := 0
		for _, h := range hosts {
			if h.State == api.HostUp {
				up++
			}
		}
		return up == len(l.Hosts), fmt.Sprintf("%d of %d Up", up, len(l.Hosts))
	}); err != nil {
		return fmt.Errorf("%w (meshd logs: %s/meshd-*.log)", err, l.Dir)
	}
	step("meshd on every host, one mesh")
	show(ctl("hosts"))

	var names []string
	for i := 1; i <= o.guests; i++ {
		spec := lab.GuestSpec{Name: fmt.Sprintf("g%d", i), MemoryMiB: 256, IP: fmt.Sprintf("%s%d", lab.VMPrefix, 49+i),
			Disk: lab.DiskShared}
		if _, err := l.DefineGuest(ctx, first, spec); err != nil {
			return err
		}
		names = append(names, spec.Name)
	}
	if err := waitFor(ctx, time.Minute, fmt.Sprintf("the mesh to see %d guests on h1", len(names)), func() (bool, string) {
		on := onHost(ctl, names)
		return on[first.Name] == len(names), fmt.Sprintf("guests per host %v", on)
	}); err != nil {
		return err
	}
	step("%d guests running on %s", len(names), first.Name)

	r := ctl("migrate", names[0], "--to", l.Hosts[1].Name, "--wait")
	if r.Code != 0 {
		return fmt.Errorf("migrate %s: %s", names[0], r)
	}
	step("meshctl migrate %s --to %s --wait", names[0], l.Hosts[1].Name)
	show(r)
	if r = ctl("drain", first.Name, "--wait"); r.Code != 0 {
		return fmt.Errorf("drain %s: %s", first.Name, r)
	}
	step("meshctl drain %s --wait", first.Name)
	show(r)
	if on := onHost(ctl, names); on[first.Name] != 0 {
		return fmt.Errorf("after the drain %s still runs guests: %v", first.Name, on)
	}
	show(ctl("vms"))

	step("lab mesh ready in %s; it keeps running", time.Since(start).Round(time.Second))
	fmt.Printf(`Try it:
  export MESH_ADDR=%s:%d MESH_CACERT=%s MESH_TOKEN_FILE=%s
  %s hosts; %s migrate g2 --to h3 --wait; %s activate %s
  dashboard: https://%s:%d/ui/ (the mesh CA above; the token in MESH_TOKEN_FILE)
  guest consoles: %s/*.log   meshd logs: %s/meshd-*.log
  stop everything: make lab-down
`, first.MgmtIP, lab.MeshdAPIPort, first.CACert, first.TokenFile,
		o.meshctl, o.meshctl, o.meshctl, first.Name, first.MgmtIP, lab.MeshdAPIPort,
		filepath.Join(l.SharedDir, "console"), l.Dir)
	return nil
}

func step(format string, args ...any) { fmt.Printf("== "+format+"\n", args...) }

func show(r lab.CtlResult) {
	fmt.Printf("$ meshctl %s\n%s", strings.Join(r.Args, " "), r.Stdout)
	if r.Stderr != "" {
		fmt.Print(r.Stderr)
	}
}

func ctlJSON(ctl func(...string) lab.CtlResult, out any, args ...string) error {
	r := ctl(append(args, "--json")...)
	if r.Code != 0 {
		return fmt.Errorf("meshctl %s: exit %d: %s", strings.Join(args, " "), r.Code, strings.TrimSpace(r.Stderr))
	}
	if err := json.Unmarshal([]byte(r.Stdout), out); err != nil {
		return fmt.Errorf("meshctl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// onHost counts the named guests the mesh places on each host.
func onHost(ctl func(...string) lab.CtlResult, names []string) map[string]int {
	var vms []api.VM
	on := map[string]int{}
	if err := ctlJSON(ctl, &vms, "vms"); err != nil {
		return on
	}
	for _, vm := range vms {
		for _, n := range names {
			if vm.Name == n {
				on[vm.Host]++
			}
		}
	}
	return on
}

// waitFor polls cond every 250 ms until it holds or timeout passes; the
// error carries cond's last word on why not.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s: %s", timeout, what, why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

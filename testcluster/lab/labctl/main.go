// Command labctl brings the real-hypervisor lab up and down from the shell
// (`make lab`, `make lab-down`) so that meshd and meshctl can be tried by hand
// against several libvirt hosts on one machine: `labctl mesh` (make lab)
// also runs meshd on every host, boots guests, migrates one and drains a
// host; `labctl up` brings up the bare hosts.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hostmesh/hostmesh/testcluster/lab"
)

func main() {
	fs := flag.NewFlagSet("labctl", flag.ExitOnError)
	dir := fs.String("dir", "/tmp/hostmesh-lab", "lab state directory")
	hosts := fs.Int("hosts", 3, "number of hosts (up)")
	name := fs.String("name", "g1", "guest name (guest)")
	on := fs.String("on", "h1", "host to start the guest on (guest)")
	ip := fs.String("ip", lab.VMPrefix+"50", "guest IP on the VM network (guest)")
	mem := fs.Int("mem", 256, "guest memory in MiB (guest)")
	fill := fs.Int("fill", 0, "MiB the guest fills at boot (guest)")
	dirty := fs.Int("dirty", 0, "MiB/s the guest dirties (guest)")
	disk := fs.String("disk", "", `guest disk: "", "shared" or "local" (guest)`)
	meshd := fs.String("meshd", "bin/meshd", "meshd binary (mesh)")
	meshctl := fs.String("meshctl", "bin/meshctl", "meshctl binary (mesh)")
	guests := fs.Int("guests", 3, "guests booted on h1 (mesh)")
	tcp := fs.Bool("tcp", false, "also open libvirtd's unauthenticated qemu+tcp link, for debugging from the root namespace (up)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: labctl up|mesh|down|status|deps|guest [flags]\n"+
			"  up: bare libvirt hosts; mesh: hosts + meshd + guests, a migration and a drain (make lab)\n")
		fs.PrintDefaults()
	}
	if len(os.Args) < 2 {
		fs.Usage()
		os.Exit(2)
	}
	cmd := os.Args[1]
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch cmd {
	case "up":
		err = up(ctx, lab.Config{Hosts: *hosts, Dir: *dir, ListenTCP: *tcp, Logf: logf})
	case "mesh":
		err = mesh(ctx, meshOptions{cfg: lab.Config{Hosts: *hosts, Dir: *dir, ListenTCP: *tcp, Logf: logf},
			meshd: *meshd, meshctl: *meshctl, guests: *guests})
	case "down":
		err = down(*dir)
	case "status":
		err = status(ctx, *dir)
	case "deps":
		err = deps(ctx)
	case "guest":
		err = guest(ctx, *dir, *on, lab.GuestSpec{Name: *name, MemoryMiB: *mem, IP: *ip,
			FillMiB: *fill, DirtyMiBps: *dirty, Disk: *disk})
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labctl:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func up(ctx context.Context, cfg lab.Config) error {
	start := time.Now()
	l, err := lab.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("lab up in %s (state in %s)\n", time.Since(start).Round(time.Millisecond), l.Dir)
	printHosts(l)
	return nil
}

func down(dir string) error {
	l, err := lab.Open(dir)
	if err != nil {
		// No state file: still clear any hm-* leftovers.
		abs, aerr := filepath.Abs(dir)
		if aerr != nil {
			return aerr
		}
		l = &lab.Lab{Dir: abs}
	}
	return l.Close()
}

func status(ctx context.Context, dir string) error {
	l, err := lab.Open(dir)
	if err != nil {
		return err
	}
	printHosts(l)
	for _, h := range l.Hosts {
		out, err := h.Virsh(ctx, "list", "--all", "--name")
		if err != nil {
			fmt.Printf("%s: libvirtd: %v\n", h.Name, err)
			continue
		}
		fmt.Printf("%s: domains: %s\n", h.Name, strings.Join(strings.Fields(out), " "))
	}
	return nil
}

func printHosts(l *lab.Lab) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOST\tNETNS\tMGMT\tMIGRATION\tVM\tLIBVIRT")
	for _, h := range l.Hosts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.NetNS, h.MgmtIP, h.MigIP, h.VMIP, h.LibvirtURI)
	}
	_ = w.Flush()
	fmt.Printf("shared storage: %s\n", l.SharedDir)
	fmt.Printf("mesh CA: %s (key %s)\n", l.CACert, l.CAKey)
	for _, h := range l.Hosts {
		fmt.Printf("%s: meshd %s\n", h.Name, strings.Join(l.MeshdSecurityFlags(h), " "))
	}
	if len(l.Hosts) > 0 {
		fmt.Printf("meshctl: export MESH_ADDR=%s:%d MESH_CACERT=%s\n", l.Hosts[0].MgmtIP, lab.MeshdAPIPort, l.CACert)
	}
}

// deps installs the Debian packages the lab needs.
func deps(ctx context.Context) error {
	c := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, lab.DebianPackages...)...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c.Run()
}

// guest boots one guest on a running lab, for trying things by hand.
func guest(ctx context.Context, dir, on string, spec lab.GuestSpec) error {
	l, err := lab.Open(dir)
	if err != nil {
		return err
	}
	h := l.Host(on)
	if h == nil {
		return fmt.Errorf("no host %q in the lab", on)
	}
	start := time.Now()
	g, err := l.DefineGuest(ctx, h, spec)
	if err != nil {
		return err
	}
	fmt.Printf("guest %s running on %s after %s\nconsole: %s\nhttp://%s/\n",
		spec.Name, h.Name, time.Since(start).Round(time.Millisecond), g.ConsoleLog, spec.IP)
	return nil
}

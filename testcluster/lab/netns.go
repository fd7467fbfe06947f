package lab

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ipCmds runs a list of `ip` invocations in order, stopping at the first
// failure. Each entry is the argument list of one call.
func ipCmds(ctx context.Context, cmds [][]string) error {
	for _, c := range cmds {
		if _, err := run(ctx, "ip", c...); err != nil {
			return err
		}
	}
	return nil
}

// setupSwitch creates the switch namespace with one bridge per network and
// the root namespace's veths into the management and VM bridges.
func setupSwitch(ctx context.Context) error {
	cmds := [][]string{{"netns", "add", switchNS}, {"-n", switchNS, "link", "set", "lo", "up"}}
	for _, br := range []string{swBrMgmt, swBrMig, swBrVM} {
		cmds = append(cmds,
			[]string{"-n", switchNS, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
			[]string{"-n", switchNS, "link", "set", br, "up"})
	}
	for _, l := range []struct{ root, peer, br, ip string }{
		{rootMgmt, "root-mgmt", swBrMgmt, RootMgmtIP},
		{rootVM, "root-vm", swBrVM, RootVMIP},
	} {
		cmds = append(cmds,
			[]string{"link", "add", l.root, "type", "veth", "peer", "name", l.peer, "netns", switchNS},
			[]string{"-n", switchNS, "link", "set", l.peer, "master", l.br, "up"},
			[]string{"addr", "add", l.ip + "/24", "dev", l.root},
			[]string{"link", "set", l.root, "up"})
	}
	if err := ipCmds(ctx, cmds); err != nil {
		return fmt.Errorf("set up switch namespace %s: %w", switchNS, err)
	}
	return disableIPv6(ctx, switchNS)
}

// setupHostNet creates host h's network namespace and its three veths into
// the switch: mgmt0 and mig0 carry the host's own addresses; vm0 is a port of
// the host's VM bridge, which carries the host's VM-network address and which
// guest NICs join.
func setupHostNet(ctx context.Context, h *Host) error {
	ns := h.NetNS
	cmds := [][]string{{"netns", "add", ns}, {"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", VMBridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
	}
	for _, l := range []struct{ inner, outer, br string }{
		{MgmtIface, h.Name + "-mgmt", swBrMgmt},
		{MigIface, h.Name + "-mig", swBrMig},
		{VMUplink, h.Name + "-vm", swBrVM},
	} {
		cmds = append(cmds,
			[]string{"-n", switchNS, "link", "add", l.outer, "type", "veth", "peer", "name", l.inner, "netns", ns},
			[]string{"-n", switchNS, "link", "set", l.outer, "master", l.br, "up"})
	}
	cmds = append(cmds,
		[]string{"-n", ns, "addr", "add", h.MgmtIP + "/24", "dev", MgmtIface},
		[]string{"-n", ns, "addr", "add", h.MigIP + "/24", "dev", MigIface},
		[]string{"-n", ns, "link", "set", VMUplink, "master", VMBridge},
		[]string{"-n", ns, "addr", "add", h.VMIP + "/24", "dev", VMBridge},
		[]string{"-n", ns, "link", "set", MgmtIface, "up"},
		[]string{"-n", ns, "link", "set", MigIface, "up"},
		[]string{"-n", ns, "link", "set", VMUplink, "up"},
		[]string{"-n", ns, "link", "set", VMBridge, "up"},
	)
	if err := ipCmds(ctx, cmds); err != nil {
		return fmt.Errorf("set up network of host %s: %w", h.Name, err)
	}
	return disableIPv6(ctx, ns)
}

// disableIPv6 keeps router solicitations and DAD off the lab's links so the
// per-interface byte counters count only the traffic under test.
func disableIPv6(ctx context.Context, ns string) error {
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
		if _, err := run(ctx, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", k); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	return nil
}

// labNamespaces lists existing network namespaces named hm-*.
func labNamespaces(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], nsPrefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// teardown kills every process in the lab's namespaces (libvirtd, QEMU,
// meshd, holders), deletes the namespaces and the root-namespace veths. It is
// safe to call when nothing is there, so Start calls it to clear a crashed run.
func teardown(ctx context.Context) error {
	names, err := labNamespaces(ctx)
	if err != nil {
		return fmt.Errorf("list lab namespaces: %w", err)
	}
	var pids []int
	for _, ns := range names {
		out, err := run(ctx, "ip", "netns", "pids", ns)
		if err != nil {
			return fmt.Errorf("list processes of namespace %s: %w", ns, err)
		}
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := poll(wctx, 50*time.Millisecond, "lab processes to exit", func() (bool, error) {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	for _, ns := range names {
		if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
			if _, serr := os.Stat("/run/netns/" + ns); os.IsNotExist(serr) {
				continue // someone else removed it meanwhile
			}
			return fmt.Errorf("delete namespace %s: %w", ns, err)
		}
	}
	for _, l := range []string{rootMgmt, rootVM} {
		if _, err := os.Stat("/sys/class/net/" + l); err == nil {
			if _, err := run(ctx, "ip", "link", "del", l); err != nil {
				// The link is one end of a veth pair whose peer lived in a
				// namespace deleted just above; the kernel tears namespaces
				// down asynchronously and takes the pair with it, so the
				// link can vanish between the Stat and the del.
				if _, serr := os.Stat("/sys/class/net/" + l); os.IsNotExist(serr) {
					continue
				}
				return fmt.Errorf("delete link %s: %w", l, err)
			}
		}
	}
	return nil
}

// isZombie reports whether pid has exited but not been reaped (a holder whose
// parent is this process and has not waited yet).
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

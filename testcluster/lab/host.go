package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Host is one hypervisor host of the lab: a network namespace plus mount and
// UTS namespaces held open by a holder process, running its own libvirtd.
type Host struct {
	Name    string // "h1"
	Cluster string
	NetNS   string // "hm-h1"
	MgmtIP  string // on MgmtIface
	MigIP   string // on MigIface
	VMIP    string // on VMBridge
	// LibvirtURI is how this host and the others reach this host's
	// libvirtd: qemu+tls://MgmtIP/system. It needs the client certificate
	// each host has in its /etc/pki, so virsh with it runs inside a host
	// (Host.Virsh), not in the root namespace.
	LibvirtURI string
	// ClientURI reaches the same libvirtd from anywhere, the root namespace
	// included: LibvirtURI with libvirt's pkipath parameter naming the lab's
	// operator certificate (Lab.Dir/pki/client).
	ClientURI string
	// CACert, Cert and Key are the mesh CA and this host's certificate and
	// key (root-namespace paths, visible inside the host too): meshd's
	// --ca-file, --cert-file and --key-file. The same certificate is
	// installed in the host's /etc/pki for libvirtd and QEMU.
	CACert, Cert, Key string
	// TokenFile is the mesh's management token, for meshctl --token-file.
	TokenFile string
	// LocalDir is the host-local storage path as seen inside the host; every
	// host has it at the same path, each backed by its own directory.
	LocalDir string
	// LocalBacking is the directory behind LocalDir, as seen from the root
	// namespace.
	LocalBacking string
	// StateDir holds the host's libvirt dirs and logs (root-namespace path).
	StateDir string
	// CacheDir backs the host's /var/cache/libvirt. It outlives the lab so
	// the next lab's libvirtd finds QEMU's capabilities already probed.
	CacheDir string
	// HolderPID is the process whose namespaces are the host's.
	HolderPID int
	// ListenTCP is Config.ListenTCP: libvirtd also listens on qemu+tcp.
	ListenTCP bool `json:",omitempty"`
	// TCGWithout are the features this host's TCG CPU lacks
	// (Config.TCGWithout).
	TCGWithout []string `json:",omitempty"`
}

// libvirtDirs are the system paths each host gets its own copy of, so that
// several libvirtds on one machine do not share sockets, state or config.
var libvirtDirs = []struct{ mount, sub string }{
	{"/run/libvirt", "run"},
	{"/var/lib/libvirt", "lib"},
	{"/etc/libvirt", "etc"},
	{"/var/log/libvirt", "log"},
	{"/var/cache/libvirt", "cache"},
	{etcPKI, "pki"}, // libvirt's and QEMU's certificates (pki.go)
}

// holderScript runs inside fresh mount and UTS namespaces (with private
// propagation, so nothing leaks to the root namespace): it sets the hostname,
// bind-mounts the host's own libvirt dirs and local storage over the shared
// paths, reports ready and then only keeps the namespaces alive.
const holderScript = `set -e
hostname "$HM_NAME"
for pair in $HM_BINDS; do
  mount --bind "${pair%%=*}" "${pair#*=}"
done
echo ready
exec sleep infinity </dev/null >/dev/null 2>&1
`

// startHolder creates the host's mount+UTS namespaces inside its network
// namespace and waits until the bind mounts are in place.
func (h *Host) startHolder(ctx context.Context) error {
	var binds []string
	for _, d := range libvirtDirs {
		src := filepath.Join(h.StateDir, d.sub)
		if d.sub == "cache" {
			src = h.CacheDir
		}
		if err := os.MkdirAll(src, 0o755); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		if err := os.MkdirAll(d.mount, 0o755); err != nil {
			return fmt.Errorf("host %s: mount point: %w", h.Name, err)
		}
		binds = append(binds, src+"="+d.mount)
	}
	if err := os.MkdirAll(h.LocalBacking, 0o755); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	binds = append(binds, h.LocalBacking+"="+h.LocalDir)
	for _, b := range binds {
		if strings.ContainsAny(b, " \t\n") {
			return fmt.Errorf("host %s: path %q contains white space", h.Name, b)
		}
	}
	cmd := exec.Command("ip", "netns", "exec", h.NetNS,
		"unshare", "--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c", holderScript)
	cmd.Env = append(os.Environ(), "HM_NAME="+h.Name, "HM_BINDS="+strings.Join(binds, " "))
	// Own session: the holder outlives the process that started it (labctl up).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("host %s: holder: %w", h.Name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("host %s: start holder: %w", h.Name, err)
	}
	go func() { _ = cmd.Wait() }() // reap it if it ever exits while we run
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("host %s: holder did not get ready (read %q): %v", h.Name, line, err)
	}
	h.HolderPID = cmd.Process.Pid
	return nil
}

// nsenterArgs prefixes a command so it runs in the host's net, mount and UTS
// namespaces.
func (h *Host) nsenterArgs(name string, args ...string) []string {
	return append([]string{"-t", strconv.Itoa(h.HolderPID), "-n", "-m", "-u", "--", name}, args...)
}

// Command returns a command that runs inside the host's network, mount and
// UTS namespaces: it sees the host's interfaces, libvirt dirs and hostname.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", h.nsenterArgs(name, args...)...)
}

// Run runs a command in the host and returns its trimmed stdout.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := runCmd(h.Command(ctx, name, args...))
	if err != nil {
		return out, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return out, nil
}

// Virsh runs virsh against this host's libvirtd from inside the host.
func (h *Host) Virsh(ctx context.Context, args ...string) (string, error) {
	return h.Run(ctx, "virsh", append([]string{"-c", h.LibvirtURI}, args...)...)
}

// StartDaemon starts a long-lived process (meshd, say) in the host's
// namespaces with stdout and stderr appended to logPath. It is not tied to
// ctx's lifetime after start and runs in its own session; the caller stops it
// through the returned process, and Close kills it with everything else in
// the host's namespace.
func (h *Host) StartDaemon(ctx context.Context, logPath string, argv ...string) (*os.Process, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("host %s: start daemon: empty argv", h.Name)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("host %s: start daemon %s: %w", h.Name, argv[0], err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("host %s: start daemon %s: %w", h.Name, argv[0], err)
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", h.nsenterArgs(argv[0], argv[1:]...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("host %s: start daemon %s: %w", h.Name, argv[0], err)
	}
	return cmd.Process, nil
}

// IfaceBytes returns the receive and transmit byte counters of an interface
// in the host's network namespace (use MgmtIface, MigIface, VMBridge...).
func (h *Host) IfaceBytes(iface string) (rx, tx uint64, err error) {
	out, err := run(context.Background(), "ip", "-n", h.NetNS, "-j", "-s", "link", "show", "dev", iface)
	if err != nil {
		return 0, 0, fmt.Errorf("host %s: counters of %s: %w", h.Name, iface, err)
	}
	var links []struct {
		Stats64 struct {
			RX struct {
				Bytes uint64 `json:"bytes"`
			} `json:"rx"`
			TX struct {
				Bytes uint64 `json:"bytes"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return 0, 0, fmt.Errorf("host %s: counters of %s: parse %q: %v", h.Name, iface, out, err)
	}
	return links[0].Stats64.RX.Bytes, links[0].Stats64.TX.Bytes, nil
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/migrate/sim"
	"github.com/hostmesh/hostmesh/migrate/virt"
	"github.com/hostmesh/hostmesh/migrate/virt/pkipath"
	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/pki"
	"github.com/hostmesh/hostmesh/shutdown"
	"github.com/hostmesh/hostmesh/version"
)

// App builds the meshd daemon's command line.
func App(out, errOut io.Writer) *ucli.App {
	return &ucli.App{
		Name:                 "meshd",
		EnableBashCompletion: true,
		Usage:                "the hostmesh agent of one hypervisor host",
		Version:              version.Get().String(),
		Writer:               out,
		ErrWriter:            errOut,
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "config-file", EnvVars: []string{"MESH_CONFIG_FILE"}, Usage: "HCL (or .json) configuration `FILE` (repeat; later files win); flags and MESH_* variables override it"},
			&ucli.StringFlag{Name: "config-dir", EnvVars: []string{"MESH_CONFIG_DIR"}, Usage: "read every *.hcl and *.json of `DIR` in lexical order, after --config-file"},
			&ucli.BoolFlag{Name: "check-config", Usage: "check the configuration (files, flags, environment, the files they name) and exit: 0 valid, 2 not"},
			&ucli.StringFlag{Name: "name", EnvVars: []string{"MESH_NAME"}, Usage: "host name (default: hostname)"},
			&ucli.StringFlag{Name: "cluster", Value: "default", EnvVars: []string{"MESH_CLUSTER"}, Usage: "cluster: VMs only move between hosts of one cluster"},
			&ucli.StringFlag{Name: "data-dir", Value: "/var/lib/hostmesh", EnvVars: []string{"MESH_DATA_DIR"}, Usage: "raft log and snapshots"},
			&ucli.StringFlag{Name: "bind", Value: "127.0.0.1", EnvVars: []string{"MESH_BIND"}, Usage: "management-network IP (gossip, raft, API)"},
			&ucli.StringFlag{Name: "migration-addr", EnvVars: []string{"MESH_MIGRATION_ADDR"}, Usage: "migration-network IP for memory and disk streams (default: --bind)"},
			&ucli.IntFlag{Name: "gossip-port", Value: 7946},
			&ucli.IntFlag{Name: "raft-port", Value: 7300, Usage: "the host port: Raft and the host-only routes, mutual TLS with host certificates only"},
			&ucli.IntFlag{Name: "api-port", Value: 7400},
			&ucli.StringSliceFlag{Name: "join", EnvVars: []string{"MESH_JOIN"}, Usage: "gossip address (ip:port) of any member (repeat)"},
			&ucli.BoolFlag{Name: "bootstrap", Usage: "start a new mesh on this host: give it once, on one host (ignored once the data dir holds state)"},
			&ucli.IntFlag{Name: "bootstrap-expect", Usage: "this host is one of `N` started together with the same flag: the mesh forms once gossip shows N of them (ignored once the data dir holds state)"},
			&ucli.StringFlag{Name: "gossip-key-file", EnvVars: []string{"MESH_GOSSIP_KEY_FILE"}, Usage: "file (mode 0600) holding the base64 key encrypting gossip (meshctl keygen); once DATA-DIR/gossip.keyring exists, that keyring is used instead"},
			&ucli.StringFlag{Name: "gossip-key", EnvVars: []string{"MESH_GOSSIP_KEY"}, Usage: "the gossip key itself: other users can read it in /proc, prefer --gossip-key-file"},
			&ucli.StringFlag{Name: "ca-file", EnvVars: []string{"MESH_CA_FILE"}, Usage: "the mesh's CA certificate (meshctl tls ca create)"},
			&ucli.StringFlag{Name: "cert-file", EnvVars: []string{"MESH_CERT_FILE"}, Usage: "this host's certificate (meshctl tls cert create --host NAME)"},
			&ucli.StringFlag{Name: "key-file", EnvVars: []string{"MESH_KEY_FILE"}, Usage: "this host's certificate key"},
			&ucli.StringFlag{Name: "initial-management-token-file", EnvVars: []string{"MESH_INITIAL_MANAGEMENT_TOKEN_FILE"}, Usage: "file (mode 0600) holding the secret of a management token the mesh starts with, instead of meshctl acl bootstrap (as Consul's initial_management); give every host the same"},
			&ucli.BoolFlag{Name: "dev", Usage: "INSECURE, tests only: run without TLS (plain HTTP API, plain Raft accepting any peer) and allow unencrypted gossip"},
			&ucli.IntFlag{Name: "max-voters", Value: 5, Usage: "raft voters; further hosts replicate as non-voters"},
			&ucli.StringFlag{Name: "hypervisor", Value: "libvirt", Usage: "libvirt or sim"},
			&ucli.StringFlag{Name: "libvirt-uri", Value: "qemu:///system", Usage: "local libvirt connection"},
			&ucli.StringFlag{Name: "virt-type", Value: "kvm", Usage: "the virtualization type this host's guests run with: kvm, or qemu (TCG emulation, as the lab runs); the host's CPU definition and the CPU comparisons depend on it"},
			&ucli.StringFlag{Name: "libvirt-peer-uri", Usage: "how peers' libvirtd reach this host (default qemu+tls://BIND/system when libvirt has its certificates, else qemu+tcp://BIND/system)"},
			&ucli.StringSliceFlag{Name: "network", Usage: "virtual network this host offers, NAME or NAME.VLAN (repeat)"},
			&ucli.StringSliceFlag{Name: "storage-domain", Usage: "storage domain NAME=DIR this host sees (repeat)"},
			&ucli.StringFlag{Name: "host-facts", Value: node.FactsMerge, EnvVars: []string{"MESH_HOST_FACTS"},
				Usage: "networks and storage domains gossiped: merge (configured + discovered on the host: bridges, VLAN links, libvirt networks, shared storage pools), discovered (only those), configured (no discovery); the sim hypervisor keeps the configured ones"},
			&ucli.DurationFlag{Name: "facts-interval", Value: 10 * time.Second, Usage: "how often the host's networks and storage pools are discovered (and on SIGHUP)"},
			&ucli.BoolFlag{Name: "unsafe-migration", Usage: "let libvirt migrate disks it cannot prove shared (the mesh checks storage and cache itself)"},
			&ucli.BoolFlag{Name: "drain-on-sigterm", Usage: "drain this host and leave the mesh on SIGTERM or SIGINT; by default a SIGTERM is a restart: meshd stops, the VMs keep running where they are and the host stays in the mesh (drain with meshctl drain or meshctl leave)"},
			&ucli.StringFlag{Name: "shutdown-policy", Value: string(shutdown.DefaultPolicy), EnvVars: []string{"MESH_SHUTDOWN_POLICY"},
				Usage: "what a system shutdown or reboot (logind's PrepareForShutdown, systemd's job queue) does: migrate (drain the host, then leave), freeze (VMs stay, the host is marked so nothing is placed on it, and comes back Up when meshd starts again) or conditional (a reboot freezes, a power-off migrates); a reload applies a change"},
			&ucli.DurationFlag{Name: "drain-timeout", Value: 10 * time.Minute},
			&ucli.DurationFlag{Name: "sample-interval", Value: 500 * time.Millisecond, Usage: "migration job-stats sample period"},
			&ucli.DurationFlag{Name: "completion-per-gib", Value: 64 * time.Second, Usage: "abort a migration running longer than this per GiB of guest memory (oVirt: 64s)"},
			&ucli.DurationFlag{Name: "progress-timeout", Value: 240 * time.Second, Usage: "abort a migration whose remaining data has not fallen for this long (oVirt: 240s)"},
			&ucli.IntFlag{Name: "sim-vms", Value: 0, Usage: "sim: VMs to define on this host"},
			&ucli.Uint64Flag{Name: "sim-vm-mem", Value: 1024, Usage: "sim: memory of each VM, MiB"},
			&ucli.Float64Flag{Name: "sim-dirty", Value: 0, Usage: "sim: dirty rate of each VM, MiB/s"},
			&ucli.Uint64Flag{Name: "sim-mem", Value: 65536, Usage: "sim: host memory, MiB"},
			&ucli.Float64Flag{Name: "sim-timescale", Value: 1, Usage: "sim: simulated seconds per real second"},
			&ucli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"MESH_LOG_LEVEL"}, Usage: "debug, info, warn or error: meshd's, Raft's and memberlist's logs (a reload applies a change)"},
			gcFlag,
			&ucli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"MESH_LOG_FORMAT"}, Usage: "text (logfmt) or json, on stderr (the journal under systemd)"},
		},
		Commands: []*ucli.Command{{
			Name:      "validate-config",
			Usage:     "check configuration files, or directories of them, and exit: 0 valid, 2 not",
			ArgsUsage: "FILE|DIR...",
			Action:    validateConfig,
		}},
		Action: runMeshd,
		// The caller turns errors into the exit code (cmd/meshd), so tests
		// can run meshd's command line in-process.
		ExitErrHandler: func(*ucli.Context, error) {},
	}
}

// validateConfig is `meshd validate-config FILE|DIR...`: meshd's own
// checks run on the files, as --check-config.
func validateConfig(c *ucli.Context) error {
	if c.NArg() == 0 {
		return ucli.Exit("error: validate-config: name a configuration file or directory", exitUsage)
	}
	args := []string{"meshd"}
	for _, p := range c.Args().Slice() {
		st, err := os.Stat(p)
		if err != nil {
			return ucli.Exit("error: validate-config: "+err.Error(), exitUsage)
		}
		if st.IsDir() {
			args = append(args, "--config-dir", p)
		} else {
			args = append(args, "--config-file", p)
		}
	}
	return App(c.App.Writer, c.App.ErrWriter).Run(append(args, "--check-config"))
}

func runMeshd(c *ucli.Context) error {
	if c.NArg() > 0 {
		return ucli.Exit(fmt.Sprintf("error: unexpected argument %q (meshd takes flags; commands: validate-config)", c.Args().First()), exitUsage)
	}
	files, explicit, err := loadConfig(c)
	if err != nil {
		return ucli.Exit("error: "+err.Error(), exitUsage)
	}
	log, level, err := newLogger(c.App.ErrWriter, c.String("log-format"), c.String("log-level"))
	if err != nil {
		return ucli.Exit("error: "+err.Error(), exitUsage)
	}
	if !c.Bool("check-config") {
		slog.SetDefault(log)
	}
	name := c.String("name")
	if name == "" {
		name, _ = os.Hostname()
	}
	cfg := node.Config{
		Name: name, Cluster: c.String("cluster"), DataDir: c.String("data-dir"),
		BindAddr: c.String("bind"), MigrationAddr: c.String("migration-addr"),
		GossipPort: c.Int("gossip-port"), RaftPort: c.Int("raft-port"), APIPort: c.Int("api-port"),
		Join: c.StringSlice("join"), DevMode: c.Bool("dev"), MaxVoters: c.Int("max-voters"),
		Bootstrap: c.Bool("bootstrap"), BootstrapExpect: c.Int("bootstrap-expect"),
		UnsafeMigration: c.Bool("unsafe-migration"), DrainTimeout: c.Duration("drain-timeout"),
		Monitor: migrate.MonitorConfig{Interval: c.Duration("sample-interval"),
			CompletionPerGiB: c.Duration("completion-per-gib"), ProgressTimeout: c.Duration("progress-timeout")},
		Logger: log,
	}
	if cfg.Bootstrap && cfg.BootstrapExpect != 0 {
		return ucli.Exit("error: --bootstrap and --bootstrap-expect exclude each other: one host bootstraps, or N hosts together", exitUsage)
	}
	if cfg.GossipKey, err = gossipKey(c, log); err != nil {
		return err
	}
	if cfg.InitialManagementToken, err = initialToken(c); err != nil {
		return err
	}
	if cfg.TLS, err = loadHostTLS(c); err != nil {
		return err
	}
	if cfg.TLS == nil && !cfg.DevMode {
		return ucli.Exit("error: "+node.ErrNoTLS.Error(), exitUsage)
	}
	if cfg.TLS != nil && cfg.TLS.Name != name {
		return ucli.Exit(fmt.Sprintf("error: --cert-file is host %q's certificate, and this host is --name %q (meshctl tls cert create --host %s)", cfg.TLS.Name, name, name), exitUsage)
	}
	if cfg.Networks, err = parseNetworks(c.StringSlice("network")); err != nil {
		return ucli.Exit("error: "+err.Error(), exitUsage)
	}
	if cfg.StorageDomains, err = parseDomains(c.StringSlice("storage-domain")); err != nil {
		return ucli.Exit("error: "+err.Error(), exitUsage)
	}
	switch cfg.HostFacts = c.String("host-facts"); cfg.HostFacts {
	case node.FactsMerge, node.FactsDiscovered, node.FactsConfigured:
	default:
		return ucli.Exit(fmt.Sprintf("error: --host-facts %q: want %s, %s or %s", cfg.HostFacts, node.FactsMerge, node.FactsDiscovered, node.FactsConfigured), exitUsage)
	}
	if cfg.FactsInterval = c.Duration("facts-interval"); cfg.FactsInterval < time.Second {
		return ucli.Exit(fmt.Sprintf("error: --facts-interval %s: at least 1s", cfg.FactsInterval), exitUsage)
	}
	policy := &policyVar{}
	if p, err := shutdown.ParsePolicy(c.String("shutdown-policy")); err != nil {
		return ucli.Exit("error: --"+err.Error(), exitUsage)
	} else {
		policy.Set(p)
	}
	if kind := c.String("hypervisor"); kind != "libvirt" && kind != "sim" {
		return ucli.Exit(fmt.Sprintf("error: --hypervisor %q: want libvirt or sim", kind), exitUsage)
	}
	if err := checkGCPercent(c); err != nil {
		return ucli.Exit("error: "+err.Error(), exitUsage)
	}
	if c.Bool("check-config") {
		fmt.Fprintf(c.App.Writer, "configuration valid (files: %s)\n", strings.Join(append([]string{}, files...), ", "))
		return nil
	}
	setGCPercent(c, log)
	closeHV, err := setupHypervisor(c, &cfg)
	if err != nil {
		return ucli.Exit("error: "+err.Error(), exitFailed)
	}
	defer closeHV()
	n, err := node.New(cfg)
	if errors.Is(err, node.ErrNoBootstrap) {
		return ucli.Exit("error: "+err.Error(), exitUsage)
	}
	if errors.Is(err, gossip.ErrNoKey) {
		return ucli.Exit("error: "+err.Error()+": create one with (umask 077; meshctl keygen > FILE) and pass --gossip-key-file FILE, "+
			"or run --dev (unencrypted, for tests)", exitUsage)
	}
	if err != nil {
		return ucli.Exit("error: "+err.Error(), exitFailed)
	}
	rl, err := newReloader(c, explicit, log, level, cfg.TLS, n)
	if err != nil {
		n.Kill()
		return ucli.Exit("error: "+err.Error(), exitUsage)
	}
	rl.policy = policy
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	guard := startShutdownGuard(ctx, log, n, policy, cfg.DrainTimeout)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log.Info("meshd running", "api", n.APIAddr(), "raft", n.RaftAddr(), "gossip", n.GossipAddr(), "hypervisor", cfg.HypervisorKind,
		"version", version.Get().String(), "config_files", files)
	notify(log, "READY=1\nSTATUS=running, API "+n.APIAddr())
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				notify(log, reloadingState())
				rl.reload()
				notify(log, "READY=1")
				continue
			}
			notify(log, "STOPPING=1")
			if !c.Bool("drain-on-sigterm") {
				switch act := guard.OnTerm(ctx); act {
				case shutdown.ActMigrate:
					// Drained and left in the shutdown: nothing more to do.
					n.Kill()
					return nil
				case shutdown.ActFreeze:
					log.Info("stopping on "+sig.String()+" in a system shutdown: host frozen, VMs stay where they are", "signal", sig.String())
				default:
					log.Info("stopping on "+sig.String()+": no drain, VMs stay where they are", "signal", sig.String())
				}
				n.Stop()
				return nil
			}
			log.Info("draining on "+sig.String()+" (--drain-on-sigterm), then leaving the mesh", "signal", sig.String(), "timeout", cfg.DrainTimeout)
			done := make(chan struct{})
			go extendWhile(log, done, 10*time.Second)
			rep, err := n.Leave(context.Background(), cfg.DrainTimeout)
			close(done)
			if err != nil {
				log.Error("leave", "err", err)
			} else if len(rep.Unmovable) > 0 {
				log.Warn("left with VMs that could not move", "unmovable", rep.Unmovable)
			}
		case <-n.Left():
			notify(log, "STOPPING=1")
		case <-guard.Left():
			// Drained and left for a system shutdown; the inhibitor is
			// released once meshd is gone at the latest.
			notify(log, "STOPPING=1")
		}
		n.Kill()
		return nil
	}
}

// gossipKey reads the gossip key from --gossip-key-file, or from
// --gossip-key / MESH_GOSSIP_KEY with a warning: a command line is readable
// by every local user in /proc/PID/cmdline, and the environment is handed
// to every child process and readable in /proc/PID/environ.
func gossipKey(c *ucli.Context, log *slog.Logger) ([]byte, error) {
	file, inline := c.String("gossip-key-file"), c.String("gossip-key")
	switch {
	case file != "" && inline != "":
		return nil, ucli.Exit("error: --gossip-key-file and --gossip-key (or MESH_GOSSIP_KEY) exclude each other", exitUsage)
	case file != "":
		key, err := gossip.ReadKeyFile(file)
		if err != nil {
			return nil, ucli.Exit("error: --gossip-key-file: "+err.Error(), exitUsage)
		}
		return key, nil
	case inline != "":
		key, err := gossip.KeyFromString(inline)
		if err != nil {
			return nil, ucli.Exit("error: --gossip-key: "+err.Error(), exitUsage)
		}
		log.Warn("gossip key given by --gossip-key or MESH_GOSSIP_KEY: other local users can read a command line "+
			"(/proc/PID/cmdline) and the environment reaches every child process (/proc/PID/environ); use --gossip-key-file",
			"key", gossip.KeyFingerprint(key))
		return key, nil
	}
	return nil, nil
}

// loadHostTLS reads --ca-file, --cert-file and --key-file: all three or
// none (then meshd runs only with --dev).
func loadHostTLS(c *ucli.Context) (*pki.HostTLS, error) {
	ca, cert, key := c.String("ca-file"), c.String("cert-file"), c.String("key-file")
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	if ca == "" || cert == "" || key == "" {
		return nil, ucli.Exit("error: --ca-file, --cert-file and --key-file go together", exitUsage)
	}
	ht, err := pki.LoadHostTLS(ca, cert, key)
	if err != nil {
		return nil, ucli.Exit("error: "+err.Error(), exitUsage)
	}
	return ht, nil
}

// setupHypervisor opens libvirt, or builds a sim host with its VMs whose
// peers reach it through this meshd's API.
func setupHypervisor(c *ucli.Context, cfg *node.Config) (func(), error) {
	switch kind := c.String("hypervisor"); kind {
	case "libvirt":
		hv, err := virt.Open(c.String("libvirt-uri"))
		if err != nil {
			return nil, fmt.Errorf("open libvirt %s: %w", c.String("libvirt-uri"), err)
		}
		if err := hv.SetVirtType(c.String("virt-type")); err != nil {
			hv.Close()
			return nil, err
		}
		cfg.Hypervisor, cfg.HypervisorKind = hv, "libvirt"
		cfg.HypervisorURI = c.String("libvirt-peer-uri")
		if cfg.HypervisorURI == "" {
			var tls bool
			if cfg.HypervisorURI, tls = virt.PeerURI(cfg.BindAddr); !tls {
				cfg.Logger.Warn("libvirtd has no server certificate: peers reach it over qemu+tcp, unencrypted",
					"missing", pkipath.LibvirtServerCert, "libvirt_peer_uri", cfg.HypervisorURI)
			}
		} else if strings.HasPrefix(cfg.HypervisorURI, "qemu+tcp://") {
			cfg.Logger.Warn("libvirt peer connection set to qemu+tcp: unencrypted", "libvirt_peer_uri", cfg.HypervisorURI)
		}
		return func() { _ = hv.Close() }, nil
	case "sim":
		simCfg := sim.Config{TimeScale: c.Float64("sim-timescale")}
		scheme := "sim+http"
		if cfg.TLS != nil {
			// Peers' sim endpoints are on their host ports: dial them with
			// this host's certificate, accepting only the destination's.
			scheme, simCfg.PeerClient = "sim+https", simPeerClients(cfg.TLS)
		}
		reg := sim.NewRegistry(simCfg)
		h, err := reg.AddHost(sim.HostSpec{Name: cfg.Name, CPUModel: "Skylake-Server", CPUFlags: []string{"sse4_2", "avx2", "aes"},
			MemTotalMiB: c.Uint64("sim-mem"), CPUs: 64})
		if err != nil {
			return nil, err
		}
		nets := []fsm.NIC{}
		if len(cfg.Networks) > 0 {
			nets = append(nets, fsm.NIC{Network: cfg.Networks[0].Name, VLAN: cfg.Networks[0].VLAN})
		}
		for i := 0; i < c.Int("sim-vms"); i++ {
			vm := fmt.Sprintf("%s-vm%d", cfg.Name, i+1)
			var disks []fsm.Disk
			for dom, dir := range cfg.StorageDomains {
				disks = append(disks, fsm.Disk{Target: "vda", Source: dir + "/" + vm + ".qcow2", Cache: "none", StorageDomain: dom})
				break
			}
			if err := h.Define(sim.VMSpec{Name: vm, MemoryMiB: c.Uint64("sim-vm-mem"), VCPUs: 2,
				DirtyMiBps: c.Float64("sim-dirty"), NICs: nets, Disks: disks}); err != nil {
				return nil, err
			}
		}
		clk := reg.Clock()
		cfg.Monitor.Clock, cfg.Monitor.NewTicker = clk.Now, clk.NewTicker
		cfg.Hypervisor, cfg.HypervisorKind = h, "sim"
		cfg.HypervisorURI = scheme + "://{host}/v1/sim"
		cfg.HTTPHandlers = map[string]http.Handler{"/v1/sim": sim.Handler(h)}
		return reg.Close, nil
	default:
		return nil, fmt.Errorf("--hypervisor %q: want libvirt or sim", kind)
	}
}

func parseNetworks(specs []string) ([]fsm.Network, error) {
	var out []fsm.Network
	for _, s := range specs {
		name, vlan, found := strings.Cut(s, ".")
		nw := fsm.Network{Name: name}
		if found {
			v, err := strconv.Atoi(vlan)
			if err != nil || v < 1 || v > 4094 {
				return nil, fmt.Errorf("--network %q: VLAN must be 1-4094", s)
			}
			nw.VLAN = v
		}
		if name == "" {
			return nil, fmt.Errorf("--network %q: empty name", s)
		}
		out = append(out, nw)
	}
	return out, nil
}

func parseDomains(specs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range specs {
		name, dir, ok := strings.Cut(s, "=")
		if !ok || name == "" || !strings.HasPrefix(dir, "/") {
			return nil, fmt.Errorf("--storage-domain %q: want NAME=/absolute/dir", s)
		}
		out[name] = dir
	}
	return out, nil
}

// simPeerClients gives the sim one HTTPS client per destination host, each
// presenting this host's certificate and accepting only that host's.
func simPeerClients(ht *pki.HostTLS) func(string) (*http.Client, error) {
	var mu sync.Mutex
	clients := map[string]*http.Client{}
	return func(host string) (*http.Client, error) {
		if host == "" {
			return nil, fmt.Errorf("the destination's host name is unknown: cannot verify its certificate")
		}
		mu.Lock()
		defer mu.Unlock()
		if c := clients[host]; c != nil {
			return c, nil
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = ht.DialHost(host)
		// ALPN: the host port's HTTP server, not its Raft.
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
		clients[host] = c
		return c, nil
	}
}

// initialToken reads --initial-management-token-file ("" without one).
func initialToken(c *ucli.Context) (string, error) {
	file := c.String("initial-management-token-file")
	if file == "" {
		return "", nil
	}
	st, err := os.Stat(file)
	if err != nil {
		return "", ucli.Exit("error: --initial-management-token-file: "+err.Error(), exitUsage)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", ucli.Exit(fmt.Sprintf("error: --initial-management-token-file %s: mode %04o lets other users read the management token; chmod 600 it", file, perm), exitUsage)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", ucli.Exit("error: --initial-management-token-file: "+err.Error(), exitUsage)
	}
	tok := strings.TrimSpace(string(b))
	if err := node.CheckInitialToken(tok); err != nil {
		return "", ucli.Exit("error: --initial-management-token-file "+file+": "+err.Error(), exitUsage)
	}
	return tok, nil
}

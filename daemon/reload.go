package daemon

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/pki"
	"github.com/hostmesh/hostmesh/shutdown"
)

// reloadable are the settings a reload (SIGHUP) applies to the running
// meshd. Anything else changed in the files is logged as needing a
// restart: addresses, ports, the data dir, the cluster and the hypervisor
// are part of the host's identity in the mesh, and the CA and gossip key
// have their own rotations (a restart; meshctl keyring).
var reloadable = []string{"log-level", "network", "storage-domain", "cert-file", "key-file", "shutdown-policy"}

// reloader re-reads the configuration files on SIGHUP. Flags and
// environment variables given at start still win over the files.
type reloader struct {
	flags    []ucli.Flag
	fileArgs []string
	dir      string
	explicit map[string]bool
	pinned   map[string][]string // values of the explicit reloadable flags
	running  map[string]setting  // the files' settings in effect
	log      *slog.Logger
	level    *slog.LevelVar
	tls      *pki.HostTLS
	certFile string
	keyFile  string
	node     *node.Node
	policy   *policyVar // nil in tests of the reloader alone
}

func newReloader(c *ucli.Context, explicit map[string]bool, log *slog.Logger, level *slog.LevelVar, tls *pki.HostTLS, n *node.Node) (*reloader, error) {
	r := &reloader{flags: c.App.Flags, fileArgs: c.StringSlice("config-file"), dir: c.String("config-dir"),
		explicit: explicit, log: log, level: level, tls: tls, node: n,
		certFile: c.String("cert-file"), keyFile: c.String("key-file"), pinned: map[string][]string{}}
	for _, name := range reloadable {
		if explicit[name] {
			if name == "network" || name == "storage-domain" {
				r.pinned[name] = c.StringSlice(name)
			} else {
				r.pinned[name] = []string{c.String(name)}
			}
		}
	}
	files, err := configFiles(r.fileArgs, r.dir)
	if err != nil {
		return nil, err
	}
	if r.running, err = readConfig(r.flags, files); err != nil {
		return nil, err
	}
	return r, nil
}

// value is a setting's effective value from the files, or the flag's
// default when the files no longer set it.
func (r *reloader) value(settings map[string]setting, name string) []string {
	if v, ok := r.pinned[name]; ok {
		return v
	}
	if s, ok := settings[name]; ok {
		return s.values
	}
	for _, f := range r.flags {
		if f.Names()[0] != name {
			continue
		}
		switch f := f.(type) {
		case *ucli.StringFlag:
			return []string{f.Value}
		case *ucli.StringSliceFlag:
			if f.Value != nil {
				return f.Value.Value()
			}
		}
	}
	return nil
}

// reload applies what changed and says what needs a restart. A file that
// does not parse changes nothing.
func (r *reloader) reload() {
	start := time.Now()
	files, err := configFiles(r.fileArgs, r.dir)
	var next map[string]setting
	if err == nil {
		next, err = readConfig(r.flags, files)
	}
	if err != nil {
		r.log.Error("reload: configuration not applied, the running one stays", "err", err)
		return
	}
	var changed, restart []string
	for _, f := range r.flags {
		name := f.Names()[0]
		if r.explicit[name] || slices.Equal(r.value(r.running, name), r.value(next, name)) {
			continue
		}
		key := strings.ReplaceAll(name, "-", "_")
		if slices.Contains(reloadable, name) {
			changed = append(changed, key)
		} else {
			restart = append(restart, key)
		}
	}
	var applied, failed []string
	apply := func(key string, err error) {
		if err != nil {
			r.log.Error("reload: "+key+" not applied", "err", err)
			failed = append(failed, key)
		} else {
			applied = append(applied, key)
		}
	}
	if slices.Contains(changed, "log_level") {
		apply("log_level", setLevel(r.level, r.value(next, "log-level")[0]))
	}
	if slices.Contains(changed, "shutdown_policy") {
		p, err := shutdown.ParsePolicy(r.value(next, "shutdown-policy")[0])
		if err == nil && r.policy != nil {
			r.policy.Set(p)
		}
		apply("shutdown_policy", err)
	}
	if slices.Contains(changed, "network") || slices.Contains(changed, "storage_domain") {
		nets, nerr := parseNetworks(r.value(next, "network"))
		doms, derr := parseDomains(r.value(next, "storage-domain"))
		if nerr == nil && derr == nil {
			r.node.SetResources(nets, doms)
		}
		// Both or neither: the node gets them together.
		err := errors.Join(nerr, derr)
		if slices.Contains(changed, "network") {
			apply("network", err)
		}
		if slices.Contains(changed, "storage_domain") {
			apply("storage_domain", err)
		}
	}
	// The host's own facts are discovered again too (a VLAN added with
	// the reload is gossiped at once, not at the next discovery).
	r.node.RefreshFacts()
	if r.tls != nil {
		// Read again even when the paths did not change: a renewal rewrites
		// the same files.
		cert, key := r.certFile, r.keyFile
		if !r.explicit["cert-file"] {
			cert = r.value(next, "cert-file")[0]
		}
		if !r.explicit["key-file"] {
			key = r.value(next, "key-file")[0]
		}
		leaf, err := r.tls.Reload(cert, key)
		if err == nil {
			r.certFile, r.keyFile = cert, key
			r.log.Info("reload: host certificate read", "file", cert, "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter)
		}
		apply("cert_file", err)
		if err != nil {
			failed = append(failed, "key_file")
		}
	}
	// What was applied is now running; a setting needing a restart keeps
	// being reported until meshd restarts.
	for _, name := range reloadable {
		if slices.Contains(failed, strings.ReplaceAll(name, "-", "_")) {
			continue
		}
		if s, ok := next[name]; ok {
			r.running[name] = s
		} else {
			delete(r.running, name)
		}
	}
	if len(restart) > 0 {
		r.log.Warn("reload: changed settings need a restart of meshd to take effect (systemctl restart meshd keeps the VMs running)", "settings", restart)
	}
	r.log.Info("configuration reloaded", "files", files, "applied", applied, "failed", failed, "restart_needed", restart,
		"took", time.Since(start).Round(time.Microsecond).String())
}

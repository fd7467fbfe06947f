package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Lab is a running set of hypervisor hosts on this machine.
type Lab struct {
	Hosts []*Host
	// Dir is the lab's state directory (root-namespace path).
	Dir string
	// SharedDir is the shared storage domain: the same directory at the same
	// path in every host and in the root namespace. It is a plain local file
	// system, so libvirt only migrates disks on it with the UNSAFE flag.
	SharedDir string
	// CACert and CAKey are the lab's mesh CA (root-namespace paths): it
	// signed every host's certificate, for libvirt, QEMU and meshd alike, and
	// signs whatever else a test needs (an operator's client certificate).
	CACert, CAKey string
	// GossipKeyFile holds the mesh's gossip key (0600), for every host's
	// meshd --gossip-key-file.
	GossipKeyFile string
	// TokenFile holds the management token (0600) every meshd starts with
	// and meshctl sends.
	TokenFile string

	imageOnce      sync.Once
	kernel, initrd string
	imageErr       error
	logf           func(format string, args ...any)
	owner          *os.File // ownerLock, held from Start to Close
}

// phase logs how long a step of bringing up the lab took.
func (l *Lab) phase(what string, since time.Time) {
	if l.logf != nil {
		l.logf("lab: %s in %s", what, time.Since(since).Round(time.Millisecond))
	}
}

// stateFile records a running lab so that another process (labctl status,
// labctl down, a test attaching to `make lab`) can find it.
const stateFile = "lab.json"

// Start tears down whatever an earlier lab left behind, then brings up
// cfg.Hosts hosts, each with its namespaces, networks, storage and libvirtd.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkPrereqs(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	t0 := time.Now()
	owner, err := acquireOwner(ctx)
	if err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	if err := ensureQemuUser(ctx); err != nil {
		owner.Close()
		return nil, fmt.Errorf("start lab: %w", err)
	}
	if err := teardown(ctx); err != nil {
		owner.Close()
		return nil, fmt.Errorf("start lab: clear leftovers: %w", err)
	}
	l := &Lab{Dir: dir, SharedDir: filepath.Join(dir, "shared"), logf: cfg.Logf, owner: owner}
	l.phase("take the lab lock and clear leftovers", t0)
	if err := l.resetDirs(); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("start lab: %w", err)
	}
	for i := 1; i <= cfg.Hosts; i++ {
		h := newHost(l.Dir, i, clusterOf(cfg, i))
		h.ListenTCP = cfg.ListenTCP
		if without := cfg.TCGWithout[h.Name]; len(without) > 0 {
			plain := h.CacheDir
			h.CacheDir = maskedCacheDir(l.Dir, h.Name, without)
			h.TCGWithout = without
			if err := h.seedCache(plain); err != nil {
				_ = l.Close()
				return nil, fmt.Errorf("start lab: %w", err)
			}
		}
		l.Hosts = append(l.Hosts, h)
	}
	if err := l.bringUp(ctx); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("start lab: %w", err)
	}
	return l, nil
}

func clusterOf(cfg Config, i int) string {
	if i-1 < len(cfg.Clusters) && cfg.Clusters[i-1] != "" {
		return cfg.Clusters[i-1]
	}
	return "default"
}

func newHost(dir string, i int, cluster string) *Host {
	name := fmt.Sprintf("h%d", i)
	o := hostOctet(i)
	h := &Host{
		Name:         name,
		Cluster:      cluster,
		NetNS:        nsPrefix + name,
		MgmtIP:       fmt.Sprintf("%s%d", MgmtPrefix, o),
		MigIP:        fmt.Sprintf("%s%d", MigPrefix, o),
		VMIP:         fmt.Sprintf("%s%d", VMPrefix, o),
		LocalDir:     filepath.Join(dir, "local"),
		LocalBacking: filepath.Join(dir, "hosts", name, "local"),
		StateDir:     filepath.Join(dir, "hosts", name),
		CacheDir:     filepath.Join(dir, "cache", name),
	}
	h.LibvirtURI = "qemu+tls://" + h.MgmtIP + "/system"
	return h
}

// resetDirs removes the per-host and shared state of an earlier lab; the
// guest image cache survives.
func (l *Lab) resetDirs() error {
	for _, d := range []string{"hosts", "shared", "local", pkiDir} {
		if err := os.RemoveAll(filepath.Join(l.Dir, d)); err != nil {
			return err
		}
	}
	for _, d := range []string{l.SharedDir, filepath.Join(l.Dir, "local")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) bringUp(ctx context.Context) error {
	t0 := time.Now()
	if err := l.issuePKI(); err != nil {
		return err
	}
	l.phase(fmt.Sprintf("CA and certificates of %d hosts", len(l.Hosts)), t0)
	t0 = time.Now()
	if err := setupSwitch(ctx); err != nil {
		return err
	}
	for _, h := range l.Hosts {
		if err := setupHostNet(ctx, h); err != nil {
			return err
		}
		if err := h.startHolder(ctx); err != nil {
			return err
		}
	}
	l.phase(fmt.Sprintf("networks and namespaces of %d hosts", len(l.Hosts)), t0)
	t0 = time.Now()
	// libvirtd takes about a second to come up; start the hosts' daemons in
	// parallel.
	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	for i, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = h.startLibvirtd(ctx); errs[i] == nil && len(h.TCGWithout) > 0 {
				errs[i] = h.maskTCGFeatures(ctx, h.TCGWithout)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.phase("libvirtd answering on every host", t0)
	return l.save()
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.Dir, stateFile), b, 0o644)
}

// Open attaches to a lab that another process started (labctl up) in dir.
// It does not check that the lab is still healthy; use Status for that.
func Open(dir string) (*Lab, error) {
	if dir == "" {
		dir = defaultDir
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("open lab in %s: %w", dir, err)
	}
	l := &Lab{}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("open lab in %s: %w", dir, err)
	}
	return l, nil
}

// Close kills everything running in the lab's namespaces (libvirtd, guests,
// daemons), removes the namespaces and links, and deletes the lab's state
// except the cached guest image.
//
// A Lab from Open (not owned by this process) takes the lab lock first, so
// `labctl down` cannot pull a lab from under a running test; it fails with
// ErrBusy after a few seconds instead.
func (l *Lab) Close() error {
	if !filepath.IsAbs(l.Dir) {
		return fmt.Errorf("close lab: state dir %q is not absolute", l.Dir)
	}
	if l.owner == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		owner, err := acquireOwner(ctx)
		if err != nil {
			return fmt.Errorf("close lab %s: %w", l.Dir, err)
		}
		l.owner = owner
	}
	err := teardown(context.Background())
	_ = os.Remove(filepath.Join(l.Dir, stateFile))
	for _, d := range []string{"hosts", "shared", "local", pkiDir} {
		if rerr := os.RemoveAll(filepath.Join(l.Dir, d)); rerr != nil && err == nil {
			err = rerr
		}
	}
	if l.owner != nil {
		l.owner.Close() // releases the lock
		l.owner = nil
	}
	if err != nil {
		return fmt.Errorf("close lab %s: %w", l.Dir, err)
	}
	return nil
}

// Host returns the host with the given name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

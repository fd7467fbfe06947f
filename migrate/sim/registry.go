package sim

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config sets how a Registry's hosts simulate migrations.
type Config struct {
	// TimeScale is simulated seconds per real second (50: fifty times faster
	// than real time). Default 1. Ignored when Clock is set.
	TimeScale float64
	// Step is the simulated time between job steps. Default 100ms. Results do
	// not depend on it (a step computes events exactly); only smoothness does.
	Step time.Duration
	// Clock, when set, is used instead of a clock of its own: tests pass a
	// manual clock, or several registries share one.
	Clock *Clock
	// LinkMiBps is the migration network's speed, used when a migration asks
	// for unlimited bandwidth. Default 1000.
	LinkMiBps float64
	// DowntimeOverhead is the fixed part of every switch-over pause (device
	// state, resuming on the destination). Default 20ms.
	DowntimeOverhead time.Duration
	// Setup is the simulated time every migration spends before its first
	// byte: libvirt's Prepare, in which the destination starts its QEMU
	// (1.8 s per migration in the lab). The job's elapsed time runs and
	// nothing is sent. Default 0.
	Setup time.Duration
	// HTTPClient reaches hosts of other processes. Default: 10s timeout.
	HTTPClient *http.Client
	// PeerClient, when set, reaches the destination host named destHost in
	// another process (migrate.Params.DestHost) instead of HTTPClient:
	// meshd gives one that presents its host certificate and accepts only
	// destHost's (sim+https:// URIs).
	PeerClient func(destHost string) (*http.Client, error)
}

// Registry is a set of sim hosts in one process that reach each other as
// "sim://NAME", all on one Clock.
type Registry struct {
	cfg      Config
	clock    *Clock
	ownClock bool

	mu     sync.Mutex
	hosts  map[string]*Host
	starts map[string]int // Params.ID → starts on any host
}

// NewRegistry returns an empty registry. Close it to stop its clock.
func NewRegistry(cfg Config) *Registry {
	if cfg.LinkMiBps <= 0 {
		cfg.LinkMiBps = 1000
	}
	if cfg.DowntimeOverhead <= 0 {
		cfg.DowntimeOverhead = 20 * time.Millisecond
	}
	if cfg.Step <= 0 {
		cfg.Step = 100 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	r := &Registry{cfg: cfg, clock: cfg.Clock, hosts: map[string]*Host{}, starts: map[string]int{}}
	if r.clock == nil {
		r.clock = NewClock(cfg.TimeScale, cfg.Step)
		r.ownClock = true
	}
	return r
}

// AddHost creates a host. Names are unique within the registry.
func (r *Registry) AddHost(spec HostSpec) (*Host, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/ ") {
		return nil, fmt.Errorf("add sim host %q: invalid name", spec.Name)
	}
	if _, ok := r.hosts[spec.Name]; ok {
		return nil, fmt.Errorf("add sim host %q: %w", spec.Name, ErrExists)
	}
	h := newHost(spec, r)
	r.hosts[spec.Name] = h
	return h, nil
}

// Host returns the named host.
func (r *Registry) Host(name string) (*Host, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.hosts[name]
	return h, ok
}

// Hosts returns every host, sorted by name.
func (r *Registry) Hosts() []*Host {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Host, 0, len(r.hosts))
	for _, h := range r.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

// Clock is the registry's simulated time; give its Now and NewTicker to
// migrate.MonitorConfig so monitors time jobs in simulated time.
func (r *Registry) Clock() *Clock { return r.clock }

// Close stops the registry's own clock driver.
func (r *Registry) Close() {
	if r.ownClock {
		r.clock.Stop()
	}
}

// resolve finds the destination a DestURI names; destHost is its name in
// the mesh.
func (r *Registry) resolve(uri, destHost string) (peer, error) {
	switch {
	case strings.HasPrefix(uri, "sim://"):
		name := strings.TrimPrefix(uri, "sim://")
		h, ok := r.Host(name)
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownHost, uri)
		}
		return localPeer{h}, nil
	case strings.HasPrefix(uri, "sim+http://"), strings.HasPrefix(uri, "sim+https://"):
		c := r.cfg.HTTPClient
		if r.cfg.PeerClient != nil {
			var err error
			if c, err = r.cfg.PeerClient(destHost); err != nil {
				return nil, fmt.Errorf("client of sim host %q at %s: %w", destHost, uri, err)
			}
		}
		return newHTTPPeer(strings.TrimPrefix(uri, "sim+"), c), nil
	default:
		return nil, fmt.Errorf("%w: %q is not a sim URI (sim://NAME or sim+http://HOST:PORT/PREFIX)", ErrUnknownHost, uri)
	}
}

package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
)

// faultTrace keeps what a failing schedule needs to explain itself: every
// meshd's log (in memory) and every call of a hypervisor's Migrate with
// the host's incarnation. A violation about a migration prints both for
// that migration, so that a soak's rare failure can be read without a
// replay that may not reproduce its timing.
type faultTrace struct {
	logs *LogCapture

	mu     sync.Mutex
	c      *Cluster
	starts []string
	t0     time.Time
}

func newFaultTrace() *faultTrace {
	return &faultTrace{logs: NewLogCapture(), t0: time.Now()}
}

// wrap records host i's Migrate calls.
func (f *faultTrace) wrap(i int, h migrate.Hypervisor) migrate.Hypervisor {
	return tracedHypervisor{Hypervisor: h, f: f, i: i}
}

type tracedHypervisor struct {
	migrate.Hypervisor
	f *faultTrace
	i int
}

func (h tracedHypervisor) Migrate(ctx context.Context, name string, p migrate.Params) (migrate.Job, error) {
	job, err := h.Hypervisor.Migrate(ctx, name, p)
	h.f.mu.Lock()
	c := h.f.c
	h.f.mu.Unlock()
	inc := 0
	if c != nil {
		c.mu.Lock()
		inc = c.started[h.i]
		c.mu.Unlock()
	}
	h.f.mu.Lock()
	h.f.starts = append(h.f.starts, fmt.Sprintf("+%s %s (incarnation %d) Migrate %s id=%s: err=%v",
		time.Since(h.f.t0).Round(time.Millisecond), HostName(h.i), inc, name, p.ID, err))
	h.f.mu.Unlock()
	return job, err
}

// explain returns the trace of the migration a violation names (its ID
// before "#"), empty when it names none.
func (f *faultTrace) explain(violation string) []string {
	id := ""
	for _, w := range strings.Fields(violation) {
		if strings.HasPrefix(w, "m") && strings.Contains(w, "#") {
			id, _, _ = strings.Cut(w, "#")
			break
		}
	}
	if id == "" {
		return nil
	}
	var out []string
	f.mu.Lock()
	for _, s := range f.starts {
		if strings.Contains(s, "id="+id+"#") {
			out = append(out, s)
		}
	}
	f.mu.Unlock()
	for _, l := range f.logs.Lines(slog.LevelDebug, "", "migration", id) {
		out = append(out, l.String())
	}
	return out
}
